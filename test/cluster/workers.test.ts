import { chmod, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as client from 'openid-client';
import { SamlTestIdp } from '../support/saml-idp.js';
import { startService, waitFor } from '../support/server-process.js';
import { spOf } from '../support/sso-factories.js';
import { HostBrowser } from '../interop/browser.js';
import { call, freePort, isRunning, pinnedToWorkers, workerOf, workerPids } from './cluster-process.js';

/**
 * Issue 13, GATEHOUSE_WORKERS: the built server started as `npm start` runs it,
 * on its own embedded PostgreSQL, with two workers. One port served by both;
 * the installation's generated secrets reach the workers (the admin token read
 * from the data folder works); a deprovisioning on one worker is seen by the
 * other; a killed worker is replaced; SIGTERM stops everything, database
 * included, with exit 0.
 */
const CALLBACK = 'http://localhost:3000/callback';
const USER_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:User';
const PATCH_OP = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';

let work: string;
let dataDir: string;
let base: string;
let service: ReturnType<typeof startService>;
let adminToken: string;

beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'gatehouse-cluster-'));
  await chmod(work, 0o755); // as a checkout folder would be: the embedded server's user traverses it
  dataDir = path.join(work, 'data');
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  service = startService({
    PORT: String(port),
    HOST: '127.0.0.1',
    GATEHOUSE_BASE_URL: base,
    GATEHOUSE_DATA_DIR: dataDir,
    GATEHOUSE_EMBEDDED_PG_PORT: String(await freePort()),
    GATEHOUSE_WORKERS: '2',
  });
  await waitFor(
    () => /listening on|failed to start/.test(service.output()),
    120_000,
    'the cluster to listen',
  );
  if (!/listening on/.test(service.output())) throw new Error(`did not start:\n${service.output()}`);
  adminToken = (await readFile(path.join(dataDir, 'admin-token'), 'utf8')).trim();
}, 150_000);

afterAll(async () => {
  if (service?.child.exitCode === null && service.child.signalCode === null) {
    service.child.kill('SIGTERM');
    await service.exited;
  }
  if (work) await rm(work, { recursive: true, force: true });
}, 60_000);

async function json(
  method: string,
  pathname: string,
  headers: Record<string, string>,
  body?: unknown,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${base}${pathname}`, {
    method,
    headers: body === undefined ? headers : { ...headers, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}
const admin = (method: string, pathname: string, body?: unknown) =>
  json(method, `/admin/v1${pathname}`, { authorization: `Bearer ${adminToken}` }, body);

function idpMetadata(saml: SamlTestIdp): string {
  const cert = saml.certificatePem.replace(/-----[A-Z ]+-----|\s/g, '');
  return `<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="${saml.entityId}"><md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol"><md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>${cert}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor><md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="${saml.ssoUrl}"/></md:IDPSSODescriptor></md:EntityDescriptor>`;
}

const primaryPid = () => service.child.pid ?? 0;

it('serves one port from two workers and says the start once, without the generated admin token', async () => {
  const seen = new Set<string>();
  for (let i = 0; i < 12; i++) {
    const answer = await workerOf(base);
    expect(answer.status).toBe(200);
    if (answer.worker) seen.add(answer.worker);
  }
  expect(seen.size).toBeGreaterThanOrEqual(2);
  expect(workerPids(primaryPid())).toHaveLength(2);
  const output = service.output();
  expect(output.match(/listening on/g)).toHaveLength(1);
  expect(output.match(/effective configuration/g)).toHaveLength(1);
  expect(output).not.toContain(adminToken);
  // The token the primary generated into the data folder is the one every worker checks.
  for (const { agent } of await pinnedToWorkers(base, 2)) {
    const listed = await call(`${base}/admin/v1/tenants`, {
      agent,
      headers: { authorization: `Bearer ${adminToken}` },
    });
    expect(listed.status).toBe(200);
    agent.destroy();
  }
});

/** This node's count of answered GET /healthz, as a scrape of /metrics says it. */
async function healthzCount(): Promise<number> {
  const scrape = await call(`${base}/metrics`);
  expect(scrape.status).toBe(200);
  const line = scrape.body
    .split('\n')
    .find(
      (l) =>
        l.startsWith('gatehouse_http_requests_total{') &&
        l.includes('route="/healthz"') &&
        l.includes('status_code="200"'),
    );
  return Number(line?.split(' ').pop() ?? 0);
}

it('answers /metrics for both workers together, whichever worker takes the scrape', async () => {
  const before = await healthzCount();
  const seen = new Set<string>();
  for (let i = 0; i < 10; i++) {
    const answer = await workerOf(base);
    if (answer.worker) seen.add(answer.worker);
  }
  expect(seen.size).toBe(2);
  // Fresh connections: the scrapes land on either worker, and each counts all ten.
  for (let i = 0; i < 4; i++) expect(await healthzCount()).toBe(before + 10);
});

it('a SCIM deactivation handled by one worker ends the session as the other worker introspects it', async () => {
  const tenant = await admin('POST', '/tenants', { slug: 'acme', name: 'Acme Inc' });
  expect(tenant.status).toBe(201);
  const tenantId = String(tenant.body.id);
  const domain = await admin('POST', `/tenants/${tenantId}/domains`, { domain: 'acme.test' });
  const verified = await admin('POST', `/tenants/${tenantId}/domains/${String(domain.body.id)}/verify`, {
    method: 'manual',
    reason: 'cluster test: proved out of band',
  });
  expect(verified.body).toMatchObject({ status: 'verified' });
  const idp = await SamlTestIdp.create('acme');
  const connection = await admin('POST', `/tenants/${tenantId}/connections`, {
    type: 'saml',
    name: 'Acme IdP',
    metadata_xml: idpMetadata(idp),
    status: 'active',
  });
  expect(connection.status).toBe(201);
  const connectionId = String(connection.body.id);
  const app = await admin('POST', '/apps', { name: 'Main app', redirect_uris: [CALLBACK] });
  expect(app.status).toBe(201);
  const clientId = String(app.body.client_id);
  const clientSecret = String(app.body.client_secret);
  const issued = await admin('POST', `/tenants/${tenantId}/scim-tokens`, { description: 'Okta' });
  const scimBase = new URL(String(issued.body.scim_base_url)).pathname;
  const scimAuth = { authorization: `Bearer ${String(issued.body.token)}`, accept: 'application/scim+json' };
  const created = await json('POST', `${scimBase}/Users`, scimAuth, {
    schemas: [USER_SCHEMA],
    userName: 'alice@acme.test',
    emails: [{ primary: true, value: 'alice@acme.test', type: 'work' }],
    active: true,
  });
  expect(created.status).toBe(201);
  const aliceId = String(created.body.id);

  // Alice signs in (whichever workers answer each step).
  const mainApp = await client.discovery(
    new URL(base),
    clientId,
    undefined,
    client.ClientSecretBasic(clientSecret),
    { execute: [client.allowInsecureRequests] },
  );
  const checks = {
    pkceCodeVerifier: client.randomPKCECodeVerifier(),
    expectedState: client.randomState(),
    expectedNonce: client.randomNonce(),
  };
  const authorize = client.buildAuthorizationUrl(mainApp, {
    redirect_uri: CALLBACK,
    scope: 'openid email',
    code_challenge: await client.calculatePKCECodeChallenge(checks.pkceCodeVerifier),
    code_challenge_method: 'S256',
    state: checks.expectedState,
    nonce: checks.expectedNonce,
    login_hint: 'alice@acme.test',
  });
  const browser = new HostBrowser();
  const toIdp = await browser.visit(authorize.toString(), [idp.ssoUrl, CALLBACK]);
  const sp = spOf(base, { id: connectionId });
  const answer = await idp.answer(toIdp.redirectedTo ?? '', sp, {
    nameId: 'alice@acme.test',
    attributes: { email: 'alice@acme.test' },
  });
  const back = await browser.visit(sp.acsUrl, [CALLBACK], {
    method: 'POST',
    form: { SAMLResponse: answer.samlResponse },
  });
  expect(back.redirectedTo).toMatch(/^http:\/\/localhost:3000\/callback\?/);
  const tokens = await client.authorizationCodeGrant(mainApp, new URL(back.redirectedTo ?? ''), checks);
  expect(tokens.claims()).toMatchObject({ sub: aliceId });

  // Two kept-alive connections, one on each worker: the deactivation goes over one, introspection the other.
  const [scimSide, introspectSide] = await pinnedToWorkers(base, 2);
  if (!scimSide || !introspectSide) throw new Error('two workers expected');
  const introspectionUrl = mainApp.serverMetadata().introspection_endpoint ?? '';
  const basic = Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(clientSecret)}`).toString(
    'base64',
  );
  const introspect = () =>
    call(introspectionUrl, {
      method: 'POST',
      agent: introspectSide.agent,
      headers: { authorization: `Basic ${basic}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token: tokens.access_token }).toString(),
    });
  const before = await introspect();
  expect(before.localPort).toBe(introspectSide.localPort);
  expect(JSON.parse(before.body)).toMatchObject({ active: true, sub: aliceId });

  const off = await call(`${base}${scimBase}/Users/${aliceId}`, {
    method: 'PATCH',
    agent: scimSide.agent,
    headers: { ...scimAuth, 'content-type': 'application/scim+json' },
    body: JSON.stringify({ schemas: [PATCH_OP], Operations: [{ op: 'replace', value: { active: false } }] }),
  });
  expect(off.status).toBe(200);
  expect(off.localPort).toBe(scimSide.localPort);

  // Bounded wait (not a timing assertion): the other worker learns it through the database and LISTEN.
  let after = await introspect();
  for (let i = 0; i < 100 && JSON.parse(after.body).active !== false; i++) {
    await new Promise((r) => setTimeout(r, 50));
    after = await introspect();
  }
  expect(JSON.parse(after.body)).toEqual({ active: false });
  // Still the same connections, so still the workers named at the start.
  expect(after.localPort).toBe(introspectSide.localPort);
  expect((await workerOf(base, introspectSide.agent)).worker).toBe(introspectSide.worker);
  expect((await workerOf(base, scimSide.agent)).worker).toBe(scimSide.worker);
  scimSide.agent.destroy();
  introspectSide.agent.destroy();
}, 60_000);

it('replaces a killed worker, and requests keep succeeding', async () => {
  const [victim, survivor] = workerPids(primaryPid());
  if (!victim || !survivor) throw new Error('two workers expected');
  process.kill(victim, 'SIGKILL');
  await waitFor(() => /worker exited; restarting it/.test(service.output()), 20_000, 'the primary to notice');
  const statuses: number[] = [];
  let replaced: number[] = [];
  for (let i = 0; i < 200; i++) {
    statuses.push((await workerOf(base)).status);
    replaced = workerPids(primaryPid());
    if (replaced.length === 2 && !replaced.includes(victim) && /worker listening/.test(service.output()))
      break;
    await new Promise((r) => setTimeout(r, 100));
  }
  expect(statuses.every((s) => s === 200)).toBe(true);
  expect(replaced).toHaveLength(2);
  expect(replaced).toContain(survivor);
  expect(replaced).not.toContain(victim);
  // Both serve again: the replacement has a new worker number.
  const seen = new Set<string>();
  for (let i = 0; i < 12; i++) {
    const answer = await workerOf(base);
    expect(answer.status).toBe(200);
    if (answer.worker) seen.add(answer.worker);
  }
  expect(seen.size).toBeGreaterThanOrEqual(2);
  expect(seen.has('3')).toBe(true);
}, 60_000);

it('on SIGTERM drains every worker, stops the embedded database and exits 0', async () => {
  const workers = workerPids(primaryPid());
  const postmaster = Number(
    (await readFile(path.join(dataDir, 'postgres', 'postmaster.pid'), 'utf8')).split('\n')[0],
  );
  expect(workers).toHaveLength(2);
  expect(isRunning(postmaster)).toBe(true);
  service.child.kill('SIGTERM');
  const exit = await service.exited;
  expect(exit).toMatchObject({ code: 0, signal: null });
  expect(exit.stdout.match(/"msg":"worker stopped"/g)).toHaveLength(2);
  expect(exit.stdout).toMatch(/"clean":true,"msg":"stopped"/);
  for (const pid of [...workers, postmaster]) expect(isRunning(pid)).toBe(false);
}, 60_000);
