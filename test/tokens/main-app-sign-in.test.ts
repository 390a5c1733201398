import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import * as client from 'openid-client';
import { TestBrowser } from '../support/browser.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { authorize, CALLBACK, mainAppClient, signIn } from '../support/main-app.js';
import {
  createPerson,
  createTenantWithConnection,
  grantRole,
  sessionRow,
} from '../support/oauth-fixtures.js';
import { registerApp, startOAuthServer, type OAuthServer, type Person } from '../support/oauth-server.js';

/**
 * The main app's side of sign-in, with openid-client as the main app and jose
 * verifying access tokens through the JWKS. People are authenticated by the
 * test's DirectLoginFlow (our own internal seam, see test/support/oauth-server.ts);
 * the journeys through real SAML/OIDC IdPs are in test/sso.
 */
let t: TestDatabase;
let gh: OAuthServer;
let app: { clientId: string; clientSecret: string | undefined };
let alice: Person;
let bob: Person;
const LOGOUT_TARGET = 'http://localhost:3000/signed-out';

beforeAll(async () => {
  t = await createTestDatabase();
  gh = await startOAuthServer(t);
  const acme = await createTenantWithConnection(t.db, 'acme');
  alice = await createPerson(t.db, acme, 'alice@acme.test', { givenName: 'Alice', familyName: 'Liddell' });
  bob = await createPerson(t.db, acme, 'bob@acme.test', { emailVerified: false });
  await grantRole(t.db, alice, 'billing');
  await grantRole(t.db, alice, 'admin');
  gh.flow.people.set('alice@acme.test', alice);
  gh.flow.people.set('bob@acme.test', bob);
  app = await registerApp(gh, { redirect_uris: [CALLBACK], post_logout_redirect_uris: [LOGOUT_TARGET] });
});
afterAll(async () => {
  await gh.close();
  await t.close();
});

const jwks = () => createRemoteJWKSet(new URL(`${gh.baseUrl}/.well-known/jwks.json`));

describe('discovery', () => {
  it('publishes an OpenID configuration that openid-client accepts, with S256-only PKCE and RFC 9207 iss', async () => {
    const config = await mainAppClient(gh, app.clientId, app.clientSecret);
    const meta = config.serverMetadata();
    expect(meta).toMatchObject({
      issuer: gh.baseUrl,
      authorization_endpoint: `${gh.baseUrl}/oauth/authorize`,
      token_endpoint: `${gh.baseUrl}/oauth/token`,
      jwks_uri: `${gh.baseUrl}/.well-known/jwks.json`,
      end_session_endpoint: `${gh.baseUrl}/oauth/logout`,
      introspection_endpoint: `${gh.baseUrl}/oauth/introspect`,
      revocation_endpoint: `${gh.baseUrl}/oauth/revoke`,
      code_challenge_methods_supported: ['S256'],
      authorization_response_iss_parameter_supported: true,
    });
  });

  it('publishes only public keys, an active and a next key per algorithm', async () => {
    const res = await fetch(`${gh.baseUrl}/.well-known/jwks.json`);
    expect(res.headers.get('cache-control')).toMatch(/max-age=\d+/);
    const { keys } = (await res.json()) as { keys: Record<string, unknown>[] };
    expect(keys.map((k) => k.alg).sort()).toEqual(['ES256', 'ES256', 'EdDSA', 'EdDSA', 'RS256', 'RS256']);
    for (const key of keys) {
      expect(key).toMatchObject({ use: 'sig', kid: expect.any(String) });
      expect(key).not.toHaveProperty('d');
      expect(key).not.toHaveProperty('p');
    }
  });
});

describe('sign-in with the authorization code flow', () => {
  it('issues an ID token and an RFC 9068 access token bound to the tenant, the session and the roles', async () => {
    const config = await mainAppClient(gh, app.clientId, app.clientSecret, 'basic');
    const { tokens, attempt } = await signIn(config, new TestBrowser(), 'alice@acme.test');
    expect(new URL(attempt.callback!).searchParams.get('iss')).toBe(gh.baseUrl);

    const id = tokens.claims()!;
    expect(id).toMatchObject({
      iss: gh.baseUrl,
      sub: alice.userId,
      aud: app.clientId,
      nonce: attempt.nonce,
      email: 'alice@acme.test',
      email_verified: true,
      name: 'Alice Liddell',
      tid: alice.tenantId,
      roles: ['admin', 'billing'],
    });
    expect(id.sid).toEqual(expect.any(String));
    expect(id.auth_time).toEqual(expect.any(Number));

    const { payload, protectedHeader } = await jwtVerify(tokens.access_token, jwks(), {
      issuer: gh.baseUrl,
      audience: app.clientId,
      typ: 'at+jwt',
      algorithms: ['ES256'],
    });
    expect(protectedHeader).toMatchObject({ alg: 'ES256', typ: 'at+jwt' });
    expect(payload).toMatchObject({
      sub: alice.userId,
      client_id: app.clientId,
      tid: alice.tenantId,
      sid: id.sid,
      roles: ['admin', 'billing'],
      jti: expect.any(String),
    });
    expect(payload.exp! - payload.iat!).toBe(300);
    expect(tokens.expires_in).toBe(300);
    expect(tokens.refresh_token).toMatch(/^gh_rt_/);
  });

  it('falls back to the connection default role and reports an unverified email as such', async () => {
    const config = await mainAppClient(gh, app.clientId, app.clientSecret);
    const { tokens } = await signIn(config, new TestBrowser(), 'bob@acme.test');
    expect(tokens.claims()).toMatchObject({ sub: bob.userId, roles: ['member'], email_verified: false });
  });

  it('rotates the refresh token on every use and keeps the session', async () => {
    const config = await mainAppClient(gh, app.clientId, app.clientSecret);
    const { tokens } = await signIn(config, new TestBrowser(), 'alice@acme.test');
    const first = await client.refreshTokenGrant(config, tokens.refresh_token!);
    const second = await client.refreshTokenGrant(config, first.refresh_token!);
    expect(new Set([tokens.refresh_token, first.refresh_token, second.refresh_token]).size).toBe(3);
    expect(second.claims()).toMatchObject({ sub: alice.userId, sid: tokens.claims()!.sid });
    await jwtVerify(second.access_token, jwks(), {
      issuer: gh.baseUrl,
      audience: app.clientId,
      typ: 'at+jwt',
    });
  });

  it('answers userinfo and introspection, and revocation ends the session for every token', async () => {
    const config = await mainAppClient(gh, app.clientId, app.clientSecret);
    const { tokens } = await signIn(config, new TestBrowser(), 'alice@acme.test');
    const info = await client.fetchUserInfo(config, tokens.access_token, alice.userId);
    expect(info).toMatchObject({ sub: alice.userId, email: 'alice@acme.test', tid: alice.tenantId });

    const active = await client.tokenIntrospection(config, tokens.access_token);
    expect(active).toMatchObject({
      active: true,
      sub: alice.userId,
      client_id: app.clientId,
      tid: alice.tenantId,
    });
    expect(await client.tokenIntrospection(config, tokens.refresh_token!)).toMatchObject({
      active: true,
      token_type: 'refresh_token',
    });

    await client.tokenRevocation(config, tokens.refresh_token!);
    expect(await client.tokenIntrospection(config, tokens.access_token)).toEqual({ active: false });
    await expect(client.refreshTokenGrant(config, tokens.refresh_token!)).rejects.toMatchObject({
      error: 'invalid_grant',
    });
    const session = await sessionRow(t.db, alice.tenantId, tokens.claims()!.sid as string);
    expect(session).toMatchObject({ revoked_reason: 'revoked_by_client' });
  });

  it('ends the session on RP-initiated logout and returns to the registered address with state', async () => {
    const config = await mainAppClient(gh, app.clientId, app.clientSecret);
    const browser = new TestBrowser();
    const { tokens } = await signIn(config, browser, 'alice@acme.test');
    const url = client.buildEndSessionUrl(config, {
      id_token_hint: tokens.id_token!,
      post_logout_redirect_uri: LOGOUT_TARGET,
      state: 'bye-123',
    });
    const visit = await browser.visit(url.toString(), LOGOUT_TARGET);
    expect(visit.redirectedTo).toBe(`${LOGOUT_TARGET}?state=bye-123`);
    expect(await client.tokenIntrospection(config, tokens.access_token)).toEqual({ active: false });
    const session = await sessionRow(t.db, alice.tenantId, tokens.claims()!.sid as string);
    expect(session).toMatchObject({ revoked_reason: 'rp_initiated_logout' });
  });

  it('refuses to send the browser to an unregistered post-logout address', async () => {
    const config = await mainAppClient(gh, app.clientId, app.clientSecret);
    const browser = new TestBrowser();
    const { tokens } = await signIn(config, browser, 'alice@acme.test');
    const url = client.buildEndSessionUrl(config, {
      id_token_hint: tokens.id_token!,
      post_logout_redirect_uri: 'https://evil.example/steal',
    });
    const visit = await browser.visit(url.toString(), 'https://evil.example');
    expect(visit.redirectedTo).toBeNull();
    expect(visit.status).toBe(400);
    expect(visit.body).toContain('post_logout_redirect_uri_mismatch');
  });
});

describe('clients', () => {
  it('serves a public client with PKCE and no secret (token_endpoint_auth_method none)', async () => {
    const pub = await registerApp(gh, { redirect_uris: [CALLBACK], client_type: 'public' });
    expect(pub.clientSecret).toBeUndefined();
    const config = await mainAppClient(gh, pub.clientId, undefined, 'none');
    const { tokens } = await signIn(config, new TestBrowser(), 'alice@acme.test');
    expect(tokens.claims()).toMatchObject({ aud: pub.clientId });
    const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token!);
    expect(refreshed.access_token).toEqual(expect.any(String));
  });

  it('accepts client_secret_post', async () => {
    const config = await mainAppClient(gh, app.clientId, app.clientSecret, 'post');
    const { tokens } = await signIn(config, new TestBrowser(), 'alice@acme.test');
    expect(tokens.claims()).toMatchObject({ sub: alice.userId });
  });

  it.each(['EdDSA', 'RS256'] as const)('signs with %s for an app that asks for it', async (alg) => {
    const other = await registerApp(gh, { redirect_uris: [CALLBACK], token_signing_alg: alg });
    const config = await mainAppClient(gh, other.clientId, other.clientSecret);
    const { tokens } = await signIn(config, new TestBrowser(), 'alice@acme.test');
    expect(decodeProtectedHeader(tokens.id_token!).alg).toBe(alg);
    const { protectedHeader } = await jwtVerify(tokens.access_token, jwks(), {
      issuer: gh.baseUrl,
      audience: other.clientId,
      typ: 'at+jwt',
      algorithms: [alg],
    });
    expect(protectedHeader.alg).toBe(alg);
  });
});

describe('errors returned to the app', () => {
  it('returns a failed login to the redirect_uri as access_denied with state and iss', async () => {
    const config = await mainAppClient(gh, app.clientId, app.clientSecret);
    const attempt = await authorize(config, new TestBrowser(), { login_hint: 'nobody@acme.test' });
    const callback = new URL(attempt.callback!);
    expect(Object.fromEntries(callback.searchParams)).toMatchObject({
      error: 'access_denied',
      state: attempt.state,
      iss: gh.baseUrl,
    });
    expect(callback.searchParams.get('error_description')).toContain('test_unknown_person');
  });

  it('refuses a login into another organization than the app asked for, creating no session', async () => {
    const globex = await createTenantWithConnection(t.db, 'globex');
    const before = await t.db.withTenant(alice.tenantId, (em) =>
      em.query('SELECT count(*)::int AS n FROM sessions'),
    );
    const config = await mainAppClient(gh, app.clientId, app.clientSecret);
    const attempt = await authorize(config, new TestBrowser(), {
      login_hint: 'alice@acme.test',
      organization: 'globex',
    });
    const callback = new URL(attempt.callback!);
    expect(callback.searchParams.get('error')).toBe('access_denied');
    expect(callback.searchParams.get('error_description')).toContain('organization_mismatch');
    const after = await t.db.withTenant(alice.tenantId, (em) =>
      em.query('SELECT count(*)::int AS n FROM sessions'),
    );
    expect(after).toEqual(before);
    expect(globex.tenantId).not.toBe(alice.tenantId);
  });

  it.each([
    [{ prompt: 'none' }, 'login_required'],
    [{ scope: 'email' }, 'invalid_scope'],
    [{ response_type: 'token' }, 'unsupported_response_type'],
    [{ code_challenge_method: 'plain' }, 'invalid_request'],
    [{ request: 'eyJhbGciOiJub25lIn0.e30.' }, 'request_not_supported'],
  ])('answers %j with %s at the redirect_uri', async (params, error) => {
    const config = await mainAppClient(gh, app.clientId, app.clientSecret);
    const attempt = await authorize(config, new TestBrowser(), { login_hint: 'alice@acme.test', ...params });
    const callback = new URL(attempt.callback!);
    expect(callback.searchParams.get('error')).toBe(error);
    expect(callback.searchParams.get('state')).toBe(attempt.state);
  });
});

describe('secrets in logs', () => {
  it('never logs codes, tokens or client secrets', async () => {
    const config = await mainAppClient(gh, app.clientId, app.clientSecret);
    const { tokens, attempt } = await signIn(config, new TestBrowser(), 'alice@acme.test');
    const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token!);
    const logs = gh.logs();
    const code = new URL(attempt.callback!).searchParams.get('code')!;
    for (const secret of [
      code,
      tokens.access_token,
      tokens.id_token!,
      tokens.refresh_token!,
      refreshed.refresh_token!,
      app.clientSecret!,
    ]) {
      expect(logs).not.toContain(secret);
    }
  });
});
