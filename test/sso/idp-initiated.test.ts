import * as client from 'openid-client';
import type { Connection } from '../../src/connections/connection.entity.js';
import { TestBrowser } from '../support/browser.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { SamlTestIdp } from '../support/saml-idp.js';
import { startSsoServer, type SsoServer } from '../support/sso-app.js';
import {
  createSamlConnection,
  createTenantWithDomains,
  loginFootprint,
  spOf,
} from '../support/sso-factories.js';

/**
 * IdP-initiated SAML logins land in the main app by OpenID Connect
 * third-party initiated login (OIDC Core §4). Every party is real: samlify
 * is the IdP sending an unsolicited signed response to the ACS, openid-client
 * is the main app. Gatehouse sends the browser to the app's registered
 * initiate_login_uri with iss and login_hint only; the app then starts its
 * own code flow (PKCE, state, nonce), which runs SP-initiated SSO at the same
 * IdP, and only that flow yields a session, a code and tokens.
 */
const APP = 'http://localhost:3000';
const CALLBACK = `${APP}/callback`;
const INITIATE = `${APP}/login/start?from=gatehouse`;

let t: TestDatabase;
let gh: SsoServer;
let app: client.Configuration;
let appId: string;
let acmeIdp: SamlTestIdp;
let globexIdp: SamlTestIdp;
let acmeId: string;
let globexId: string;
let acme: Connection;
let acmePlain: Connection;
let acmeClosed: Connection;
let globex: Connection;

async function admin(method: string, path: string, body: unknown): Promise<Record<string, unknown>> {
  const res = await fetch(`${gh.address}/admin/v1${path}`, {
    method,
    headers: { Authorization: `Bearer ${gh.secrets.adminToken}`, 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
  return (await res.json()) as Record<string, unknown>;
}

async function nameApp(tenantId: string, connection: Connection): Promise<void> {
  await admin('PATCH', `/tenants/${tenantId}/connections/${connection.id}`, { idp_initiated_app_id: appId });
}

/** The IdP posts an unsolicited response for `email` to the connection's ACS; the browser stops at the app. */
async function idpInitiated(browser: TestBrowser, idp: SamlTestIdp, connection: Connection, email: string) {
  const sp = spOf(gh.baseUrl, connection);
  const answer = await idp.unsolicited(sp, {
    nameId: email,
    attributes: { email, firstName: 'Alice', lastName: 'Anderson' },
  });
  return browser.visit(sp.acsUrl, APP, { method: 'POST', form: { SAMLResponse: answer.samlResponse } });
}

/** One-time rows of the OAuth side: pending requests (platform), codes and sessions (tenant). */
async function oauthFootprint(tenantId: string) {
  const [pending] = await t.asOwner<{ n: string }>('SELECT count(*) AS n FROM authorization_requests');
  const [tenant] = await t.db.withTenant(tenantId, (em) =>
    em.query<{ codes: string; sessions: string }[]>(
      `SELECT (SELECT count(*) FROM authorization_codes) AS codes, (SELECT count(*) FROM sessions) AS sessions`,
    ),
  );
  return {
    authorizationRequests: Number(pending?.n),
    codes: Number(tenant?.codes),
    sessions: Number(tenant?.sessions),
  };
}

beforeAll(async () => {
  t = await createTestDatabase();
  gh = await startSsoServer(t);
  const registered = await admin('POST', '/apps', {
    name: 'Main app',
    redirect_uris: [CALLBACK],
    initiate_login_uri: INITIATE,
  });
  appId = registered.client_id as string;
  app = await client.discovery(
    new URL(gh.baseUrl),
    appId,
    undefined,
    client.ClientSecretBasic(registered.client_secret as string),
    { execute: [client.allowInsecureRequests] },
  );

  acmeIdp = await SamlTestIdp.create('acme');
  acmeId = await createTenantWithDomains(t.db, 'acme', ['acme.test']);
  acme = await createSamlConnection(t.db, acmeId, acmeIdp, { samlAllowIdpInitiated: true });
  await nameApp(acmeId, acme);

  globexIdp = await SamlTestIdp.create('globex');
  globexId = await createTenantWithDomains(t.db, 'globex', ['globex.test']);
  globex = await createSamlConnection(t.db, globexId, globexIdp, { samlAllowIdpInitiated: true });
  await nameApp(globexId, globex);
});
afterAll(async () => {
  await gh.close();
  await t.close();
});

describe('IdP-initiated SAML login lands in the main app (OIDC Core §4)', () => {
  it('sends the browser to the app’s initiate_login_uri; the app’s own code flow signs the same person in', async () => {
    const browser = new TestBrowser();
    const arrival = await idpInitiated(browser, acmeIdp, acme, 'alice@acme.test');
    expect(arrival.status).toBe(303);
    const initiate = new URL(arrival.redirectedTo ?? '');
    expect(`${initiate.origin}${initiate.pathname}`).toBe(`${APP}/login/start`);
    expect(Object.fromEntries(initiate.searchParams)).toEqual({
      from: 'gatehouse',
      iss: gh.baseUrl,
      login_hint: 'alice@acme.test',
    });
    // The person is provisioned and the login audited, but no app asked: nothing to redeem yet.
    expect(await oauthFootprint(acmeId)).toEqual({ authorizationRequests: 0, codes: 0, sessions: 0 });
    const [user] = await t.db.withTenant(acmeId, (em) =>
      em.query<{ id: string }[]>(`SELECT id FROM users WHERE email = 'alice@acme.test'`),
    );
    const audited = await t.db.withTenant(acmeId, (em) =>
      em.query<{ target_id: string }[]>(
        `SELECT target_id FROM audit_events WHERE action = 'login.succeeded'`,
      ),
    );
    expect(audited).toEqual([{ target_id: user?.id }]);

    // The app's initiate_login_uri: check iss is our OP, then start a normal login with the hint.
    expect(initiate.searchParams.get('iss')).toBe(app.serverMetadata().issuer);
    const verifier = client.randomPKCECodeVerifier();
    const state = client.randomState();
    const nonce = client.randomNonce();
    const authorize = client.buildAuthorizationUrl(app, {
      redirect_uri: CALLBACK,
      scope: 'openid email profile',
      code_challenge: await client.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state,
      nonce,
      login_hint: initiate.searchParams.get('login_hint') ?? '',
    });
    const toIdp = await browser.visit(authorize.toString(), acmeIdp.ssoUrl);
    // The IdP, whose session is still open, answers the SP-initiated request at once.
    const sp = spOf(gh.baseUrl, acme);
    const answer = await acmeIdp.answer(toIdp.redirectedTo ?? '', sp, {
      nameId: 'alice@acme.test',
      attributes: { email: 'alice@acme.test', firstName: 'Alice', lastName: 'Anderson' },
    });
    const back = await browser.visit(sp.acsUrl, CALLBACK, {
      method: 'POST',
      form: { SAMLResponse: answer.samlResponse },
    });
    const tokens = await client.authorizationCodeGrant(app, new URL(back.redirectedTo ?? ''), {
      pkceCodeVerifier: verifier,
      expectedState: state,
      expectedNonce: nonce,
      idTokenExpected: true,
    });
    expect(tokens.claims()).toMatchObject({ sub: user?.id, email: 'alice@acme.test', tid: acmeId });
    expect(await loginFootprint(t.db, acmeId)).toMatchObject({ users: 1, identities: 1, sessions: 1 });
  });

  it('keeps the “start from your application” page for a connection that names no app', async () => {
    acmePlain = await createSamlConnection(t.db, acmeId, acmeIdp, { samlAllowIdpInitiated: true });
    const before = await oauthFootprint(acmeId);
    const page = await idpInitiated(new TestBrowser(), acmeIdp, acmePlain, 'bea@acme.test');
    expect(page.redirectedTo).toBeNull();
    expect(page.status).toBe(200);
    expect(page.body).toContain('No application asked for this sign-in');
    expect(await oauthFootprint(acmeId)).toEqual(before);
  });

  it('keeps the page when the named app lost its initiate_login_uri since', async () => {
    const other = await admin('POST', '/apps', {
      name: 'Other app',
      redirect_uris: [CALLBACK],
      initiate_login_uri: `${APP}/other/start`,
    });
    await admin('PATCH', `/tenants/${acmeId}/connections/${acmePlain.id}`, {
      idp_initiated_app_id: other.client_id,
    });
    await admin('PATCH', `/apps/${other.client_id as string}`, { initiate_login_uri: null });
    const page = await idpInitiated(new TestBrowser(), acmeIdp, acmePlain, 'cy@acme.test');
    expect(page.redirectedTo).toBeNull();
    expect(page.body).toContain('No application asked for this sign-in');
  });

  it('refuses, as before, where the connection does not allow IdP-initiated login, even with an app named', async () => {
    acmeClosed = await createSamlConnection(t.db, acmeId, acmeIdp, { samlAllowIdpInitiated: false });
    await nameApp(acmeId, acmeClosed);
    const before = await loginFootprint(t.db, acmeId);
    const page = await idpInitiated(new TestBrowser(), acmeIdp, acmeClosed, 'dan@acme.test');
    expect(page.redirectedTo).toBeNull();
    expect(page.body).toContain('<code>saml_unsolicited_response</code>');
    expect(await loginFootprint(t.db, acmeId)).toEqual(before);
  });

  it('lands another tenant’s login in the same platform app, hinting only that tenant’s asserted user', async () => {
    const before = await oauthFootprint(globexId);
    const arrival = await idpInitiated(new TestBrowser(), globexIdp, globex, 'gus@globex.test');
    const initiate = new URL(arrival.redirectedTo ?? '');
    expect(`${initiate.origin}${initiate.pathname}`).toBe(`${APP}/login/start`);
    expect(initiate.searchParams.get('login_hint')).toBe('gus@globex.test');
    expect(await oauthFootprint(globexId)).toEqual(before);
    expect(before).toMatchObject({ codes: 0, sessions: 0 });
  });

  it('sends nowhere when another tenant’s IdP asserts an address of Acme’s verified domain', async () => {
    const before = await loginFootprint(t.db, acmeId);
    const page = await idpInitiated(new TestBrowser(), globexIdp, globex, 'alice@acme.test');
    expect(page.redirectedTo).toBeNull();
    expect(page.body).toContain('<code>email_domain_of_other_tenant</code>');
    expect(await loginFootprint(t.db, acmeId)).toEqual(before);
  });
});
