import { randomUUID } from 'node:crypto';
import type { AuthorizationCompleter } from '../../src/sso/login-handoff.js';
import { createAuthorizationCompleter } from '../../src/tokens/authorize/completer.js';
import { TestBrowser } from '../support/browser.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { authorize, CALLBACK, codeOf, mainAppClient } from '../support/main-app.js';
import { createPerson, createTenantWithConnection } from '../support/oauth-fixtures.js';
import {
  registerApp,
  startOAuthServer,
  startSideServer,
  type OAuthServer,
  type Person,
} from '../support/oauth-server.js';

/**
 * /oauth/authorize before anything is redirected (client and redirect_uri),
 * and the binding of a login to the browser that started it. The IdP's return
 * leg is a small server of the test calling the real AuthorizationCompleter,
 * the way src/sso does after a SAML or OIDC response.
 */
let t: TestDatabase;
let gh: OAuthServer;
let app: { clientId: string; clientSecret: string | undefined };
let alice: Person;
let idpReturn: { url: string; close(): Promise<void> };
let completer: AuthorizationCompleter;

beforeAll(async () => {
  t = await createTestDatabase();
  gh = await startOAuthServer(t);
  const acme = await createTenantWithConnection(t.db, 'acme');
  alice = await createPerson(t.db, acme, 'alice@acme.test');
  gh.flow.people.set('alice@acme.test', alice);
  app = await registerApp(gh, { redirect_uris: [CALLBACK] });
  completer = createAuthorizationCompleter({ config: gh.config, db: t.db });
  // Stands for the IdP posting back to Gatehouse: completes the login named in the URL.
  idpReturn = await startSideServer(async (req, res) => {
    const login = typeof req.query.login === 'string' ? req.query.login : '';
    await completer.complete(req, res, login, { ...alice, authTime: new Date() });
  });
});
afterAll(async () => {
  await idpReturn.close();
  await gh.close();
  await t.close();
});

const pendingCount = async () =>
  (
    await t.db.withPlatform((em) =>
      em.query<{ n: number }[]>('SELECT count(*)::int AS n FROM authorization_requests'),
    )
  )[0]!.n;

function authorizeUrl(params: Record<string, string>): string {
  const url = new URL(`${gh.baseUrl}/oauth/authorize`);
  const all = {
    client_id: app.clientId,
    redirect_uri: CALLBACK,
    response_type: 'code',
    scope: 'openid',
    state: 'st-1',
    code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
    code_challenge_method: 'S256',
    login_hint: 'alice@acme.test',
    ...params,
  };
  for (const [k, v] of Object.entries(all)) url.searchParams.set(k, v);
  return url.toString();
}

describe('before anything is redirected', () => {
  it.each([
    ['another host', 'https://evil.example/callback'],
    ['a longer path', `${CALLBACK}/../evil`],
    ['an extra query', `${CALLBACK}?next=https://evil.example`],
    ['a trailing slash', `${CALLBACK}/`],
    ['another scheme', CALLBACK.replace('http:', 'https:')],
    ['different case', CALLBACK.toUpperCase()],
  ])('shows an error page, never a redirect, for a redirect_uri with %s', async (_name, redirectUri) => {
    const before = await pendingCount();
    const res = await fetch(authorizeUrl({ redirect_uri: redirectUri }), { redirect: 'manual' });
    expect(res.status).toBe(400);
    expect(res.headers.get('location')).toBeNull();
    const page = await res.text();
    expect(page).toContain('redirect_uri_mismatch');
    expect(page).not.toMatch(/at .*\.ts:\d+/);
    expect(await pendingCount()).toBe(before);
  });

  it.each([
    ['an unregistered client', { client_id: randomUUID() }, 'unknown_client'],
    ['a client_id that is not an id', { client_id: 'main-app' }, 'invalid_client'],
    ['no redirect_uri', { redirect_uri: '' }, 'redirect_uri_missing'],
  ])('shows an error page for %s', async (_name, params, reason) => {
    const res = await fetch(authorizeUrl(params), { redirect: 'manual' });
    expect(res.status).toBe(400);
    expect(res.headers.get('location')).toBeNull();
    expect(await res.text()).toContain(reason);
  });

  it('requires PKCE from a public client, answered at its registered redirect_uri', async () => {
    const pub = await registerApp(gh, { redirect_uris: [CALLBACK], client_type: 'public' });
    const res = await fetch(
      authorizeUrl({ client_id: pub.clientId, code_challenge: '', code_challenge_method: '' }),
      {
        redirect: 'manual',
      },
    );
    const location = new URL(res.headers.get('location')!);
    expect(location.searchParams.get('error')).toBe('invalid_request');
    expect(location.searchParams.get('state')).toBe('st-1');
  });
});

describe('binding the login to the browser that started it', () => {
  async function startDeferred(browser: TestBrowser): Promise<string> {
    gh.flow.defer = true;
    try {
      const visit = await browser.visit(authorizeUrl({}), CALLBACK);
      expect(visit.status).toBe(200);
      return gh.flow.deferred.pop()!.loginId;
    } finally {
      gh.flow.defer = false;
    }
  }

  it('completes in the browser that started, with the code bound to it', async () => {
    const browser = new TestBrowser();
    const loginId = await startDeferred(browser);
    const visit = await browser.visit(`${idpReturn.url}/return?login=${loginId}`, CALLBACK);
    expect(codeOf(visit.redirectedTo)).toMatch(/^gh_code_/);
  });

  it.each([
    ['http', {}, /^gatehouse_authz=[\w-]{43}; Max-Age=\d+; Path=\/; Expires=[^;]+; HttpOnly; SameSite=Lax$/],
    [
      'https (__Host-, Secure)',
      { GATEHOUSE_BASE_URL: 'https://gatehouse.test' },
      /^__Host-gatehouse_authz=[\w-]{43}; Max-Age=\d+; Path=\/; Expires=[^;]+; HttpOnly; Secure; SameSite=Lax$/,
    ],
  ])(
    'binds the pending authorization with an HttpOnly, SameSite=Lax cookie over %s',
    async (_name, env, cookie) => {
      // A node of its own (same database, so the app is registered there too), its IdP leg held.
      const node = await startOAuthServer(t, env);
      node.flow.defer = true;
      try {
        const res = await fetch(authorizeUrl({}).replace(gh.baseUrl, node.url), { redirect: 'manual' });
        expect(res.status).toBe(200);
        expect(res.headers.getSetCookie()).toEqual([expect.stringMatching(cookie)]);
      } finally {
        await node.close();
      }
    },
  );

  it('refuses a login finished in another browser (forwarded link) and revokes its session', async () => {
    const attacker = new TestBrowser();
    const victim = new TestBrowser();
    const loginId = await startDeferred(attacker);
    const visit = await victim.visit(`${idpReturn.url}/return?login=${loginId}`, CALLBACK);
    expect(visit.redirectedTo).toBeNull();
    expect(visit.status).toBe(400);
    expect(visit.body).toContain('browser_mismatch');
    const continueUrl = visit.trail.find((u) => u.includes('/oauth/authorize/continue'))!;
    // The attacker's browser, which holds the binding cookie, gets nothing either.
    const replay = await attacker.visit(continueUrl, CALLBACK);
    expect(replay.redirectedTo).toBeNull();
    expect(replay.body).toContain('login_already_used');
    const sessions = await t.db.withTenant(alice.tenantId, (em) =>
      em.query<{ revoked_reason: string }[]>(
        `SELECT s.revoked_reason FROM sessions s JOIN authorization_requests r ON r.session_id = s.id WHERE r.id = $1`,
        [loginId],
      ),
    );
    expect(sessions).toEqual([{ revoked_reason: 'browser_mismatch' }]);
  });

  it('refuses to continue without the one-time token and leaves the login usable', async () => {
    const browser = new TestBrowser();
    const loginId = await startDeferred(browser);
    // Complete in the right browser but stop before following the redirect.
    const idp = await fetch(`${idpReturn.url}/return?login=${loginId}`, { redirect: 'manual' });
    const continueUrl = new URL(idp.headers.get('location')!);
    const guessed = new URL(continueUrl);
    guessed.searchParams.set('token', 'A'.repeat(43));
    const refused = await browser.visit(guessed.toString(), CALLBACK);
    expect(refused.body).toContain('browser_mismatch');
    const ok = await browser.visit(continueUrl.toString(), CALLBACK);
    expect(codeOf(ok.redirectedTo)).toMatch(/^gh_code_/);
    const again = await browser.visit(continueUrl.toString(), CALLBACK);
    expect(again.body).toContain('login_already_used');
  });

  it('refuses to complete a login twice or after it expired', async () => {
    const browser = new TestBrowser();
    const loginId = await startDeferred(browser);
    await browser.visit(`${idpReturn.url}/return?login=${loginId}`, CALLBACK);
    const twice = await browser.visit(`${idpReturn.url}/return?login=${loginId}`, CALLBACK);
    expect(twice.body).toContain('login_not_found');

    const late = await startDeferred(browser);
    await t.db.withPlatform((em) =>
      em.query(`UPDATE authorization_requests SET expires_at = now() - interval '1 second' WHERE id = $1`, [
        late,
      ]),
    );
    const expired = await browser.visit(`${idpReturn.url}/return?login=${late}`, CALLBACK);
    expect(expired.body).toContain('login_expired');
    const sessions = await t.db.withTenant(alice.tenantId, (em) =>
      em.query(
        `SELECT 1 FROM authorization_requests r JOIN sessions s ON s.id = r.session_id WHERE r.id = $1`,
        [late],
      ),
    );
    expect(sessions).toEqual([]);
  });

  it('refuses a person who was suspended while at the IdP, creating no session', async () => {
    const acme = { tenantId: alice.tenantId, connectionId: alice.connectionId };
    const carol = await createPerson(t.db, acme, 'carol@acme.test');
    await t.db.withTenant(carol.tenantId, (em) =>
      em.query(`UPDATE users SET status = 'suspended' WHERE id = $1`, [carol.userId]),
    );
    gh.flow.people.set('carol@acme.test', carol);
    const config = await mainAppClient(gh, app.clientId, app.clientSecret);
    const attempt = await authorize(config, new TestBrowser(), { login_hint: 'carol@acme.test' });
    const callback = new URL(attempt.callback!);
    expect(callback.searchParams.get('error')).toBe('access_denied');
    expect(callback.searchParams.get('error_description')).toContain('user_not_active');
    const sessions = await t.db.withTenant(carol.tenantId, (em) =>
      em.query('SELECT 1 FROM sessions WHERE user_id = $1', [carol.userId]),
    );
    expect(sessions).toEqual([]);
  });
});
