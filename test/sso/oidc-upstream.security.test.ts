import { randomUUID } from 'node:crypto';
import * as client from 'openid-client';
import { oidcCallbackUrl } from '../../src/sso/oidc/oidc-flow.js';
import { TestBrowser, type Visit } from '../support/browser.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { startOidcProvider, type OidcProviderPeer } from '../support/oidc-op.js';
import { registerMainApp, startSsoServer, type SsoServer } from '../support/sso-app.js';
import {
  auditEvents,
  createOidcConnection,
  createTenantWithDomains,
  loginFootprint,
} from '../support/sso-factories.js';

/**
 * Issue 8, OIDC upstream and "a refused login returns to the app": the main
 * app is openid-client, Gatehouse runs its real completer, and the tenant's
 * IdP is a real oidc-provider whose ID tokens carry the person's claims —
 * including `iat` (scopeClaims), so the OP itself signs a token dated in the
 * future. Every refusal must reach the app as RFC 6749 §4.1.2.1
 * `access_denied` with its state, RFC 9207 `iss` and the reason code, and
 * write no user, identity, session or code.
 */
const CALLBACK = 'http://localhost:3000/callback';

let t: TestDatabase;
let gh: SsoServer;
let app: client.Configuration;
let strictOp: OidcProviderPeer;
let trustingOp: OidcProviderPeer;
let strictTenant: string;
let trustingTenant: string;

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

  const strictId = randomUUID();
  strictOp = await startOidcProvider({
    redirectUris: [oidcCallbackUrl(gh.baseUrl, strictId)],
    claimsInIdToken: true,
    scopeClaims: { openid: ['sub', 'iat'] },
  });
  strictTenant = await createTenantWithDomains(t.db, 'strict-idp', ['strict.test']);
  await createOidcConnection(
    t.db,
    gh.secrets.masterKey,
    strictTenant,
    { issuer: strictOp.issuer, clientId: strictOp.clientId, clientSecret: strictOp.clientSecret },
    { id: strictId },
  );

  const trustingId = randomUUID();
  trustingOp = await startOidcProvider({
    redirectUris: [oidcCallbackUrl(gh.baseUrl, trustingId)],
    claimsInIdToken: true,
  });
  trustingTenant = await createTenantWithDomains(t.db, 'trusting-idp', ['trusting.test']);
  await createOidcConnection(
    t.db,
    gh.secrets.masterKey,
    trustingTenant,
    { issuer: trustingOp.issuer, clientId: trustingOp.clientId, clientSecret: trustingOp.clientSecret },
    { id: trustingId, oidcTrustEmailUnverified: true },
  );
});
afterAll(async () => {
  await strictOp.close();
  await trustingOp.close();
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

/** users, identities, sessions and authorization codes of a tenant. */
async function footprint(tenantId: string) {
  const login = await loginFootprint(t.db, tenantId);
  const [codes] = await t.db.withTenant(tenantId, (em) =>
    em.query<{ n: string }[]>('SELECT count(*) AS n FROM authorization_codes'),
  );
  return { ...login, codes: Number(codes?.n) };
}

/** What the app sees at its callback: openid-client's own handling of an error response. */
async function appError(visit: Visit, state: string) {
  expect(visit.redirectedTo).not.toBeNull();
  const callback = new URL(visit.redirectedTo ?? '');
  const error = await client
    .authorizationCodeGrant(app, callback, { expectedState: state, pkceCodeVerifier: 'x'.repeat(43) })
    .then(
      () => null,
      (e: unknown) => e,
    );
  expect(error).toBeInstanceOf(client.AuthorizationResponseError);
  return {
    error: (error as client.AuthorizationResponseError).error,
    description: (error as client.AuthorizationResponseError).error_description,
    params: Object.fromEntries(callback.searchParams),
  };
}

async function signInAt(op: OidcProviderPeer, email: string, claims: Record<string, unknown>) {
  op.signInAs({ sub: `sub-${randomUUID()}`, claims: { email, ...claims } });
  const browser = new TestBrowser();
  const request = await authorizationRequest({ login_hint: email });
  const visit = await browser.visit(request.url, CALLBACK);
  expect(visit.trail.some((u) => u.startsWith(op.issuer))).toBe(true);
  return { visit, request, browser };
}

const now = () => Math.floor(Date.now() / 1000);

describe('OIDC upstream ID token checks, answered to the app', () => {
  it.each([
    ['a day in the future', 86_400],
    ['just past the configured skew', 120],
  ])('refuses an ID token whose iat is %s: access_denied to the app, nothing written', async (_c, ahead) => {
    const before = await footprint(strictTenant);
    const { visit, request } = await signInAt(strictOp, 'fran@strict.test', {
      email_verified: true,
      iat: now() + ahead,
    });
    const answer = await appError(visit, request.checks.expectedState);
    expect(answer.error).toBe('access_denied');
    expect(answer.description).toBe('oidc_id_token_issued_in_future');
    expect(answer.params).toMatchObject({ state: request.checks.expectedState, iss: gh.baseUrl });
    expect(await footprint(strictTenant)).toEqual(before);
    const failures = await auditEvents(t.db, strictTenant, 'login.failed');
    expect(failures.at(-1)?.after).toMatchObject({ reason: 'oidc_id_token_issued_in_future' });
  });

  it('accepts an iat within the skew (clocks a few seconds apart)', async () => {
    const { visit, request } = await signInAt(strictOp, 'gil@strict.test', {
      email_verified: true,
      iat: now() + 20,
    });
    const tokens = await client.authorizationCodeGrant(app, new URL(visit.redirectedTo ?? ''), {
      ...request.checks,
      idTokenExpected: true,
    });
    expect(tokens.claims()).toMatchObject({ email: 'gil@strict.test', tid: strictTenant });
  });

  it.each([
    ['false', false],
    ['the string "false"', 'false'],
    ['absent', undefined],
    ['the number 1', 1],
  ])('refuses an email whose email_verified is %s: no user matched or created', async (_c, verified) => {
    const before = await footprint(strictTenant);
    const claims = verified === undefined ? {} : { email_verified: verified };
    const { visit, request } = await signInAt(strictOp, 'hal@strict.test', claims);
    const answer = await appError(visit, request.checks.expectedState);
    expect(answer).toMatchObject({ error: 'access_denied', description: 'oidc_email_unverified' });
    expect(answer.params).toMatchObject({ state: request.checks.expectedState, iss: gh.baseUrl });
    expect(await footprint(strictTenant)).toEqual(before);
  });

  it('does not let an unverified email claim an existing account', async () => {
    await t.db.withTenant(strictTenant, (em) =>
      em.query(
        `INSERT INTO users (tenant_id, user_name, email, email_verified) VALUES ($1, 'ida@strict.test', 'ida@strict.test', true)`,
        [strictTenant],
      ),
    );
    const before = await footprint(strictTenant);
    const { visit, request } = await signInAt(strictOp, 'ida@strict.test', { email_verified: false });
    expect((await appError(visit, request.checks.expectedState)).description).toBe('oidc_email_unverified');
    expect(await footprint(strictTenant)).toEqual(before);
  });

  it('takes email_verified "true" (a string, as some IdPs send it) as verified', async () => {
    const { visit, request } = await signInAt(strictOp, 'jo@strict.test', { email_verified: 'true' });
    const tokens = await client.authorizationCodeGrant(app, new URL(visit.redirectedTo ?? ''), {
      ...request.checks,
      idTokenExpected: true,
    });
    expect(tokens.claims()).toMatchObject({ email: 'jo@strict.test' });
  });

  it('uses an unverified email when the connection trusts its IdP’s emails (trust_email_unverified)', async () => {
    const { visit, request } = await signInAt(trustingOp, 'kim@trusting.test', {});
    const tokens = await client.authorizationCodeGrant(app, new URL(visit.redirectedTo ?? ''), {
      ...request.checks,
      idTokenExpected: true,
    });
    expect(tokens.claims()).toMatchObject({ email: 'kim@trusting.test', tid: trustingTenant });
    expect((await footprint(trustingTenant)).users).toBe(1);
  });
});

describe('a refused login returns to the app only in the browser that asked', () => {
  it('answers a discovery refusal of the app’s login_hint with access_denied, state and iss', async () => {
    const browser = new TestBrowser();
    const request = await authorizationRequest({ login_hint: 'nobody@unknown.test' });
    const visit = await browser.visit(request.url, CALLBACK);
    expect(visit.trail.some((u) => u.startsWith(`${gh.baseUrl}/sso/continue?handoff=`))).toBe(true);
    const answer = await appError(visit, request.checks.expectedState);
    expect(answer).toMatchObject({ error: 'access_denied', description: 'discovery_domain_unknown' });
    expect(answer.params.iss).toBe(gh.baseUrl);
  });

  it('keeps a planted login id on Gatehouse’s page: another browser is never redirected to the app', async () => {
    // The attacker's own pending request (a real one: the email form awaits its email).
    const attacker = new TestBrowser();
    const form = await attacker.visit((await authorizationRequest({})).url, CALLBACK);
    const loginId = /name="login" value="([^"]+)"/.exec(form.body)?.[1] ?? '';
    expect(loginId).toMatch(/^[0-9a-f-]{36}$/);

    const victim = new TestBrowser();
    const planted = await victim.visit(
      `${gh.baseUrl}/login?login=${loginId}&email=nobody%40unknown.test`,
      CALLBACK,
    );
    expect(planted.redirectedTo).toBeNull();
    expect(planted.status).toBe(400);
    expect(planted.body).toContain('<code>discovery_domain_unknown</code>');
    // The planted request is burnt: the attacker cannot use it afterwards either.
    const [row] = await t.db.withPlatform((em) =>
      em.query<{ completed_at: Date | null }[]>(
        'SELECT completed_at FROM authorization_requests WHERE id = $1',
        [loginId],
      ),
    );
    expect(row?.completed_at).not.toBeNull();
  });

  it('keeps the page for a login Gatehouse does not know (nothing to return to)', async () => {
    const visit = await new TestBrowser().visit(
      `${gh.baseUrl}/login?login=${randomUUID()}&email=nobody%40unknown.test`,
      CALLBACK,
    );
    expect(visit.redirectedTo).toBeNull();
    expect(visit.body).toContain('<code>discovery_domain_unknown</code>');
    expect(visit.body).not.toContain('Back to the application');
  });

  it('refuses a handoff opened without the SSO cookie it was bound to', async () => {
    const browser = new TestBrowser();
    const request = await authorizationRequest({ login_hint: 'nobody@unknown.test' });
    const first = await browser.visit(request.url, `${gh.baseUrl}/sso/continue`);
    const handoff = first.redirectedTo ?? '';
    expect(handoff).toContain('/sso/continue?handoff=');
    const elsewhere = await new TestBrowser().visit(handoff, CALLBACK);
    expect(elsewhere.redirectedTo).toBeNull();
    expect(elsewhere.body).toContain('<code>handoff_invalid</code>');
  });
});
