import { decodeJwt } from 'jose';
import type * as client from 'openid-client';
import { createAuthorizationCompleter } from '../../src/tokens/authorize/completer.js';
import { TestBrowser } from '../support/browser.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { authorize, CALLBACK, codeOf, mainAppClient, postForm, signIn } from '../support/main-app.js';
import { createPerson, createTenantWithConnection } from '../support/oauth-fixtures.js';
import {
  registerApp,
  startOAuthServer,
  startSideServer,
  type OAuthServer,
  type Person,
} from '../support/oauth-server.js';
import { resignWithGatehouseKey, tenantSnapshot } from '../support/tenant-admin-token.js';

/**
 * The OpenID Provider endpoints across tenants. Apps are platform-wide (one
 * registered app serves every tenant), so "another tenant's token" is not a
 * matter of which app presents it: the tenant is implied by the session a
 * code, refresh token or ID/access token names (opaque values carry the
 * session id, src/tokens/grants/opaque-tokens.ts; JWTs carry `sid` and `tid`). The
 * meaningful attacks are therefore:
 * - a value of tenant A made to name tenant B's session (the session id part
 *   of an opaque value is not secret: it is the `sid` of every ID token), so
 *   the pre-tenant lookup (resolveTenantBySession) enters tenant B;
 * - JWTs whose signature is genuine but whose `sid`/`tid`/`sub` disagree
 *   (re-signed with Gatehouse's own key: what a signing bug would produce),
 *   which only the idor checks behind the signature can refuse;
 * - the browser handles of a pending login (login id + completion token)
 *   mixed between two tenants' logins.
 * Each must be refused with nothing of B read, revoked or written.
 */
let t: TestDatabase;
let gh: OAuthServer;
let app: { clientId: string; clientSecret: string };
let config: client.Configuration;
let alice: Person;
let bob: Person;
let idpReturn: { url: string; close(): Promise<void> };

const basic = () => ({ id: app.clientId, secret: app.clientSecret });

beforeAll(async () => {
  t = await createTestDatabase();
  gh = await startOAuthServer(t);
  const acme = await createTenantWithConnection(t.db, 'acme');
  const globex = await createTenantWithConnection(t.db, 'globex');
  alice = await createPerson(t.db, acme, 'alice@acme.test');
  bob = await createPerson(t.db, globex, 'bob@globex.test');
  gh.flow.people.set('alice@acme.test', alice);
  gh.flow.people.set('bob@globex.test', bob);
  const registered = await registerApp(gh, { redirect_uris: [CALLBACK] });
  app = { clientId: registered.clientId, clientSecret: registered.clientSecret ?? '' };
  config = await mainAppClient(gh, app.clientId, app.clientSecret);
  // Stands for the IdP posting back to Gatehouse (as src/sso does): completes the named login as the named person.
  const completer = createAuthorizationCompleter({ config: gh.config, db: t.db });
  idpReturn = await startSideServer(async (req, res) => {
    const person = req.query.as === 'bob' ? bob : alice;
    await completer.complete(req, res, typeof req.query.login === 'string' ? req.query.login : '', {
      ...person,
      authTime: new Date(),
    });
  });
});
afterAll(async () => {
  await idpReturn.close();
  await gh.close();
  await t.close();
});

/** A signed-in person: their tokens and the session id (`sid`) behind them. */
async function signedIn(email: string) {
  const { tokens } = await signIn(config, new TestBrowser(), email);
  const sid = String(decodeJwt(tokens.id_token!).sid);
  return { tokens, sid, refresh: tokens.refresh_token!, access: tokens.access_token, id: tokens.id_token! };
}

/** `gh_rt_<sid>.<secret>` / `gh_code_<sid>.<secret>` with the session id replaced. */
const splice = (value: string, sessionId: string) => value.replace(/[0-9a-f-]{36}(?=\.)/, sessionId);

const sessionOf = async (tenantId: string, sessionId: string) =>
  (
    await t.db.withTenant(tenantId, (em) =>
      em.query<{ revoked_at: Date | null }[]>('SELECT revoked_at FROM sessions WHERE id = $1', [sessionId]),
    )
  )[0];

describe('/oauth/token across tenants', () => {
  it("refuses a code carrying tenant B's session id with A's secret, consuming nothing of either", async () => {
    const b = await signedIn('bob@globex.test');
    const attempt = await authorize(config, new TestBrowser(), { login_hint: 'alice@acme.test' });
    const code = codeOf(attempt.callback);
    const spliced = splice(code, b.sid);
    expect(spliced).not.toBe(code);
    const before = await tenantSnapshot(t, bob.tenantId);
    const res = await postForm(
      gh,
      '/oauth/token',
      {
        grant_type: 'authorization_code',
        code: spliced,
        redirect_uri: CALLBACK,
        code_verifier: attempt.verifier,
      },
      basic(),
    );
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ error: 'invalid_grant' });
    expect(JSON.stringify(res.body)).not.toContain(b.sid);
    expect(await tenantSnapshot(t, bob.tenantId)).toEqual(before);
    // A's genuine code was not consumed by the attempt.
    const genuine = await postForm(
      gh,
      '/oauth/token',
      { grant_type: 'authorization_code', code, redirect_uri: CALLBACK, code_verifier: attempt.verifier },
      basic(),
    );
    expect(genuine.status).toBe(200);
    expect(decodeJwt(String(genuine.body.id_token))).toMatchObject({
      tid: alice.tenantId,
      sub: alice.userId,
    });
  });

  it("refuses a refresh token carrying tenant B's session id with A's secret, revoking nothing of B", async () => {
    const a = await signedIn('alice@acme.test');
    const b = await signedIn('bob@globex.test');
    const before = await tenantSnapshot(t, bob.tenantId);
    const res = await postForm(
      gh,
      '/oauth/token',
      { grant_type: 'refresh_token', refresh_token: splice(a.refresh, b.sid) },
      basic(),
    );
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ error: 'invalid_grant' });
    expect(await tenantSnapshot(t, bob.tenantId)).toEqual(before);
    // Both genuine refresh tokens still work, each for its own tenant.
    for (const [who, refresh, tenantId] of [
      ['alice', a.refresh, alice.tenantId],
      ['bob', b.refresh, bob.tenantId],
    ] as const) {
      const ok = await postForm(
        gh,
        '/oauth/token',
        { grant_type: 'refresh_token', refresh_token: refresh },
        basic(),
      );
      expect({ who, status: ok.status }).toEqual({ who, status: 200 });
      expect(decodeJwt(String(ok.body.access_token)).tid).toBe(tenantId);
    }
  });
});

describe('/oauth/revoke, /oauth/introspect and /oauth/userinfo across tenants', () => {
  it("revokes none of B's sessions with A's spliced refresh token or a token naming B over A's session", async () => {
    const a = await signedIn('alice@acme.test');
    const b = await signedIn('bob@globex.test');
    const before = await tenantSnapshot(t, bob.tenantId);
    const attempts = [
      splice(a.refresh, b.sid),
      // Genuine signature, A's tenant, B's session: the `tid` check in revokeToken must stop it.
      await resignWithGatehouseKey(gh.keys, a.access, { sid: b.sid }),
      // Genuine signature naming B's tenant and session over A's person: the session-owner check must stop it.
      await resignWithGatehouseKey(gh.keys, a.access, { sid: b.sid, tid: bob.tenantId }),
    ];
    for (const token of attempts) {
      const res = await postForm(gh, '/oauth/revoke', { token }, basic());
      // RFC 7009 §2.2: 200 whatever the token was.
      expect(res.status).toBe(200);
    }
    expect(await sessionOf(bob.tenantId, b.sid)).toEqual({ revoked_at: null });
    expect(await tenantSnapshot(t, bob.tenantId)).toEqual(before);
    // Control: A's own refresh token revokes A's session.
    expect((await postForm(gh, '/oauth/revoke', { token: a.refresh }, basic())).status).toBe(200);
    expect(await sessionOf(alice.tenantId, a.sid)).toEqual({ revoked_at: expect.any(Date) });
  });

  it('answers inactive for a spliced refresh token and a token naming B over A’s session', async () => {
    const a = await signedIn('alice@acme.test');
    const b = await signedIn('bob@globex.test');
    const before = await tenantSnapshot(t, bob.tenantId);
    for (const token of [
      splice(a.refresh, b.sid),
      await resignWithGatehouseKey(gh.keys, a.access, { tid: bob.tenantId }),
      await resignWithGatehouseKey(gh.keys, a.access, { sid: b.sid }),
      await resignWithGatehouseKey(gh.keys, a.access, { sid: b.sid, tid: bob.tenantId }),
    ]) {
      const res = await postForm(gh, '/oauth/introspect', { token }, basic());
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ active: false });
    }
    expect(await tenantSnapshot(t, bob.tenantId)).toEqual(before);
    // Control: the genuine tokens are active.
    expect((await postForm(gh, '/oauth/introspect', { token: a.access }, basic())).body).toMatchObject({
      active: true,
      tid: alice.tenantId,
    });
  });

  it('refuses userinfo for a token naming tenant B over A’s session', async () => {
    const a = await signedIn('alice@acme.test');
    const b = await signedIn('bob@globex.test');
    for (const token of [
      await resignWithGatehouseKey(gh.keys, a.access, { tid: bob.tenantId }),
      await resignWithGatehouseKey(gh.keys, a.access, { sid: b.sid, tid: bob.tenantId }),
    ]) {
      for (const method of ['GET', 'POST']) {
        const res = await fetch(`${gh.url}/oauth/userinfo`, {
          method,
          headers: { authorization: `Bearer ${token}` },
        });
        const text = await res.text();
        expect({ method, status: res.status }).toEqual({ method, status: 401 });
        expect(res.headers.get('www-authenticate')).toMatch(/^Bearer .*error="invalid_token"/);
        expect(text).not.toContain('bob@globex.test');
      }
    }
    const own = await fetch(`${gh.url}/oauth/userinfo`, { headers: { authorization: `Bearer ${a.access}` } });
    expect(await own.json()).toMatchObject({ sub: alice.userId, tid: alice.tenantId });
  });
});

describe('/oauth/logout across tenants', () => {
  it("ends none of B's sessions with A's ID token, nor with an ID token naming B's session", async () => {
    const b = await signedIn('bob@globex.test');
    const before = await tenantSnapshot(t, bob.tenantId);
    const a1 = await signedIn('alice@acme.test');
    const a2 = await signedIn('alice@acme.test');
    const hints = [
      // Genuine signature, B's session under A's tenant and subject: the tid check must stop it.
      await resignWithGatehouseKey(gh.keys, a1.id, { sid: b.sid }),
      // B's session and tenant, but A's subject: the sub check must stop it.
      await resignWithGatehouseKey(gh.keys, a1.id, { sid: b.sid, tid: bob.tenantId }),
    ];
    for (const [i, hint] of hints.entries()) {
      const method = i % 2 === 0 ? 'GET' : 'POST';
      const res =
        method === 'GET'
          ? await fetch(`${gh.url}/oauth/logout?id_token_hint=${encodeURIComponent(hint)}`, {
              redirect: 'manual',
            })
          : await fetch(`${gh.url}/oauth/logout`, {
              method: 'POST',
              headers: { 'content-type': 'application/x-www-form-urlencoded' },
              body: new URLSearchParams({ id_token_hint: hint }).toString(),
              redirect: 'manual',
            });
      expect(res.status).toBeLessThan(500);
      await res.arrayBuffer();
    }
    expect(await sessionOf(bob.tenantId, b.sid)).toEqual({ revoked_at: null });
    expect(await tenantSnapshot(t, bob.tenantId)).toEqual(before);
    // A's genuine ID token ends A's session and nothing of B's.
    for (const [method, a] of [
      ['GET', a1],
      ['POST', a2],
    ] as const) {
      const res =
        method === 'GET'
          ? await fetch(`${gh.url}/oauth/logout?id_token_hint=${encodeURIComponent(a.id)}`)
          : await fetch(`${gh.url}/oauth/logout`, {
              method: 'POST',
              headers: { 'content-type': 'application/x-www-form-urlencoded' },
              body: new URLSearchParams({ id_token_hint: a.id }).toString(),
            });
      expect({ method, status: res.status }).toEqual({ method, status: 200 });
      expect(await sessionOf(alice.tenantId, a.sid)).toEqual({ revoked_at: expect.any(Date) });
    }
    expect(await sessionOf(bob.tenantId, b.sid)).toEqual({ revoked_at: null });
    expect(await tenantSnapshot(t, bob.tenantId)).toEqual(before);
  });
});

describe('/oauth/authorize/continue across tenants', () => {
  /** A login started in `browser` and completed at the IdP as `as`; the continue URL, not yet followed. */
  async function pendingLogin(browser: TestBrowser, hint: string, as: 'alice' | 'bob') {
    gh.flow.defer = true;
    try {
      const visit = await authorize(config, browser, { login_hint: hint });
      expect(visit.status).toBe(200);
    } finally {
      gh.flow.defer = false;
    }
    const loginId = gh.flow.deferred.pop()!.loginId;
    const idp = await fetch(`${idpReturn.url}/return?login=${loginId}&as=${as}`, { redirect: 'manual' });
    const continueUrl = new URL(idp.headers.get('location')!);
    expect(continueUrl.pathname).toBe('/oauth/authorize/continue');
    return { loginId, continueUrl, token: continueUrl.searchParams.get('token')! };
  }

  const requestRow = async (loginId: string) =>
    (
      await t.db.withPlatform((em) =>
        em.query<{ completed_at: Date | null }[]>(
          'SELECT completed_at FROM authorization_requests WHERE id = $1',
          [loginId],
        ),
      )
    )[0];

  it("refuses to continue B's pending login with A's completion token, leaving B's login usable", async () => {
    const aliceBrowser = new TestBrowser();
    const bobBrowser = new TestBrowser();
    const a = await pendingLogin(aliceBrowser, 'alice@acme.test', 'alice');
    const b = await pendingLogin(bobBrowser, 'bob@globex.test', 'bob');
    const before = await tenantSnapshot(t, bob.tenantId);

    const mixed = (login: string, token: string) => {
      const url = new URL(a.continueUrl);
      url.searchParams.set('login', login);
      url.searchParams.set('token', token);
      return url.toString();
    };
    for (const url of [mixed(b.loginId, a.token), mixed(a.loginId, b.token)]) {
      const visit = await aliceBrowser.visit(url, CALLBACK);
      expect(visit.redirectedTo).toBeNull();
      expect(visit.status).toBe(400);
      expect(visit.body).toContain('browser_mismatch');
    }
    expect(await requestRow(b.loginId)).toEqual({ completed_at: null });
    expect(await tenantSnapshot(t, bob.tenantId)).toEqual(before);

    // Each browser still finishes its own login, with a code of its own tenant's session.
    for (const [browser, login, tenantId] of [
      [bobBrowser, b, bob.tenantId],
      [aliceBrowser, a, alice.tenantId],
    ] as const) {
      const done = await browser.visit(login.continueUrl.toString(), CALLBACK);
      const code = codeOf(done.redirectedTo);
      const sessionId = /^gh_code_([0-9a-f-]{36})\./.exec(code)?.[1] ?? '';
      expect(await sessionOf(tenantId, sessionId)).toEqual({ revoked_at: null });
    }
  });
});
