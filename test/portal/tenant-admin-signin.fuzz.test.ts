import fc from 'fast-check';
import { open as openSealed } from '../../src/config/secret-box.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { fuzzRuns, fuzzSeed, inheritedEnumerableKeys, prototypeSnapshot } from '../scim/hardening-support.js';
import {
  mapGroupToAdmin,
  startTenantWorld,
  tenantAdminSessions,
  type TenantWorld,
} from './tenant-admin-signin.support.js';

/**
 * Issue 15: the portal's OIDC callback (/portal/oidc/callback) under
 * generated queries — the names it reads (code, state, iss, error,
 * error_description) and stray ones (prototype keys included), each sent
 * once or repeated, with values that are empty, long, NUL-bearing or
 * non-ASCII — in a browser that started no sign-in, one that did, and one
 * that did and echoes its own state and the issuer (so a generated code
 * reaches /oauth/token).
 * Invariants per request: never a 5xx; no portal session is opened (no code
 * here is real: none came from a finished sign-in); no built-in prototype
 * gains a key. And the sign-in form (POST /portal/signin) under generated
 * fields: a redirect to /oauth/authorize exactly when one plausible email
 * was sent, else 400; never a 5xx or a session.
 */
const RUNS = fuzzRuns(40);
const SEED = fuzzSeed(0x5e1f1);

let t: TestDatabase;
let w: TenantWorld;

beforeAll(async () => {
  t = await createTestDatabase();
  w = await startTenantWorld(t);
  await mapGroupToAdmin(w, w.acme.tenantId, 'Admins');
});
afterAll(async () => {
  await w?.close();
  await t?.close();
});

/** A started sign-in: its cookie and the state sealed in it. */
async function startSignin(): Promise<{ cookie: string; state: string }> {
  const res = await fetch(`${w.gh.address}/portal/signin`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ email: 'ada@acme.test' }).toString(),
    redirect: 'manual',
  });
  await res.arrayBuffer();
  const pair =
    res.headers
      .getSetCookie()
      .find((c) => c.startsWith('gh_portal_signin='))
      ?.split(';')[0] ?? '';
  const sealed = pair.slice('gh_portal_signin='.length);
  const { state } = JSON.parse(openSealed(w.gh.secrets.masterKey, sealed, 'portal:admin-signin')) as {
    state: string;
  };
  return { cookie: pair, state };
}

const value = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'grapheme', maxLength: 20 }),
  fc.constantFrom('', '\u0000', 'a'.repeat(5000), '%', '%zz', '\ud800', 'access_denied', 'http://127.0.0.1'),
);
const name = fc.oneof(
  fc.constantFrom('code', 'state', 'iss', 'error', 'error_description', 'session_state', 'id_token'),
  fc.constantFrom('__proto__', 'constructor', 'prototype', '__proto__[polluted]', 'code[]'),
  fc.string({ minLength: 1, maxLength: 12 }),
);
const query = fc.array(fc.tuple(name, value), { maxLength: 8 });
const browserKind = fc.constantFrom('none', 'started', 'own-state');

it('never answers 5xx, opens no session and leaves every prototype alone, whatever the callback receives', async () => {
  const sessions = await tenantAdminSessions(t);
  const prototypes = prototypeSnapshot();
  const reasons = new Set<string>();
  await fc.assert(
    fc.asyncProperty(query, browserKind, value, async (pairs, kind, code) => {
      const params = new URLSearchParams();
      let cookie = '';
      if (kind !== 'none') {
        const started = await startSignin();
        cookie = started.cookie;
        if (kind === 'own-state') {
          // Past the state and RFC 9207 iss checks: the generated code goes to /oauth/token.
          params.append('state', started.state);
          params.append('iss', w.gh.baseUrl);
          params.append('code', code);
        }
      }
      for (const [k, v] of pairs) params.append(k, v);
      const res = await fetch(`${w.gh.address}/portal/oidc/callback?${params.toString()}`, {
        headers: cookie ? { cookie } : {},
        redirect: 'manual',
      });
      const body = await res.text();
      reasons.add(/id="reason-code">([a-z_]+)</.exec(body)?.[1] ?? String(res.status));
      expect(res.status).toBeLessThan(500);
      expect(res.status).not.toBe(303);
      expect(await tenantAdminSessions(t)).toBe(sessions);
      expect(prototypeSnapshot()).toEqual(prototypes);
      expect(inheritedEnumerableKeys()).toEqual([]);
    }),
    { numRuns: RUNS, seed: SEED },
  );
  // The generated inputs reached each layer: no started sign-in, the state check, the token endpoint.
  expect([...reasons]).toEqual(expect.arrayContaining(['signin_expired', 'state_mismatch', 'code_rejected']));
});

const EMAIL = /^[^\s@]+@[^\s@]+$/;
const formField = fc.oneof(
  fc.constantFrom('email', 'email', '__proto__', 'constructor', 'email[]', '_csrf'),
  fc.string({ minLength: 1, maxLength: 12 }),
);
const formValue = fc.oneof(
  value,
  fc.emailAddress(),
  fc.constantFrom('ada@acme.test', ' ada@acme.test ', 'a@b', '@', 'x@y@z', `${'a'.repeat(400)}@acme.test`),
);

it('answers the sign-in form with a redirect to /oauth/authorize only for one plausible email, never 5xx, never a session', async () => {
  const sessions = await tenantAdminSessions(t);
  const prototypes = prototypeSnapshot();
  await fc.assert(
    fc.asyncProperty(fc.array(fc.tuple(formField, formValue), { maxLength: 6 }), async (pairs) => {
      const body = new URLSearchParams();
      for (const [k, v] of pairs) body.append(k, v);
      const res = await fetch(`${w.gh.address}/portal/signin`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: body.toString(),
        redirect: 'manual',
      });
      await res.arrayBuffer();
      const emails = body.getAll('email');
      const plausible =
        emails.length === 1 && EMAIL.test(emails[0]?.trim() ?? '') && (emails[0]?.trim().length ?? 0) <= 320;
      expect(res.status).toBe(plausible ? 303 : 400);
      if (plausible)
        expect(res.headers.get('location')).toMatch(new RegExp(`^${w.gh.baseUrl}/oauth/authorize\\?`));
      expect(await tenantAdminSessions(t)).toBe(sessions);
      expect(prototypeSnapshot()).toEqual(prototypes);
      expect(inheritedEnumerableKeys()).toEqual([]);
    }),
    { numRuns: RUNS, seed: SEED },
  );
});
