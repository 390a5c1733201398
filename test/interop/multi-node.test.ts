import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as jose from 'jose';
import * as client from 'openid-client';
import pg from 'pg';
import type { EmbeddedDatabase } from '../../src/db/embedded.js';
import { SamlTestIdp } from '../support/saml-idp.js';
import { spOf } from '../support/sso-factories.js';
import { HostBrowser } from './browser.js';
import {
  eventually,
  freePort,
  getFrom,
  migrateJob,
  sharedSecrets,
  startNodes,
  startPrivateCluster,
  stopNode,
  type NodeProcess,
} from './deployment.js';
import {
  checkConfig,
  configFromShipped,
  haproxyVersion,
  serversThatServed,
  startHaproxy,
  type Haproxy,
} from './haproxy.js';

/**
 * Issue 11, "A multi-node test": the deployment docker-compose.yml describes,
 * run on loopback by its own steps — a PostgreSQL of its own, the `migrate`
 * job, three built Gatehouse servers started at once with the shared secrets
 * and GATEHOUSE_TRUST_PROXY=1, and Debian's haproxy with the shipped
 * deploy/haproxy.cfg in front. A sign-in that hops nodes, SCIM on a third,
 * revocation seen by every node, one /login limit for the installation, and a
 * node SIGKILLed under load losing no request but those it was answering.
 */
const BACKEND = 'gatehouse';
const CALLBACK = 'http://localhost:3000/callback';
const DISCOVERY_LIMIT = 10;
const SCIM_TYPE = 'application/scim+json';
const USER_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:User';
const GROUP_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:Group';
const PATCH_OP = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';

const secrets = sharedSecrets();
let dir: string;
let cluster: EmbeddedDatabase | undefined;
let ownerUrl: string;
let nodes: NodeProcess[] = [];
let lb: Haproxy | undefined;
/** The public URL: haproxy. */
let publicUrl: string;

beforeAll(async () => {
  // Fails, never skips, without haproxy (the message says how to install it).
  haproxyVersion();
  dir = await mkdtemp(path.join(tmpdir(), 'gatehouse-interop-'));
  ({ cluster, ownerUrl } = await startPrivateCluster(dir));
  const migrated = await migrateJob({
    DATABASE_URL: ownerUrl,
    GATEHOUSE_DATA_DIR: path.join(dir, 'migrate'),
  });
  if (migrated.code !== 0) throw new Error(`gatehouse migrate failed:\n${migrated.output}`);

  const lbPort = await freePort();
  publicUrl = `http://127.0.0.1:${lbPort}`;
  nodes = await startNodes(['node1', 'node2', 'node3'], {
    DATABASE_URL: ownerUrl,
    ...secrets,
    GATEHOUSE_BASE_URL: publicUrl,
    GATEHOUSE_TRUST_PROXY: '1',
    GATEHOUSE_DATA_DIR: dir,
    GATEHOUSE_LOGIN_DISCOVERY_RATE_LIMIT: String(DISCOVERY_LIMIT),
    // The load below is one tenant's SCIM client; its per-tenant limit is not what is tested here.
    GATEHOUSE_SCIM_RATE_LIMIT: '1000000',
    LOG_LEVEL: 'warn',
  });

  const statsSocket = path.join(dir, 'haproxy.sock');
  const config = configFromShipped(await readFile('deploy/haproxy.cfg', 'utf8'), {
    bindAddress: `127.0.0.1:${lbPort}`,
    servers: nodes.map((n) => ({ name: n.name, address: `127.0.0.1:${n.port}` })),
    statsSocket,
  });
  const configFile = path.join(dir, 'haproxy.cfg');
  await writeFile(configFile, config);
  const checked = checkConfig(configFile);
  if (!checked.ok)
    throw new Error(`haproxy -c refused the configuration made from deploy/haproxy.cfg:\n${checked.output}`);
  lb = startHaproxy(configFile, statsSocket, BACKEND);
}, 180_000);

afterAll(async () => {
  await lb?.stop();
  await Promise.all(nodes.map(stopNode));
  await cluster?.stop().catch(() => undefined);
  if (dir) await rm(dir, { recursive: true, force: true });
}, 60_000);

// ── helpers: every request over real HTTP, to a node directly or through haproxy ──

const onNode = (node: NodeProcess, url: string) => url.replace(publicUrl, node.address);

async function json(
  base: string,
  method: string,
  pathname: string,
  headers: Record<string, string>,
  body?: unknown,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${base}${pathname}`, {
    method,
    headers:
      body === undefined ? headers : { ...headers, 'content-type': headers.accept ?? 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(15_000),
  });
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

const admin = (base: string, method: string, pathname: string, body?: unknown) =>
  json(
    base,
    method,
    `/admin/v1${pathname}`,
    { authorization: `Bearer ${secrets.GATEHOUSE_ADMIN_TOKEN}` },
    body,
  );

/** The IdP's SCIM client: the path is scim_base_url's, the origin `base` (haproxy or one node). */
const scim = (base: string, token: string, method: string, resource: string, body?: unknown) =>
  json(
    base,
    method,
    `${new URL(scimBaseUrl).pathname}${resource}`,
    { authorization: `Bearer ${token}`, accept: SCIM_TYPE },
    body,
  );

/** The main app's back-channel requests (token, introspection) sent to one node. */
function appVia(node: NodeProcess): client.Configuration {
  const metadata = JSON.parse(JSON.stringify(mainApp.serverMetadata())) as client.ServerMetadata;
  const config = new client.Configuration(
    {
      ...metadata,
      token_endpoint: onNode(node, metadata.token_endpoint ?? ''),
      introspection_endpoint: onNode(node, metadata.introspection_endpoint ?? ''),
    },
    registered.clientId,
    undefined,
    client.ClientSecretBasic(registered.clientSecret),
  );
  client.allowInsecureRequests(config);
  return config;
}

const node = (i: number): NodeProcess => {
  const n = nodes[i];
  if (!n) throw new Error(`no node ${i}`);
  return n;
};

// ── what the scenarios share, set up as the operator would, through haproxy ──

let tenantId: string;
let idp: SamlTestIdp;
let connectionId: string;
let registered: { clientId: string; clientSecret: string };
let mainApp: client.Configuration;
let scimBaseUrl: string;
let scimToken: string;
let aliceId: string;
let alice: { accessToken: string; refreshToken: string };

/** The IdP's metadata document, as the IdP admin downloads it. */
function idpMetadata(saml: SamlTestIdp): string {
  const cert = saml.certificatePem.replace(/-----[A-Z ]+-----|\s/g, '');
  return `<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="${saml.entityId}"><md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol"><md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>${cert}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor><md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="${saml.ssoUrl}"/></md:IDPSSODescriptor></md:EntityDescriptor>`;
}

describe('three nodes behind haproxy on one PostgreSQL', () => {
  it('starts as the compose file does: one node initialised the installation, and haproxy’s /readyz checks find all three ready', async () => {
    const owner = new pg.Client({ connectionString: ownerUrl });
    await owner.connect();
    try {
      const { rows } = await owner.query<{ n: number }>(
        'SELECT count(*)::int AS n FROM gatehouse_installation',
      );
      expect(rows).toEqual([{ n: 1 }]);
    } finally {
      await owner.end();
    }
    const haproxy = lb;
    if (!haproxy) throw new Error('haproxy did not start');
    // Bounded: rise 2 × inter 2s in the shipped file.
    await eventually(
      async () => {
        // The stats socket appears once haproxy has read its configuration.
        const servers = await haproxy.servers().catch(() => []);
        return servers.length === 3 && servers.every((s) => s.status === 'UP' && s.checkStatus === 'L7OK');
      },
      'haproxy to see every node pass its /readyz check',
      30_000,
    );
    expect(await haproxy.servers()).toEqual(
      nodes.map((n) => ({ name: n.name, status: 'UP', checkStatus: 'L7OK', checkCode: '200' })),
    );
    const ready = await fetch(`${publicUrl}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: 'ready' });
  });

  it('takes the operator’s onboarding through haproxy: tenant, verified domain, SAML connection, main app, SCIM token', async () => {
    const tenant = await admin(publicUrl, 'POST', '/tenants', { slug: 'acme', name: 'Acme Inc' });
    expect(tenant.status).toBe(201);
    tenantId = String(tenant.body.id);
    const domain = await admin(publicUrl, 'POST', `/tenants/${tenantId}/domains`, { domain: 'acme.test' });
    expect(domain.status).toBe(201);
    const verified = await admin(
      publicUrl,
      'POST',
      `/tenants/${tenantId}/domains/${String(domain.body.id)}/verify`,
      {
        method: 'manual',
        reason: 'interop test: the customer proved the domain out of band',
      },
    );
    expect(verified.body).toMatchObject({ status: 'verified' });

    idp = await SamlTestIdp.create('acme');
    const connection = await admin(publicUrl, 'POST', `/tenants/${tenantId}/connections`, {
      type: 'saml',
      name: 'Acme IdP',
      metadata_xml: idpMetadata(idp),
      status: 'active',
    });
    expect(connection.status).toBe(201);
    connectionId = String(connection.body.id);
    // The SP details are the public URL's, whichever node answered.
    expect(connection.body.sp).toMatchObject({ acs_url: `${publicUrl}/saml/${connectionId}/acs` });

    const app = await admin(publicUrl, 'POST', '/apps', { name: 'Main app', redirect_uris: [CALLBACK] });
    expect(app.status).toBe(201);
    registered = { clientId: String(app.body.client_id), clientSecret: String(app.body.client_secret) };
    mainApp = await client.discovery(
      new URL(publicUrl),
      registered.clientId,
      undefined,
      client.ClientSecretBasic(registered.clientSecret),
      { execute: [client.allowInsecureRequests] },
    );
    expect(mainApp.serverMetadata().issuer).toBe(publicUrl);

    const issued = await admin(publicUrl, 'POST', `/tenants/${tenantId}/scim-tokens`, {
      description: 'Okta',
    });
    expect(issued.status).toBe(201);
    scimToken = String(issued.body.token);
    scimBaseUrl = String(issued.body.scim_base_url);
    expect(scimBaseUrl).toBe(`${publicUrl}/scim/v2/${tenantId}`);
  });

  it('provisions users and a group by SCIM on the third node, and every node and haproxy read them back', async () => {
    const c = node(2).address;
    const ids: string[] = [];
    for (const [given, email] of [
      ['Alice', 'alice@acme.test'],
      ['Bob', 'bob@acme.test'],
    ] as const) {
      const created = await scim(c, scimToken, 'POST', '/Users', {
        schemas: [USER_SCHEMA],
        userName: email,
        name: { givenName: given, familyName: 'Anderson' },
        emails: [{ primary: true, value: email, type: 'work' }],
        active: true,
      });
      expect(created.status).toBe(201);
      ids.push(String(created.body.id));
    }
    aliceId = ids[0] ?? '';
    const group = await scim(c, scimToken, 'POST', '/Groups', {
      schemas: [GROUP_SCHEMA],
      displayName: 'Engineering',
      members: ids.map((value) => ({ value })),
    });
    expect(group.status).toBe(201);
    for (const base of [...nodes.map((n) => n.address), publicUrl]) {
      const read = await scim(base, scimToken, 'GET', `/Groups/${String(group.body.id)}`);
      expect(read.status).toBe(200);
      expect((read.body.members as { value: string }[]).map((m) => m.value).sort()).toEqual([...ids].sort());
      const found = await scim(
        base,
        scimToken,
        'GET',
        `/Users?filter=${encodeURIComponent('userName eq "alice@acme.test"')}`,
      );
      expect(found.body).toMatchObject({ totalResults: 1, Resources: [{ id: aliceId }] });
    }
  });

  it('finishes a sign-in on other nodes than it started: authorize on node 1, ACS on node 2, token on node 3, JWKS through haproxy', async () => {
    const [a, b, c] = [node(0), node(1), node(2)];
    const browser = new HostBrowser();
    const checks = {
      pkceCodeVerifier: client.randomPKCECodeVerifier(),
      expectedState: client.randomState(),
      expectedNonce: client.randomNonce(),
    };
    const authorize = client.buildAuthorizationUrl(mainApp, {
      redirect_uri: CALLBACK,
      scope: 'openid email profile',
      code_challenge: await client.calculatePKCECodeChallenge(checks.pkceCodeVerifier),
      code_challenge_method: 'S256',
      state: checks.expectedState,
      nonce: checks.expectedNonce,
      login_hint: 'alice@acme.test',
    });
    const toIdp = await browser.visit(onNode(a, authorize.toString()), [idp.ssoUrl, CALLBACK]);
    expect(toIdp.trail).toEqual([onNode(a, authorize.toString())]);
    expect(toIdp.redirectedTo).toMatch(/^https:\/\/acme\.idp\.test\/sso\?SAMLRequest=/);

    const sp = spOf(publicUrl, { id: connectionId });
    const answer = await idp.answer(toIdp.redirectedTo ?? '', sp, {
      nameId: 'alice@acme.test',
      attributes: { email: 'alice@acme.test', firstName: 'Alice', lastName: 'Anderson' },
    });
    const back = await browser.visit(onNode(b, sp.acsUrl), [CALLBACK], {
      method: 'POST',
      form: { SAMLResponse: answer.samlResponse },
    });
    expect(back.trail[0]).toBe(`${b.address}/saml/${connectionId}/acs`);
    expect(back.redirectedTo).toMatch(/^http:\/\/localhost:3000\/callback\?/);

    const tokens = await client.authorizationCodeGrant(appVia(c), new URL(back.redirectedTo ?? ''), {
      ...checks,
      idTokenExpected: true,
    });
    const idToken = tokens.claims();
    expect(idToken).toMatchObject({ sub: aliceId, email: 'alice@acme.test', tid: tenantId, iss: publicUrl });
    // The main app's API checks the access token with the keys haproxy serves (any node's).
    const jwksUri = mainApp.serverMetadata().jwks_uri ?? '';
    expect(jwksUri.startsWith(`${publicUrl}/`)).toBe(true);
    const { payload } = await jose.jwtVerify(tokens.access_token, jose.createRemoteJWKSet(new URL(jwksUri)), {
      issuer: publicUrl,
      typ: 'at+jwt',
    });
    expect(payload).toMatchObject({
      sub: aliceId,
      tid: tenantId,
      sid: idToken?.sid,
      client_id: registered.clientId,
    });
    expect(idToken?.sid).toEqual(expect.any(String));
    expect(tokens.refresh_token).toEqual(expect.any(String));
    alice = { accessToken: tokens.access_token, refreshToken: tokens.refresh_token ?? '' };
    for (const n of nodes)
      expect(await client.tokenIntrospection(appVia(n), alice.accessToken)).toMatchObject({
        active: true,
        sub: aliceId,
      });
  });

  it('deprovisioning on one node ends the session on every node', async () => {
    const off = await scim(node(0).address, scimToken, 'PATCH', `/Users/${aliceId}`, {
      schemas: [PATCH_OP],
      Operations: [{ op: 'replace', value: { active: false } }],
    });
    expect(off.status).toBe(200);
    expect(off.body).toMatchObject({ id: aliceId, active: false });
    for (const n of nodes) {
      let answer: client.IntrospectionResponse = { active: true };
      await eventually(async () => {
        answer = await client.tokenIntrospection(appVia(n), alice.accessToken);
        return answer.active === false;
      }, `${n.name} to see the session revoked`);
      expect(answer).toEqual({ active: false });
      expect(await client.tokenIntrospection(appVia(n), alice.refreshToken)).toEqual({ active: false });
    }
  });

  it('a SCIM token revoked through the admin API on one node is refused by every node', async () => {
    const issued = await admin(node(1).address, 'POST', `/tenants/${tenantId}/scim-tokens`, {
      description: 'Entra',
    });
    expect(issued.status).toBe(201);
    const token = String(issued.body.token);
    // Every node has verified (and cached) it first.
    for (const n of nodes) expect((await scim(n.address, token, 'GET', '/Users?count=1')).status).toBe(200);

    const revoked = await admin(
      node(1).address,
      'DELETE',
      `/tenants/${tenantId}/scim-tokens/${String(issued.body.id)}`,
    );
    expect(revoked.status).toBe(200);
    expect(revoked.body.revoked_at).toEqual(expect.any(String));
    for (const n of nodes) {
      let status = 200;
      await eventually(async () => {
        status = (await scim(n.address, token, 'GET', '/Users?count=1')).status;
        return status !== 200;
      }, `${n.name} to refuse the revoked token`);
      expect(status).toBe(401);
    }
    // The tenant's other token is untouched.
    expect((await scim(publicUrl, scimToken, 'GET', '/Users?count=1')).status).toBe(200);
  });

  it(`shares one /login limit of ${DISCOVERY_LIMIT} per client address over the three nodes, and a forged X-Forwarded-For is no way around it`, async () => {
    // A client at its own loopback address, so no other request of this file counts against it.
    const from = '127.0.0.23';
    const login = `${publicUrl}/login?login=${randomUUID()}`;
    const before: number[] = [];
    for (let i = 0; i < DISCOVERY_LIMIT; i++) before.push((await getFrom(from, login)).status);
    expect(before.filter((s) => s === 429)).toEqual([]);
    const over = await getFrom(from, login);
    expect(over.status).toBe(429);
    expect(over.body).toContain('rate_limited');
    // haproxy appends the address it saw; with one trusted hop, the client's own entry is not believed.
    for (const forged of ['203.0.113.7', '198.51.100.1, 203.0.113.8'])
      expect((await getFrom(from, login, { 'x-forwarded-for': forged })).status).toBe(429);
    // Another client address still gets through.
    expect((await getFrom('127.0.0.24', login)).status).not.toBe(429);
    // Round robin spread those requests over the nodes: a per-node limit would have let the 11th through.
    await eventually(
      () => new Set(serversThatServed(lb?.output() ?? '', BACKEND, 'GET /login')).size === 3,
      'haproxy’s log to show /login served by all three nodes',
    );
  });

  it('loses no request but those in flight when a node is SIGKILLed under SCIM load; haproxy takes it out and the rest carry on', async () => {
    const haproxy = lb;
    if (!haproxy) throw new Error('haproxy did not start');
    // Without the onboarding's SCIM token every request below would fail at once.
    if (!scimBaseUrl || !scimToken) throw new Error('the onboarding test did not issue a SCIM token');
    const victim = node(1);
    const CLIENTS = 8;
    type Outcome = {
      kind: 'create' | 'get';
      userName: string;
      status: number | 'error';
      id?: string;
      afterDown: boolean;
      /** Why fetch failed, when it did. */
      error?: string;
    };
    const outcomes: Outcome[] = [];
    let inFlight = 0;
    let stop = false;
    let down = false;
    const send = async (
      o: Omit<Outcome, 'status' | 'afterDown'>,
      init: RequestInit,
      url: string,
    ): Promise<Outcome> => {
      const afterDown = down;
      inFlight++;
      try {
        const res = await fetch(url, { ...init, signal: AbortSignal.timeout(30_000) });
        const body = (await res.text()) || '{}';
        const id = res.status === 201 ? String((JSON.parse(body) as { id: string }).id) : o.id;
        return { ...o, status: res.status, id, afterDown };
      } catch (e) {
        const cause = (e as { cause?: { code?: string; message?: string } }).cause;
        // A request refused without I/O must not let the clients starve the event loop (and jest's timers).
        await new Promise((r) => setImmediate(r));
        return { ...o, status: 'error', error: cause?.code ?? cause?.message ?? String(e), afterDown };
      } finally {
        inFlight--;
      }
    };
    const headers = { authorization: `Bearer ${scimToken}`, accept: SCIM_TYPE, 'content-type': SCIM_TYPE };
    // Whatever happens, the clients stop before the test's own timeout (jest would not stop them).
    const deadline = Date.now() + 100_000;
    const worker = async (w: number) => {
      // Bounded whatever happens: a runaway loop fails the counts below instead of exhausting memory.
      for (let i = 0; !stop && outcomes.length < 50_000 && Date.now() < deadline; i++) {
        const userName = `load-${w}-${i}@acme.test`;
        const created = await send(
          { kind: 'create', userName },
          {
            method: 'POST',
            headers,
            body: JSON.stringify({ schemas: [USER_SCHEMA], userName, active: true }),
          },
          `${scimBaseUrl}/Users`,
        );
        outcomes.push(created);
        if (created.status === 201 && created.id)
          outcomes.push(
            await send(
              { kind: 'get', userName, id: created.id },
              { headers },
              `${scimBaseUrl}/Users/${created.id}`,
            ),
          );
      }
    };
    const load = Promise.all(Array.from({ length: CLIENTS }, (_, w) => worker(w)));
    try {
      // Progress, not time: the load has reached every node (haproxy's log says so) before the kill…
      await eventually(
        () =>
          outcomes.length >= 150 &&
          new Set(serversThatServed(haproxy.output(), BACKEND, 'POST /scim/v2')).size === 3,
        'the load to reach every node',
        30_000,
      );
      const inFlightAtKill = inFlight;
      victim.service.child.kill('SIGKILL');
      // …haproxy's checks take the node out (fall 2 × inter 2s in the shipped file)…
      await eventually(
        async () =>
          (await haproxy.servers()).find((s) => s.name === victim.name)?.status.startsWith('DOWN') ?? false,
        'haproxy to mark the killed node down',
        30_000,
      );
      down = true;
      // …and the remaining nodes keep answering.
      await eventually(
        () => outcomes.filter((o) => o.afterDown).length >= 150,
        'the load to go on after',
        30_000,
      );
      stop = true;
      await load;

      expect((await victim.service.exited).signal).toBe('SIGKILL');
      const failed = outcomes.filter(
        (o) => o.status === 'error' || (typeof o.status === 'number' && o.status >= 500),
      );
      const answered = outcomes.filter((o) => !failed.includes(o));
      // The counts, for the CI log: what the kill cost.
      console.info(
        `SIGKILL under load: ${outcomes.length} requests, ${failed.length} failed (${failed.map((o) => `${o.kind} ${o.error ?? o.status}`).join(', ') || 'none'}), ${inFlightAtKill} in flight at the kill, ${outcomes.filter((o) => o.afterDown).length} after haproxy marked ${victim.name} down`,
      );
      // Every answer is the one a healthy node gives: no 4xx (a 404 would be a created user lost, a 409 one created twice).
      expect(answered.filter((o) => o.status !== (o.kind === 'create' ? 201 : 200))).toEqual([]);
      // Only requests that were in flight at the kill may fail; the rest were retried or redispatched by haproxy.
      expect(failed.length).toBeLessThanOrEqual(Math.min(inFlightAtKill, CLIENTS));
      expect(failed.filter((o) => o.afterDown)).toEqual([]);
      expect(answered.filter((o) => o.afterDown).length).toBeGreaterThanOrEqual(150);
      const servers = await haproxy.servers();
      expect(servers.filter((s) => s.status === 'UP').map((s) => s.name)).toEqual(
        nodes.filter((n) => n !== victim).map((n) => n.name),
      );

      // Every create that answered 201 exists exactly once, with the id it answered; none exists twice.
      const listed = new Map<string, string[]>();
      let total = Infinity;
      for (let start = 1; start <= total; start += 200) {
        const page = await scim(publicUrl, scimToken, 'GET', `/Users?startIndex=${start}&count=200`);
        expect(page.status).toBe(200);
        expect(page.body.startIndex).toBe(start);
        total = Number(page.body.totalResults);
        const resources = (page.body.Resources ?? []) as { id: string; userName: string }[];
        for (const u of resources) listed.set(u.userName, [...(listed.get(u.userName) ?? []), u.id]);
      }
      expect([...listed.values()].flat()).toHaveLength(total);
      const creates = outcomes.filter((o) => o.kind === 'create');
      for (const o of creates.filter((c) => c.status === 201))
        expect([o.userName, listed.get(o.userName)]).toEqual([o.userName, [o.id]]);
      for (const o of creates.filter((c) => c.status !== 201))
        expect((listed.get(o.userName) ?? []).length).toBeLessThanOrEqual(1);
      const attempted = new Set(creates.map((o) => o.userName));
      expect([...listed.keys()].filter((u) => u.startsWith('load-') && !attempted.has(u))).toEqual([]);
    } finally {
      stop = true;
      await load;
    }
  });
});
