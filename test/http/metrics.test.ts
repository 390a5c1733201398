import { randomUUID } from 'node:crypto';
import { getHeapSpaceStatistics } from 'node:v8';
import fc from 'fast-check';
import { createHttpMetrics } from '../../src/http/metrics.js';
import { timeRevocationPropagation } from '../../src/sessions/session-events.js';
import { REASONS } from '../../src/sso/reasons.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { startLogoutReceiver, type LogoutReceiver } from '../sessions/support.js';
import { SamlTestIdp } from '../support/saml-idp.js';
import { createSamlConnection, createTenantWithDomains } from '../support/sso-factories.js';
import {
  eventually,
  issueScimToken,
  MainApp,
  operator,
  PATCH_OP,
  registerMainApp,
  scimClient,
  startNode,
  type GatehouseNode,
  type SamlLogin,
} from '../e2e/support.js';

/**
 * Issue 11, "what an SRE expects to see": the Prometheus metrics of a node
 * wired as main.ts wires it (process defaults, pool and outbox gauges, the
 * process's events), scraped after real traffic — a SAML sign-in through the
 * real ACS, refused sign-ins, SCIM create and deprovision, a rate-limited
 * burst — and after a seeded stream of requests with random ids and paths.
 * The property: every label value of every series belongs to a finite set
 * written in the code (or, for `route`, is a template), whatever was sent.
 */
const CALLBACK = 'http://localhost:3000/callback';
const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/i;
const RUNS = fuzzRuns(25);
const SEED = Number.isInteger(Number(process.env.GATEHOUSE_FUZZ_SEED))
  ? Number(process.env.GATEHOUSE_FUZZ_SEED)
  : 0x0b11;

function fuzzRuns(defaultRuns: number): number {
  const n = Number(process.env.GATEHOUSE_FUZZ_RUNS);
  return Number.isInteger(n) && n > 0 ? n : defaultRuns;
}

let t: TestDatabase;
let node: GatehouseNode;
let tenantId: string;
let scim: ReturnType<typeof scimClient>;
let scimToken: string;
let saml: SamlLogin;
let mainApp: MainApp;
let receiver: LogoutReceiver;
const stopTiming: (() => void)[] = [];

beforeAll(async () => {
  t = await createTestDatabase();
  node = await startNode(t, {
    env: { GATEHOUSE_ADMIN_AUTH_FAILURE_LIMIT: '3' },
    metrics: (db) => createHttpMetrics({ defaultMetrics: true, db, processSignals: true }),
  });
  stopTiming.push(timeRevocationPropagation(node.notifications));
  // The app takes back-channel logouts: a deprovisioning queues one and the worker delivers it.
  receiver = await startLogoutReceiver();
  const registered = await registerMainApp(node, {
    redirect_uris: [CALLBACK],
    backchannel_logout_uri: receiver.url,
  });
  mainApp = await MainApp.connect(node, registered, CALLBACK);
  tenantId = await createTenantWithDomains(t.db, 'acme', ['acme.test']);
  const issued = await issueScimToken(node, tenantId);
  scimToken = issued.token;
  scim = scimClient(node, issued.scimBaseUrl, issued.token);
  const idp = await SamlTestIdp.create('acme');
  saml = { idp, connection: await createSamlConnection(t.db, tenantId, idp, { defaultRole: 'member' }) };
});
afterAll(async () => {
  stopTiming.forEach((stop) => stop());
  await node.close();
  await receiver.close();
  await t.close();
});

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

async function scrape(): Promise<Sample[]> {
  const res = await fetch(`${node.address}/metrics`);
  expect(res.status).toBe(200);
  const samples: Sample[] = [];
  for (const line of (await res.text()).split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match) throw new Error(`not an exposition line: ${line}`);
    const labels: Record<string, string> = {};
    for (const [, key, value] of (match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g))
      labels[key!] = value!;
    samples.push({ name: match[1]!, labels, value: Number(match[3]) });
  }
  return samples;
}

const value = (samples: Sample[], name: string, labels: Record<string, string> = {}) =>
  samples
    .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((sum, s) => sum + s.value, 0);

/** The completer's own refusals and success words (src/tokens/authorize/completer.ts, src/sso/outcome.ts). */
const LOGIN_REASONS = new Set([
  ...Object.keys(REASONS),
  'ok',
  'no_application',
  'idp_initiated',
  'login_not_found',
  'login_expired',
  'organization_mismatch',
  'connection_mismatch',
  'connection_not_found',
  'user_not_active',
  'tenant_not_active',
]);

/** Every label a series may carry, with the finite set of its values. */
const FINITE: Record<string, (value: string, metric: string) => boolean> = {
  method: (v) => ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'OTHER'].includes(v),
  status_code: (v) => /^[1-5][0-9]{2}$/.test(v) || v === 'other',
  route: isTemplate,
  resource: (v) =>
    [
      'Users',
      'Groups',
      'Me',
      'Schemas',
      'ResourceTypes',
      'ServiceProviderConfig',
      'Bulk',
      'search',
      'root',
      'other',
    ].includes(v),
  protocol: (v) => ['saml', 'oidc', 'none'].includes(v),
  outcome: (v) => ['success', 'refused'].includes(v),
  reason: (v) => LOGIN_REASONS.has(v),
  scope: (v) => ['session', 'user', 'connection', 'app', 'tenant'].includes(v),
  kind: (v, metric) =>
    metric.startsWith('gatehouse_outbox_')
      ? ['logout', 'webhook'].includes(v)
      : metric.startsWith('gatehouse_db_')
        ? ['tenant', 'platform', 'resolved'].includes(v)
        : ['major', 'minor', 'incremental', 'weakcb'].includes(v), // nodejs_gc_duration_seconds
  state: (v) => ['in_use', 'idle'].includes(v),
  // Issue 16: gatehouse_connection_certificates_expiring.
  status: (v) => ['expired', 'within_7d', 'within_30d'].includes(v),
  limiter: (v) =>
    ['admin-auth', 'scim-tenant', 'client-auth-client', 'client-auth-address', 'login-discovery'].includes(v),
  le: (v) => v === '+Inf' || Number.isFinite(Number(v)),
  // prom-client's Node.js defaults: fixed by the runtime, not by requests.
  version: (v) => v === process.version,
  major: (v) => v === process.version.slice(1).split('.')[0],
  minor: (v) => v === process.version.split('.')[1],
  patch: (v) => v === process.version.split('.')[2],
  space: (v) => getHeapSpaceStatistics().some((s) => s.space_name.replace(/_space$/, '') === v),
  type: (v) => /^[A-Za-z]+$/.test(v) && v.length <= 32, // nodejs_active_*: handle class names
};

/** A route label is `unmatched`, `/`, or segments that are `:params` or static words of our code. */
const generated = new Set<string>();
function isTemplate(route: string): boolean {
  if (route === 'unmatched' || route === '/') return true;
  return route
    .split(/[/,]/)
    .filter(Boolean)
    .every(
      (segment) =>
        /^(:[A-Za-z][A-Za-z0-9]*|[A-Za-z0-9._-]{1,40})$/.test(segment) &&
        !UUID.test(segment) &&
        !generated.has(segment),
    );
}

/** Label values outside their finite set, as `metric label=value`. */
function unbounded(samples: Sample[]): string[] {
  return samples.flatMap((s) =>
    Object.entries(s.labels)
      .filter(([label, v]) => !(FINITE[label]?.(v, s.name) ?? false) || UUID.test(v) || v.includes('@'))
      .map(([label, v]) => `${s.name} ${label}=${v}`),
  );
}

describe('after a sign-in, refusals, SCIM and a deprovisioning', () => {
  let samples: Sample[];

  beforeAll(async () => {
    const email = 'alice@acme.test';
    const signedIn = await mainApp.signIn(saml, email);
    // Refused sign-ins: an unknown SAML connection, a malformed answer, an unknown OIDC connection.
    const acs = await fetch(`${node.address}/saml/${randomUUID()}/acs`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: 'SAMLResponse=bm90IHhtbA',
    });
    expect(acs.status).toBeGreaterThanOrEqual(400);
    const malformed = await fetch(`${node.address}/saml/${saml.connection.id}/acs`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: 'SAMLResponse=bm90IHhtbA',
    });
    expect(malformed.status).toBe(400);
    await fetch(`${node.address}/oidc/${randomUUID()}/callback?code=x&state=y`);
    // SCIM: create, then deprovision the signed-in person (their session is revoked and NOTIFY'd).
    const created = await scim('POST', '/Users', {
      schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'],
      userName: 'bob@acme.test',
    });
    expect(created.status).toBe(201);
    const alice = await scim('GET', `/Users?filter=${encodeURIComponent(`userName eq "${email}"`)}`);
    const aliceId = String((alice.body.Resources as { id: string }[] | undefined)?.[0]?.id);
    const deprovisioned = await scim('PATCH', `/Users/${aliceId}`, {
      schemas: [PATCH_OP],
      Operations: [{ op: 'replace', path: 'active', value: false }],
    });
    expect(deprovisioned.status).toBe(200);
    expect(signedIn.sid).toMatch(UUID);
    // The operator's view, then a burst of bad admin tokens past the limit (3 per minute here).
    expect((await operator(node, 'GET', `/tenants/${tenantId}`)).status).toBe(200);
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) {
      const res = await fetch(`${node.address}/admin/v1/tenants`, {
        headers: { Authorization: `Bearer gh_admin_${'x'.repeat(43)}` },
      });
      statuses.push(res.status);
    }
    expect(statuses).toContain(429);
    await eventually(async () => {
      const now = await scrape();
      return (
        value(now, 'gatehouse_revocation_propagation_seconds_count') >= 1 &&
        value(now, 'gatehouse_outbox_delivered_total', { kind: 'logout' }) >= 1
      );
    }, 'the revocation NOTIFY to be heard and the back-channel logout to be delivered');
    samples = await scrape();
  });

  it('has the process and Node.js defaults', () => {
    for (const name of [
      'process_cpu_user_seconds_total',
      'process_resident_memory_bytes',
      'nodejs_eventloop_lag_seconds',
    ])
      expect(samples.some((s) => s.name === name)).toBe(true);
  });

  it('counts sign-ins by protocol, outcome and reason code', () => {
    expect(
      value(samples, 'gatehouse_logins_total', { protocol: 'saml', outcome: 'success', reason: 'ok' }),
    ).toBe(1);
    expect(
      value(samples, 'gatehouse_logins_total', {
        protocol: 'saml',
        outcome: 'refused',
        reason: 'connection_unknown',
      }),
    ).toBe(1);
    expect(
      value(samples, 'gatehouse_logins_total', {
        protocol: 'saml',
        outcome: 'refused',
        reason: 'saml_response_malformed',
      }),
    ).toBe(1);
    expect(value(samples, 'gatehouse_logins_total', { protocol: 'oidc', outcome: 'refused' })).toBe(1);
  });

  it('counts SCIM operations by resource, method and status', () => {
    expect(
      value(samples, 'gatehouse_scim_operations_total', {
        resource: 'Users',
        method: 'POST',
        status_code: '201',
      }),
    ).toBe(1);
    expect(
      value(samples, 'gatehouse_scim_operations_total', {
        resource: 'Users',
        method: 'PATCH',
        status_code: '200',
      }),
    ).toBe(1);
  });

  it('counts the revocation by scope and times its propagation', () => {
    expect(value(samples, 'gatehouse_sessions_revoked_total', { scope: 'user' })).toBeGreaterThanOrEqual(1);
    expect(value(samples, 'gatehouse_revocation_propagation_seconds_count')).toBeGreaterThanOrEqual(1);
  });

  it('reports the outboxes, the pool, transaction latency and rate-limit rejections', () => {
    for (const kind of ['logout', 'webhook']) {
      expect(samples.some((s) => s.name === 'gatehouse_outbox_pending' && s.labels.kind === kind)).toBe(true);
      expect(
        samples.some(
          (s) => s.name === 'gatehouse_outbox_oldest_pending_age_seconds' && s.labels.kind === kind,
        ),
      ).toBe(true);
    }
    expect(value(samples, 'gatehouse_outbox_delivered_total', { kind: 'logout' })).toBe(1);
    expect(value(samples, 'gatehouse_outbox_pending', { kind: 'logout' })).toBe(0);
    // A pool of 5 (startNode): what is in use plus idle never exceeds it.
    const pool = value(samples, 'gatehouse_db_pool_connections');
    expect(pool).toBeGreaterThanOrEqual(1);
    expect(pool).toBeLessThanOrEqual(5);
    expect(samples.some((s) => s.name === 'gatehouse_db_pool_waiting')).toBe(true);
    expect(
      value(samples, 'gatehouse_db_transaction_duration_seconds_count', { kind: 'tenant' }),
    ).toBeGreaterThan(0);
    expect(
      value(samples, 'gatehouse_rate_limit_rejections_total', { limiter: 'admin-auth' }),
    ).toBeGreaterThanOrEqual(2);
  });

  it('writes the tenant on the log lines of a sign-in refused inside a tenant', () => {
    const refusals = node
      .logs()
      .split('\n')
      .filter((line) => line.includes('"msg":"sign-in refused"'))
      .map((line) => JSON.parse(line) as { reason: string; tenant_id?: string });
    expect(refusals.find((r) => r.reason === 'saml_response_malformed')?.tenant_id).toBe(tenantId);
    // Refused before any tenant was known: no tenant to write.
    expect(refusals.find((r) => r.reason === 'connection_unknown')?.tenant_id).toBeUndefined();
  });

  it('carries no label value outside its finite set', () => {
    expect(unbounded(samples)).toEqual([]);
  });
});

describe('property: random ids and paths never become label values', () => {
  const segment = fc.oneof(
    fc.uuid(),
    // Prefixed, so a random word never coincides with a static segment of our routes.
    fc.stringMatching(/^[A-Za-z0-9._~-]{1,24}$/).map((word) => `zq${word}`),
    fc.constantFrom('Users', 'groups', '.search', 'Bulk', 'ServiceProviderConfig', '%F0%9F%98%80', '..'),
  );
  const requestSpec = fc.record({
    surface: fc.constantFrom('scim-own', 'scim-other-tenant', 'saml-acs', 'oidc-callback', 'anywhere'),
    method: fc.constantFrom('GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'PROPFIND'),
    segments: fc.array(segment, { minLength: 1, maxLength: 3 }),
  });

  it('keeps every label value of a full scrape in its finite set', async () => {
    await fc.assert(
      fc.asyncProperty(requestSpec, async ({ surface, method, segments }) => {
        for (const s of segments) if (s.startsWith('zq')) generated.add(s);
        const tail = segments.join('/');
        const path =
          surface === 'scim-own'
            ? `/scim/v2/${tenantId}/${tail}`
            : surface === 'scim-other-tenant'
              ? `/scim/v2/${randomUUID()}/${tail}`
              : surface === 'saml-acs'
                ? `/saml/${segments[0]}/acs`
                : surface === 'oidc-callback'
                  ? `/oidc/${segments[0]}/callback?code=${tail}`
                  : `/${tail}`;
        const res = await fetch(`${node.address}${path}`, {
          method,
          headers: surface === 'scim-own' ? { Authorization: `Bearer ${scimToken}` } : {},
          body: ['GET', 'DELETE'].includes(method) ? undefined : '{}',
        });
        await res.arrayBuffer();
        expect(res.status).toBeLessThan(500);
        expect(unbounded(await scrape())).toEqual([]);
      }),
      { numRuns: RUNS, seed: SEED },
    );
  }, 60_000);
});
