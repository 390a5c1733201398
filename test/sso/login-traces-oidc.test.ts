import { randomUUID } from 'node:crypto';
import { oidcCallbackUrl } from '../../src/sso/oidc/oidc-flow.js';
import { TestBrowser } from '../support/browser.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { startOidcProvider, type OidcProviderPeer } from '../support/oidc-op.js';
import { RecordingCompleter, startSsoServer, type SsoServer } from '../support/sso-app.js';
import { createOidcConnection, createTenantWithDomains } from '../support/sso-factories.js';

/**
 * Issue 15, OIDC: the trace of a login at a real OpenID Provider (oidc-provider
 * on loopback) has OIDC's own steps — state, code exchange, ID token
 * signature, issuer, audience, nonce, time window — then domain and JIT, each
 * from the check that ran.
 */
let t: TestDatabase;
let gh: SsoServer;
let op: OidcProviderPeer;
let tenantId: string;

beforeAll(async () => {
  t = await createTestDatabase();
  gh = await startSsoServer(t, { completer: new RecordingCompleter() });
  const connectionId = randomUUID();
  op = await startOidcProvider({ redirectUris: [oidcCallbackUrl(gh.baseUrl, connectionId)] });
  tenantId = await createTenantWithDomains(t.db, 'oidc-traces', ['oidc-traces.test']);
  await createOidcConnection(
    t.db,
    gh.secrets.masterKey,
    tenantId,
    { issuer: op.issuer, clientId: op.clientId, clientSecret: op.clientSecret },
    { id: connectionId, oidcScopes: ['openid', 'email', 'profile'] },
  );
});
afterAll(async () => {
  await op.close();
  await gh.close();
  await t.close();
});

async function signIn(sub: string, claims: Record<string, unknown>) {
  op.signInAs({ sub, claims });
  return new TestBrowser().visit(
    `${gh.baseUrl}/login?login=${randomUUID()}&email=${encodeURIComponent(String(claims.email))}`,
    'about:',
  );
}

async function latestTrace() {
  const res = await fetch(`${gh.address}/admin/v1/tenants/${tenantId}/login-traces?limit=1`, {
    headers: { Authorization: `Bearer ${gh.secrets.adminToken}` },
  });
  const [trace] = (
    (await res.json()) as {
      data: {
        outcome: string;
        steps: { step: string; ok: boolean | null; reason?: string }[];
        profile: Record<string, unknown> | null;
      }[];
    }
  ).data;
  if (!trace) throw new Error('no trace');
  return { ...trace, step: Object.fromEntries(trace.steps.map((s) => [s.step, s.ok])) };
}

it('stores an OIDC success with each of its own steps passed and the claims received', async () => {
  await signIn('op-sub-olga', { email: 'olga@oidc-traces.test', email_verified: true, given_name: 'Olga' });
  const trace = await latestTrace();
  expect(trace.outcome).toBe('success');
  expect(trace.steps.map((s) => s.step)).toEqual([
    'request_sent',
    'state',
    'token_exchange',
    'id_token_signature',
    'issuer',
    'audience',
    'nonce',
    'time_window',
    'domain',
    'jit',
  ]);
  expect(trace.steps.every((s) => s.ok === true)).toBe(true);
  expect(trace.profile).toMatchObject({
    subject: 'op-sub-olga',
    email: 'olga@oidc-traces.test',
    given_name: 'Olga',
  });
});

it('stores an unverified email as a failed domain step after the token checks passed, JIT not reached', async () => {
  await signIn('op-sub-ugo', { email: 'ugo@oidc-traces.test', email_verified: false });
  const trace = await latestTrace();
  expect(trace.outcome).toBe('oidc_email_unverified');
  expect(trace.step).toMatchObject({
    state: true,
    token_exchange: true,
    id_token_signature: true,
    nonce: true,
  });
  expect(trace.steps.find((s) => s.step === 'domain')).toEqual({
    step: 'domain',
    ok: false,
    reason: 'oidc_email_unverified',
  });
  expect(trace.step.jit).toBeNull();
});
