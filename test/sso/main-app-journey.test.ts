import { randomUUID } from 'node:crypto';
import * as jose from 'jose';
import * as client from 'openid-client';
import type { Connection } from '../../src/connections/connection.entity.js';
import { oidcCallbackUrl } from '../../src/sso/oidc/oidc-flow.js';
import { TestBrowser } from '../support/browser.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { startOidcProvider, type OidcProviderPeer } from '../support/oidc-op.js';
import { SamlTestIdp } from '../support/saml-idp.js';
import { registerMainApp, startSsoServer, type SsoServer } from '../support/sso-app.js';
import {
  createOidcConnection,
  createSamlConnection,
  createTenantWithDomains,
  loginFootprint,
  spOf,
} from '../support/sso-factories.js';

/**
 * The whole journey, every party real: the main app is openid-client (as a
 * real integration uses it) → Gatehouse /oauth/authorize → home realm
 * discovery → the tenant's IdP (samlify SAML IdP, or oidc-provider) → ACS /
 * callback → completeLogin → code → tokens, verified by the app's API with a
 * remote JWKS (jose), the way a real app would.
 */
const CALLBACK = 'http://localhost:3000/callback';

let t: TestDatabase;
let gh: SsoServer;
let app: client.Configuration;
let jwks: ReturnType<typeof jose.createRemoteJWKSet>;
let samlIdp: SamlTestIdp;
let op: OidcProviderPeer;
let acmeId: string;
let acmeSaml: Connection;
let globexId: string;

beforeAll(async () => {
  t = await createTestDatabase();
  gh = await startSsoServer(t);
  const { clientId, clientSecret } = await registerMainApp(gh, CALLBACK);
  app = await client.discovery(
    new URL(gh.baseUrl),
    clientId,
    undefined,
    client.ClientSecretBasic(clientSecret),
    {
      execute: [client.allowInsecureRequests],
    },
  );
  jwks = jose.createRemoteJWKSet(new URL(app.serverMetadata().jwks_uri ?? ''));

  samlIdp = await SamlTestIdp.create('acme');
  acmeId = await createTenantWithDomains(t.db, 'acme', ['acme.test']);
  acmeSaml = await createSamlConnection(t.db, acmeId, samlIdp, { defaultRole: 'member' });
  await t.db.withTenant(acmeId, (em) =>
    em.query(
      `INSERT INTO role_mappings (tenant_id, group_attribute, group_value, role) VALUES ($1, 'display_name', 'Gatehouse Admins', 'admin')`,
      [acmeId],
    ),
  );

  const globexConnectionId = randomUUID();
  op = await startOidcProvider({ redirectUris: [oidcCallbackUrl(gh.baseUrl, globexConnectionId)] });
  globexId = await createTenantWithDomains(t.db, 'globex', ['globex.test']);
  await createOidcConnection(
    t.db,
    gh.secrets.masterKey,
    globexId,
    { issuer: op.issuer, clientId: op.clientId, clientSecret: op.clientSecret },
    { id: globexConnectionId },
  );
});
afterAll(async () => {
  await op.close();
  await gh.close();
  await t.close();
});

async function authorizationRequest(params: Record<string, string>) {
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const url = client.buildAuthorizationUrl(app, {
    redirect_uri: CALLBACK,
    scope: 'openid email profile',
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
    nonce,
    ...params,
  });
  return {
    url: url.toString(),
    checks: { pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce },
  };
}

/** What the main app's API does with a bearer token: verify it against Gatehouse's JWKS. */
async function apiVerifies(accessToken: string) {
  const { payload, protectedHeader } = await jose.jwtVerify(accessToken, jwks, {
    issuer: app.serverMetadata().issuer,
    typ: 'at+jwt',
  });
  return { payload, protectedHeader };
}

describe('the main app signs a person in through their company IdP', () => {
  it('via SAML: tenant-bound tokens with roles mapped from the IdP’s groups', async () => {
    const browser = new TestBrowser();
    const request = await authorizationRequest({ login_hint: 'alice@acme.test' });
    const toIdp = await browser.visit(request.url, samlIdp.ssoUrl);
    expect(toIdp.redirectedTo).toMatch(/^https:\/\/acme\.idp\.test\/sso\?SAMLRequest=/);

    const sp = spOf(gh.baseUrl, acmeSaml);
    const answer = await samlIdp.answer(toIdp.redirectedTo ?? '', sp, {
      nameId: 'alice@acme.test',
      attributes: {
        email: 'alice@acme.test',
        firstName: 'Alice',
        lastName: 'Anderson',
        groups: ['Gatehouse Admins'],
      },
    });
    const back = await browser.visit(sp.acsUrl, CALLBACK, {
      method: 'POST',
      form: { SAMLResponse: answer.samlResponse },
    });
    expect(back.redirectedTo).toMatch(/^http:\/\/localhost:3000\/callback\?/);

    const tokens = await client.authorizationCodeGrant(app, new URL(back.redirectedTo ?? ''), {
      ...request.checks,
      idTokenExpected: true,
    });
    const idToken = tokens.claims();
    expect(idToken).toMatchObject({
      email: 'alice@acme.test',
      email_verified: true,
      name: 'Alice Anderson',
      tid: acmeId,
    });
    const { payload } = await apiVerifies(tokens.access_token);
    expect(payload).toMatchObject({
      sub: idToken?.sub,
      tid: acmeId,
      roles: ['admin'],
      client_id: app.clientMetadata().client_id,
    });
    expect(await loginFootprint(t.db, acmeId)).toMatchObject({ users: 1, identities: 1, sessions: 1 });
  });

  it('via OIDC: a second tenant at a real OpenID Provider, its default role', async () => {
    op.signInAs({
      sub: 'op-bob',
      claims: { email: 'bob@globex.test', email_verified: true, name: 'Bob Brown' },
    });
    const browser = new TestBrowser();
    const request = await authorizationRequest({ login_hint: 'bob@globex.test' });
    const back = await browser.visit(request.url, CALLBACK);
    expect(back.trail.some((u) => u.startsWith(op.issuer))).toBe(true);
    const tokens = await client.authorizationCodeGrant(app, new URL(back.redirectedTo ?? ''), {
      ...request.checks,
      idTokenExpected: true,
    });
    const { payload } = await apiVerifies(tokens.access_token);
    expect(payload).toMatchObject({ tid: globexId, roles: ['member'] });
    expect(tokens.claims()).toMatchObject({ email: 'bob@globex.test', tid: globexId });
  });

  it('tells the app access_denied, with its state, iss and the reason, when the person is refused', async () => {
    await t.db.withTenant(acmeId, (em) =>
      em.query(
        `INSERT INTO users (tenant_id, user_name, email, email_verified, status) VALUES ($1, 'sam@acme.test', 'sam@acme.test', true, 'suspended')`,
        [acmeId],
      ),
    );
    const before = await loginFootprint(t.db, acmeId);
    const browser = new TestBrowser();
    const request = await authorizationRequest({ login_hint: 'sam@acme.test' });
    const toIdp = await browser.visit(request.url, samlIdp.ssoUrl);
    const sp = spOf(gh.baseUrl, acmeSaml);
    const answer = await samlIdp.answer(toIdp.redirectedTo ?? '', sp, { nameId: 'sam@acme.test' });
    // Issue 8: straight back to the app (through the same-site /sso/continue hop), no page in between.
    const back = await browser.visit(sp.acsUrl, CALLBACK, {
      method: 'POST',
      form: { SAMLResponse: answer.samlResponse },
    });
    expect(back.trail.some((u) => u.startsWith(`${gh.baseUrl}/sso/continue?handoff=`))).toBe(true);
    expect(await loginFootprint(t.db, acmeId)).toEqual(before);
    const callback = new URL(back.redirectedTo ?? '');
    expect(callback.searchParams.get('error')).toBe('access_denied');
    expect(callback.searchParams.get('error_description')).toBe('user_suspended');
    expect(callback.searchParams.get('state')).toBe(request.checks.expectedState);
    expect(callback.searchParams.get('iss')).toBe(gh.baseUrl);
  });
});
