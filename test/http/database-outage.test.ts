import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ADMIN_TOKEN_PREFIX, generateToken } from '../../src/config/secrets.js';
import { provisionOwner } from '../../src/db/bootstrap.js';
import { startEmbeddedPostgres, type EmbeddedDatabase } from '../../src/db/embedded.js';
import { startService, waitFor } from '../support/server-process.js';

/**
 * PostgreSQL goes away under a running node (issue 11, "Database outages";
 * docs/operations.md): every surface answers 503 with Retry-After in its own
 * error format, within a bounded time, and the node recovers on its own when
 * the database is back. The built server, as `npm start` runs it, on a
 * cluster of its own that the test stops and starts.
 */

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => resolve(typeof a === 'object' && a ? a.port : 0));
    });
  });
}

const ADMIN_TOKEN = generateToken(ADMIN_TOKEN_PREFIX);
let parent: string;
let pgPort: number;
let pgPassword: string;
let cluster: EmbeddedDatabase;
let service: ReturnType<typeof startService>;
let base: string;
let scimBase: string;
let scimToken: string;

const startCluster = () =>
  startEmbeddedPostgres({
    dir: path.join(parent, 'pg'),
    port: pgPort,
    password: pgPassword,
    settings: { fsync: 'off' },
  });

/** Every request here must be answered, and soon: a hang fails the test rather than passing it. */
function call(pathname: string, init: RequestInit = {}): Promise<Response> {
  return fetch(`${base}${pathname}`, { ...init, redirect: 'manual', signal: AbortSignal.timeout(15_000) });
}

async function admin(method: string, pathname: string, body?: unknown): Promise<Response> {
  return call(`/admin/v1${pathname}`, {
    method,
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

const scimUsers = () =>
  fetch(`${scimBase}/Users?count=1`, {
    headers: { authorization: `Bearer ${scimToken}` },
    signal: AbortSignal.timeout(15_000),
  });

const tokenRequest = () =>
  call('/oauth/token', {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'authorization_code',
      code: 'x',
      redirect_uri: 'https://app.example.test/cb',
      client_id: randomUUID(),
      client_secret: 'gh_secret_x',
    }).toString(),
  });

beforeAll(async () => {
  parent = await mkdtemp(path.join(tmpdir(), 'gatehouse-outage-'));
  pgPort = await freePort();
  pgPassword = randomBytes(16).toString('hex');
  cluster = await startCluster();
  const ownerUrl = await provisionOwner(cluster.superuserUrl, {
    database: 'gatehouse',
    ownerPassword: randomBytes(16).toString('hex'),
  });
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  service = startService({
    DATABASE_URL: ownerUrl,
    PORT: String(port),
    HOST: '127.0.0.1',
    GATEHOUSE_BASE_URL: base,
    GATEHOUSE_DATA_DIR: path.join(parent, 'data'),
    GATEHOUSE_ADMIN_TOKEN: ADMIN_TOKEN,
    LOG_LEVEL: 'warn',
  });
  await waitFor(() => /listening on|failed to start/.test(service.output()), 90_000, 'the service to listen');
  expect(service.output()).toMatch(/listening on/);
  const tenant = (await (await admin('POST', '/tenants', { slug: 'acme', name: 'Acme' })).json()) as {
    id: string;
  };
  const issued = (await (
    await admin('POST', `/tenants/${tenant.id}/scim-tokens`, { description: 'Okta' })
  ).json()) as { token: string; scim_base_url: string };
  scimToken = issued.token;
  scimBase = issued.scim_base_url;
}, 120_000);

afterAll(async () => {
  service?.child.kill('SIGTERM');
  await service?.exited;
  await cluster?.stop().catch(() => undefined);
  await rm(parent, { recursive: true, force: true });
});

it('answers 503 with Retry-After on every surface while PostgreSQL is down, and recovers when it returns', async () => {
  // Before: all well.
  expect((await call('/readyz')).status).toBe(200);
  expect((await scimUsers()).status).toBe(200);

  await cluster.stop();

  // Admin API: {code: "unavailable"}.
  const adminRes = await admin('GET', '/tenants');
  expect(adminRes.status).toBe(503);
  expect(adminRes.headers.get('retry-after')).toBe('5');
  expect(await adminRes.json()).toMatchObject({ code: 'unavailable' });

  // SCIM: an RFC 7644 §3.12 error body.
  const scimRes = await scimUsers();
  expect(scimRes.status).toBe(503);
  expect(scimRes.headers.get('retry-after')).toBe('5');
  expect(await scimRes.json()).toMatchObject({
    schemas: ['urn:ietf:params:scim:api:messages:2.0:Error'],
    status: '503',
  });

  // OAuth: RFC 6749 temporarily_unavailable.
  const tokenRes = await tokenRequest();
  expect(tokenRes.status).toBe(503);
  expect(tokenRes.headers.get('retry-after')).toBe('5');
  expect(await tokenRes.json()).toMatchObject({ error: 'temporarily_unavailable' });

  // Browser: a page with the reason code, not a stack trace.
  const page = await call('/login?login=outage-test&email=someone%40acme.example');
  expect(page.status).toBe(503);
  expect(page.headers.get('retry-after')).toBe('5');
  expect(page.headers.get('content-type')).toMatch(/text\/html/);
  expect(await page.text()).toContain('temporarily_unavailable');

  const authorize = await call(
    `/oauth/authorize?${new URLSearchParams({
      client_id: randomUUID(),
      response_type: 'code',
      redirect_uri: 'https://app.example.test/cb',
      scope: 'openid',
      code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
      code_challenge_method: 'S256',
    }).toString()}`,
  );
  expect(authorize.status).toBe(503);
  expect(await authorize.text()).toContain('temporarily_unavailable');

  // Readiness says so; liveness does not (the process is fine).
  expect((await call('/readyz')).status).toBe(503);
  expect((await call('/healthz')).status).toBe(200);

  cluster = await startCluster();

  // Back without a restart: ready again, and every surface answers.
  await waitForAsync(
    async () => (await call('/readyz')).status === 200,
    30_000,
    'readiness after the outage',
  );
  expect((await admin('GET', '/tenants')).status).toBe(200);
  expect((await scimUsers()).status).toBe(200);
  expect((await tokenRequest()).status).toBe(401);
  expect(service.child.exitCode).toBeNull();
  // Nothing during the outage was logged as a server error (level 50) — they were 503s.
  expect(service.output()).not.toMatch(/"level":50/);
}, 120_000);

async function waitForAsync(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (await check().catch(() => false)) return;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
