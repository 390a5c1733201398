import * as client from 'openid-client';
import { TestBrowser } from '../support/browser.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { authorize, CALLBACK, codeOf, mainAppClient, postForm, signIn } from '../support/main-app.js';
import { createPerson, createTenantWithConnection, sessionRow } from '../support/oauth-fixtures.js';
import { registerApp, startOAuthServer, type OAuthServer, type Person } from '../support/oauth-server.js';

/**
 * Attacks on the token endpoint: replayed codes and refresh tokens, PKCE,
 * redirect_uri binding, client authentication. People sign in through the
 * test's DirectLoginFlow (internal seam; the real IdPs are in test/sso).
 */
let t: TestDatabase;
let gh: OAuthServer;
let app: { clientId: string; clientSecret: string };
let other: { clientId: string; clientSecret: string };
let alice: Person;

beforeAll(async () => {
  t = await createTestDatabase();
  gh = await startOAuthServer(t);
  const acme = await createTenantWithConnection(t.db, 'acme');
  alice = await createPerson(t.db, acme, 'alice@acme.test');
  gh.flow.people.set('alice@acme.test', alice);
  const a = await registerApp(gh, { redirect_uris: [CALLBACK] });
  const b = await registerApp(gh, { redirect_uris: [CALLBACK] });
  app = { clientId: a.clientId, clientSecret: a.clientSecret! };
  other = { clientId: b.clientId, clientSecret: b.clientSecret! };
});
afterAll(async () => {
  await gh.close();
  await t.close();
});

const basic = (c: { clientId: string; clientSecret: string }) => ({ id: c.clientId, secret: c.clientSecret });

async function freshCode() {
  const config = await mainAppClient(gh, app.clientId, app.clientSecret);
  const attempt = await authorize(config, new TestBrowser(), { login_hint: 'alice@acme.test' });
  return { config, attempt, code: codeOf(attempt.callback) };
}

const exchange = (code: string, verifier: string, client = app, extra: Record<string, string> = {}) =>
  postForm(
    gh,
    '/oauth/token',
    { grant_type: 'authorization_code', code, redirect_uri: CALLBACK, code_verifier: verifier, ...extra },
    basic(client),
  );

const sidOf = (idToken: string) =>
  JSON.parse(Buffer.from(idToken.split('.')[1]!, 'base64url').toString()).sid as string;

describe('authorization codes', () => {
  it('refuses a reused code and revokes the session it issued, so its tokens die too', async () => {
    const { config, attempt, code } = await freshCode();
    const first = await exchange(code, attempt.verifier);
    expect(first.status).toBe(200);
    const again = await exchange(code, attempt.verifier);
    expect(again.status).toBe(400);
    expect(again.body).toMatchObject({ error: 'invalid_grant' });
    const sid = sidOf(first.body.id_token as string);
    expect(await sessionRow(t.db, alice.tenantId, sid)).toMatchObject({
      revoked_reason: 'authorization_code_reused',
    });
    expect(await client.tokenIntrospection(config, first.body.access_token as string)).toEqual({
      active: false,
    });
    const refresh = await postForm(
      gh,
      '/oauth/token',
      { grant_type: 'refresh_token', refresh_token: first.body.refresh_token as string },
      basic(app),
    );
    expect(refresh.body).toMatchObject({ error: 'invalid_grant' });
  });

  it('refuses a wrong PKCE verifier, burns the code and revokes the session', async () => {
    const { attempt, code } = await freshCode();
    const wrong = await exchange(code, client.randomPKCECodeVerifier());
    expect(wrong.status).toBe(400);
    expect(wrong.body).toMatchObject({
      error: 'invalid_grant',
      error_description: 'PKCE verification failed',
    });
    const right = await exchange(code, attempt.verifier);
    expect(right.body).toMatchObject({ error: 'invalid_grant' });
    const sessionId = code.slice('gh_code_'.length, code.indexOf('.'));
    expect(await sessionRow(t.db, alice.tenantId, sessionId)).toMatchObject({
      revoked_reason: 'pkce_verification_failed',
    });
  });

  it('refuses an exchange without the verifier when the request had a code_challenge', async () => {
    const { code } = await freshCode();
    const res = await postForm(
      gh,
      '/oauth/token',
      { grant_type: 'authorization_code', code, redirect_uri: CALLBACK },
      basic(app),
    );
    expect(res.body).toMatchObject({ error: 'invalid_grant' });
  });

  it('refuses a redirect_uri that differs from the authorization request', async () => {
    const { attempt, code } = await freshCode();
    const res = await exchange(code, attempt.verifier, app, { redirect_uri: `${CALLBACK}/other` });
    expect(res.body).toMatchObject({ error: 'invalid_grant' });
  });

  it("refuses another client's code without consuming it", async () => {
    const { attempt, code } = await freshCode();
    const stolen = await exchange(code, attempt.verifier, other);
    expect(stolen.body).toMatchObject({ error: 'invalid_grant' });
    expect((await exchange(code, attempt.verifier)).status).toBe(200);
  });

  it('refuses an expired code', async () => {
    const { attempt, code } = await freshCode();
    await t.db.withTenant(alice.tenantId, (em) =>
      em.query(`UPDATE authorization_codes SET expires_at = now() - interval '1 second'`),
    );
    expect((await exchange(code, attempt.verifier)).body).toMatchObject({ error: 'invalid_grant' });
  });

  it.each([
    ['a malformed code', 'not-a-code'],
    ['a code with an unknown session', 'gh_code_00000000-0000-4000-8000-000000000000.' + 'A'.repeat(43)],
  ])('refuses %s', async (_name, code) => {
    expect((await exchange(code, client.randomPKCECodeVerifier())).body).toMatchObject({
      error: 'invalid_grant',
    });
  });
});

describe('client authentication', () => {
  it('answers an unregistered client with 401 invalid_client', async () => {
    const res = await postForm(
      gh,
      '/oauth/token',
      { grant_type: 'authorization_code', code: 'x', redirect_uri: CALLBACK },
      { id: '00000000-0000-4000-8000-000000000000', secret: 'gh_secret_x' },
    );
    expect(res.status).toBe(401);
    expect(res.body).toMatchObject({ error: 'invalid_client' });
  });

  it('answers a bad secret with 401 and a Basic challenge, and issues nothing', async () => {
    const { attempt, code } = await freshCode();
    const res = await exchange(code, attempt.verifier, {
      ...app,
      clientSecret: `${app.clientSecret.slice(0, -2)}xx`,
    });
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toMatch(/^Basic/);
    expect(res.body).toEqual({ error: 'invalid_client', error_description: 'Client authentication failed' });
    expect((await exchange(code, attempt.verifier)).status).toBe(200);
  });

  it('refuses a confidential client that sends no secret, and two authentication methods at once', async () => {
    const none = await postForm(gh, '/oauth/token', {
      grant_type: 'refresh_token',
      refresh_token: 'x',
      client_id: app.clientId,
    });
    expect(none.status).toBe(401);
    const both = await postForm(
      gh,
      '/oauth/token',
      { grant_type: 'refresh_token', refresh_token: 'x', client_secret: app.clientSecret },
      basic(app),
    );
    expect(both.body).toMatchObject({ error: 'invalid_request' });
  });

  it('refuses a public client that presents a secret', async () => {
    const pub = await registerApp(gh, { redirect_uris: [CALLBACK], client_type: 'public' });
    const res = await postForm(gh, '/oauth/token', {
      grant_type: 'refresh_token',
      refresh_token: 'x',
      client_id: pub.clientId,
      client_secret: 'anything',
    });
    expect(res.status).toBe(401);
  });

  it('refuses repeated parameters, JSON bodies and unsupported grant types', async () => {
    const repeated = await postForm(
      gh,
      '/oauth/token',
      { grant_type: ['authorization_code', 'refresh_token'], code: 'x' },
      basic(app),
    );
    expect(repeated.body).toMatchObject({ error: 'invalid_request' });
    const json = await fetch(`${gh.baseUrl}/oauth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ grant_type: 'refresh_token' }),
    });
    expect(json.status).toBe(400);
    expect(await json.json()).toMatchObject({ error: 'invalid_request' });
    for (const grant of ['client_credentials', 'password', 'implicit']) {
      const res = await postForm(gh, '/oauth/token', { grant_type: grant }, basic(app));
      expect(res.body).toMatchObject({ error: 'unsupported_grant_type' });
    }
  });
});

describe('refresh tokens', () => {
  it('revokes the whole session when a used refresh token is presented again', async () => {
    const config = await mainAppClient(gh, app.clientId, app.clientSecret);
    const { tokens } = await signIn(config, new TestBrowser(), 'alice@acme.test');
    const rotated = await client.refreshTokenGrant(config, tokens.refresh_token!);
    await expect(client.refreshTokenGrant(config, tokens.refresh_token!)).rejects.toMatchObject({
      error: 'invalid_grant',
    });
    // The thief's replay also kills the legitimate, newer token.
    await expect(client.refreshTokenGrant(config, rotated.refresh_token!)).rejects.toMatchObject({
      error: 'invalid_grant',
    });
    expect(await sessionRow(t.db, alice.tenantId, tokens.claims()!.sid as string)).toMatchObject({
      revoked_reason: 'refresh_token_reused',
    });
    expect(await client.tokenIntrospection(config, rotated.access_token)).toEqual({ active: false });
  });

  it("refuses another client's refresh token without consuming it", async () => {
    const config = await mainAppClient(gh, app.clientId, app.clientSecret);
    const { tokens } = await signIn(config, new TestBrowser(), 'alice@acme.test');
    const stolen = await postForm(
      gh,
      '/oauth/token',
      { grant_type: 'refresh_token', refresh_token: tokens.refresh_token! },
      basic(other),
    );
    expect(stolen.body).toMatchObject({ error: 'invalid_grant' });
    await client.refreshTokenGrant(config, tokens.refresh_token!);
  });

  it('refuses a refresh that widens the scope, and an expired refresh token', async () => {
    const config = await mainAppClient(gh, app.clientId, app.clientSecret);
    const { tokens } = await signIn(config, new TestBrowser(), 'alice@acme.test', { scope: 'openid email' });
    await expect(
      client.refreshTokenGrant(config, tokens.refresh_token!, { scope: 'openid email profile' }),
    ).rejects.toMatchObject({ error: 'invalid_scope' });
    const narrowed = await client.refreshTokenGrant(config, tokens.refresh_token!, { scope: 'openid' });
    expect(narrowed.scope).toBe('openid');
    await t.db.withTenant(alice.tenantId, (em) =>
      em.query(`UPDATE refresh_tokens SET expires_at = now() - interval '1 second' WHERE used_at IS NULL`),
    );
    await expect(client.refreshTokenGrant(config, narrowed.refresh_token!)).rejects.toMatchObject({
      error: 'invalid_grant',
    });
  });
});
