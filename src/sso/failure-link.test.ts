import { randomBytes } from 'node:crypto';
import { openFailureHandoff, sealFailureHandoff, type FailureHandoff } from './failure-link.js';

const key = randomBytes(32);
const handoff: FailureHandoff = {
  loginId: 'login-1',
  binding: 'browser-hash',
  expiresAt: Date.parse('2030-01-01T00:10:00Z'),
  failure: { error: 'access_denied', reason: 'user_suspended' },
};

describe('the "back to the application" handoff', () => {
  it('opens what it sealed until it expires', () => {
    const sealed = sealFailureHandoff(key, handoff);
    expect(openFailureHandoff(key, sealed, new Date('2030-01-01T00:09:59Z'))).toEqual(handoff);
    expect(openFailureHandoff(key, sealed, new Date('2030-01-01T00:10:00Z'))).toBeNull();
  });

  it('refuses a value sealed under another key or edited', () => {
    const sealed = sealFailureHandoff(key, handoff);
    const now = new Date('2030-01-01T00:00:00Z');
    expect(openFailureHandoff(randomBytes(32), sealed, now)).toBeNull();
    const [v, iv, body, tag] = sealed.split('.');
    const flipped = `${v}.${iv}.${body?.startsWith('A') ? 'B' : 'A'}${body?.slice(1)}.${tag}`;
    expect(openFailureHandoff(key, flipped, now)).toBeNull();
    expect(openFailureHandoff(key, 'not-sealed', now)).toBeNull();
  });
});
