import { randomUUID } from 'node:crypto';
import type { Connection } from '../../src/connections/connection.entity.js';
import { oidcCallbackUrl } from '../../src/sso/oidc/oidc-flow.js';
import { TestBrowser } from '../support/browser.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { startOidcProvider, type OidcProviderPeer } from '../support/oidc-op.js';
import { RecordingCompleter, startSsoServer, type SsoServer } from '../support/sso-app.js';
import { createOidcConnection, createTenantWithDomains, loginFootprint } from '../support/sso-factories.js';

/**
 * OpenID Connect at the tenant's IdP, against a real OpenID Provider
 * (oidc-provider) on loopback: discovery, code + PKCE + state + nonce, ID
 * token validation, userinfo, then the same completeLogin as SAML.
 */
let t: TestDatabase;
let gh: SsoServer;
const completer = new RecordingCompleter();
let op: OidcProviderPeer;
let tenantId: string;
let connection: Connection;

beforeAll(async () => {
  t = await createTestDatabase();
  gh = await startSsoServer(t, { completer });
  const connectionId = randomUUID();
  op = await startOidcProvider({ redirectUris: [oidcCallbackUrl(gh.baseUrl, connectionId)] });
  tenantId = await createTenantWithDomains(t.db, 'oidc-co', ['oidc.test']);
  connection = await createOidcConnection(
    t.db,
    gh.secrets.masterKey,
    tenantId,
    { issuer: op.issuer, clientId: op.clientId, clientSecret: op.clientSecret },
    { id: connectionId, oidcScopes: ['openid', 'email', 'profile', 'groups'] },
  );
});
afterAll(async () => {
  await op.close();
  await gh.close();
  await t.close();
});

async function signIn(email: string, sub: string, claims: Record<string, unknown>) {
  op.signInAs({ sub, claims });
  const browser = new TestBrowser();
  const loginId = randomUUID();
  const done = await browser.visit(
    `${gh.baseUrl}/login?login=${loginId}&email=${encodeURIComponent(email)}`,
    'about:',
  );
  return { browser, loginId, done };
}

describe('OIDC sign-in at the tenant IdP', () => {
  it('signs a person in with code + PKCE + state + nonce and provisions them from the claims', async () => {
    const { loginId, done } = await signIn('olga@oidc.test', 'op-sub-olga', {
      email: 'olga@oidc.test',
      email_verified: true,
      given_name: 'Olga',
      family_name: 'Orlova',
      name: 'Olga Orlova',
      groups: ['Platform'],
    });
    expect(done.body).toBe(`completed ${loginId}`);
    const authorization = new URL(done.trail.find((u) => u.startsWith(`${op.issuer}/auth`)) ?? '');
    expect(Object.fromEntries(authorization.searchParams)).toMatchObject({
      response_type: 'code',
      client_id: op.clientId,
      redirect_uri: oidcCallbackUrl(gh.baseUrl, connection.id),
      scope: 'openid email profile groups',
      code_challenge_method: 'S256',
      login_hint: 'olga@oidc.test',
    });
    for (const p of ['state', 'nonce', 'code_challenge'])
      expect(authorization.searchParams.get(p)).toMatch(/^[\w-]{20,}$/);
    const callback = new URL(done.trail.find((u) => u.includes('/callback?')) ?? '');
    // RFC 9207: oidc-provider names itself in the response; openid-client checks it.
    expect(callback.searchParams.get('iss')).toBe(op.issuer);

    const result = completer.completed.find((c) => c.loginId === loginId)?.result;
    expect(result).toMatchObject({ tenantId, connectionId: connection.id });
    const [user] = await t.db.withTenant(tenantId, (em) =>
      em.query(
        'SELECT email, email_verified, given_name, family_name, display_name FROM users WHERE id = $1',
        [result?.userId],
      ),
    );
    expect(user).toEqual({
      email: 'olga@oidc.test',
      email_verified: true,
      given_name: 'Olga',
      family_name: 'Orlova',
      display_name: 'Olga Orlova',
    });
    const [identity] = await t.db.withTenant(tenantId, (em) =>
      em.query('SELECT subject FROM identities WHERE user_id = $1', [result?.userId]),
    );
    expect(identity).toEqual({ subject: 'op-sub-olga' });
    const groups = await t.db.withTenant(tenantId, (em) =>
      em.query(
        `SELECT g.display_name FROM groups g JOIN group_members m ON m.group_id = g.id WHERE m.user_id = $1`,
        [result?.userId],
      ),
    );
    expect(groups).toEqual([{ display_name: 'Platform' }]);
  });

  it('refuses a state already used: the callback URL cannot be replayed', async () => {
    const { browser, done } = await signIn('paul@oidc.test', 'op-sub-paul', {
      email: 'paul@oidc.test',
      email_verified: true,
    });
    expect(done.body).toMatch(/^completed /);
    const callback = done.trail.find((u) => u.includes('/callback?')) ?? '';
    const again = await browser.visit(callback, 'about:');
    expect(again.body).toContain('<code>oidc_state_invalid</code>');
  });

  it('does not link an existing account through an email the IdP marks unverified', async () => {
    await t.db.withTenant(tenantId, (em) =>
      em.query(
        `INSERT INTO users (tenant_id, user_name, email, email_verified) VALUES ($1, 'vera@oidc.test', 'vera@oidc.test', true)`,
        [tenantId],
      ),
    );
    const before = await loginFootprint(t.db, tenantId);
    const { done } = await signIn('vera@oidc.test', 'op-sub-impostor', {
      email: 'vera@oidc.test',
      email_verified: false,
    });
    // Issue 8 (O-13): refused before the directory is consulted at all.
    expect(done.body).toContain('<code>oidc_email_unverified</code>');
    expect(await loginFootprint(t.db, tenantId)).toEqual(before);
  });
});
