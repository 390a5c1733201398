import type * as client from 'openid-client';
import { TestBrowser } from '../support/browser.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { authorize, CALLBACK, mainAppClient } from '../support/main-app.js';
import { registerApp, startOAuthServer, type OAuthServer } from '../support/oauth-server.js';

/**
 * Issue 8: `/oauth/authorize?login_hint=` runs home realm discovery of the
 * app-supplied email, so it answers only through the same per-address budget
 * as /login (GATEHOUSE_LOGIN_DISCOVERY_RATE_LIMIT). Past it, since the app's
 * redirect_uri is already validated, the app gets RFC 6749 §4.1.2.1
 * `temporarily_unavailable` (with state and iss), and no pending request is
 * stored. The main app is openid-client; the IdP side is the tokens tests'
 * DirectLoginFlow, which refuses unknown people (so the budget is all that
 * changes the answer).
 */
const LIMIT = 3;
let t: TestDatabase;
let gh: OAuthServer;
let app: client.Configuration;

beforeAll(async () => {
  t = await createTestDatabase();
  gh = await startOAuthServer(t, { GATEHOUSE_LOGIN_DISCOVERY_RATE_LIMIT: String(LIMIT) });
  const { clientId, clientSecret } = await registerApp(gh, { redirect_uris: [CALLBACK] });
  app = await mainAppClient(gh, clientId, clientSecret);
});
afterAll(async () => {
  await gh.close();
  await t.close();
});

const pendingRequests = async () =>
  Number(
    (
      await t.db.withPlatform((em) =>
        em.query<{ n: string }[]>('SELECT count(*) AS n FROM authorization_requests'),
      )
    )[0]?.n,
  );

describe('home realm discovery budget at /oauth/authorize', () => {
  it(`answers the ${LIMIT + 1}th login_hint probe with temporarily_unavailable, shared with /login`, async () => {
    // Requests without a login_hint discover nothing and do not count.
    for (let i = 0; i < LIMIT + 2; i++) {
      const plain = await authorize(app, new TestBrowser(), {});
      expect(new URL(plain.callback ?? '').searchParams.get('error')).toBe('access_denied');
    }
    for (let i = 0; i < LIMIT; i++) {
      const probe = await authorize(app, new TestBrowser(), { login_hint: `probe${i}@some-domain.test` });
      const params = new URL(probe.callback ?? '').searchParams;
      expect(params.get('error')).toBe('access_denied');
      expect(params.get('state')).toBe(probe.state);
    }
    const before = await pendingRequests();
    const limited = await authorize(app, new TestBrowser(), { login_hint: 'one-more@some-domain.test' });
    const params = new URL(limited.callback ?? '').searchParams;
    expect(params.get('error')).toBe('temporarily_unavailable');
    expect(params.get('error_description')).toBe('rate_limited');
    expect(params.get('state')).toBe(limited.state);
    expect(params.get('iss')).toBe(gh.baseUrl);
    expect(await pendingRequests()).toBe(before);

    // The same counter: /login from this address is over its budget too.
    const login = await fetch(`${gh.url}/login?login=00000000-0000-4000-8000-000000000000&email=x%40d.test`);
    expect(login.status).toBe(429);
    expect(await login.text()).toContain('<code>rate_limited</code>');
  });
});
