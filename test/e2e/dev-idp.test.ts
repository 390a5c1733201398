import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as client from 'openid-client';
import { adminClient } from '../../src/cli/admin-client.js';
import { startDevIdp, type DevIdp } from '../../src/cli/dev-idp.js';
import { DEFAULT_PEOPLE } from '../../src/cli/dev-idp-users.js';
import { setupDevIdp, type DevIdpSetup } from '../../src/cli/dev-idp-setup.js';
import { runCli } from '../../src/cli/run.js';
import { Chromium } from '../support/chromium.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { startLocalServer, type LocalServer } from '../support/local-http.js';
import { operator, startNode, type GatehouseNode } from './support.js';

/**
 * Issue 14, the development IdP: `gatehouse dev-idp` is a real SAML IdP
 * (samlify) and a real OpenID Provider (oidc-provider) on loopback, and
 * `--setup` registers it with Gatehouse through the admin API, twice without
 * change. A person picked on its page signs in to the main app through each
 * connection, in a real Chromium, with Gatehouse on http://localhost.
 */
let t: TestDatabase;
let gh: GatehouseNode;
let idp: DevIdp;
let browser: Chromium;
let app: LocalServer;
let dir: string;
let setup: DevIdpSetup;

beforeAll(async () => {
  t = await createTestDatabase();
  gh = await startNode(t, { localhost: true });
  dir = await mkdtemp(path.join(tmpdir(), 'gatehouse-dev-idp-'));
  idp = await startDevIdp({ host: '127.0.0.1', port: 0, dir });
  browser = await Chromium.launch();
  app = await startLocalServer({});
});

afterAll(async () => {
  await browser?.close();
  await app?.close();
  await idp?.close();
  await gh?.close();
  await t?.close();
  await rm(dir, { recursive: true, force: true });
});

/** The main app's sign-in through one connection, the person picked at the dev IdP; then the code exchange. */
async function signIn(connectionId: string, email: string) {
  const callback = `${app.url}/callback`;
  const config = await client.discovery(
    new URL(gh.baseUrl),
    setup.app.client_id,
    undefined,
    client.ClientSecretBasic(setup.app.client_secret),
    { execute: [client.allowInsecureRequests] },
  );
  const checks = {
    pkceCodeVerifier: client.randomPKCECodeVerifier(),
    expectedState: client.randomState(),
    expectedNonce: client.randomNonce(),
  };
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: callback,
    scope: 'openid email profile',
    code_challenge: await client.calculatePKCECodeChallenge(checks.pkceCodeVerifier),
    code_challenge_method: 'S256',
    state: checks.expectedState,
    nonce: checks.expectedNonce,
    connection: connectionId,
  });
  const page = await browser.newPage();
  await page.goto(url.toString());
  await page.waitForUrl((u) => u.startsWith(idp.baseUrl));
  await page.click(`button[value="${email}"]`);
  const landed = await page.waitForUrl((u) => u.startsWith(callback) || u.startsWith(gh.baseUrl));
  expect(landed.startsWith(callback) ? 'the app callback' : await page.text()).toBe('the app callback');
  const tokens = await client.authorizationCodeGrant(config, new URL(landed), {
    ...checks,
    idTokenExpected: true,
  });
  return tokens.claims();
}

it('refuses to listen anywhere but loopback', async () => {
  await expect(startDevIdp({ host: '0.0.0.0', port: 0, dir })).rejects.toThrow(/loopback only/);
  let stderr = '';
  const status = await runCli(['dev-idp', '--host', '192.0.2.10'], {
    env: { GATEHOUSE_DATA_DIR: dir },
    stdout: () => undefined,
    stderr: (text) => {
      stderr += text;
    },
    readStdin: async () => '',
  });
  expect(status).toBe(2);
  expect(stderr).toContain('loopback only');
});

it('serves its SAML metadata and OpenID discovery at the printed URLs', async () => {
  const metadata = await (await fetch(idp.saml.metadataUrl)).text();
  expect(metadata).toContain(`entityID="${idp.saml.entityId}"`);
  const discovery = (await (await fetch(`${idp.oidc.issuer}/.well-known/openid-configuration`)).json()) as {
    issuer: string;
  };
  expect(discovery.issuer).toBe(idp.oidc.issuer);
});

it('--setup registers the demo tenant, domain, both connections, roles, SCIM token and app, idempotently', async () => {
  const api = adminClient(gh.address, gh.secrets.adminToken);
  setup = await setupDevIdp(api, idp, dir, app.url);
  const again = await setupDevIdp(api, idp, dir, app.url);
  expect(again).toEqual(setup);

  const tenants = await operator(gh, 'GET', '/tenants?limit=100');
  expect((tenants.body.data as { slug: string }[]).filter((x) => x.slug === 'demo')).toHaveLength(1);
  const base = `/tenants/${setup.tenant_id}`;
  const domains = (await operator(gh, 'GET', `${base}/domains`)).body.data as {
    domain: string;
    status: string;
  }[];
  expect(domains).toEqual([expect.objectContaining({ domain: 'example.test', status: 'verified' })]);
  const connections = (await operator(gh, 'GET', `${base}/connections`)).body.data as {
    type: string;
    status: string;
  }[];
  expect(connections.map((c) => [c.type, c.status]).sort()).toEqual([
    ['oidc', 'active'],
    ['saml', 'active'],
  ]);
  const mappings = (await operator(gh, 'GET', `${base}/role-mappings`)).body.data as unknown[];
  expect(mappings).toHaveLength(3);
  const tokens = (await operator(gh, 'GET', `${base}/scim-tokens`)).body.data as unknown[];
  expect(tokens).toHaveLength(1);
  const apps = (await operator(gh, 'GET', '/apps')).body.data as { name: string }[];
  expect(apps.filter((a) => a.name === 'Example app')).toHaveLength(1);

  // The kept SCIM token is a working one.
  const scim = await fetch(`${gh.address}${new URL(setup.scim.base_url).pathname}/Users`, {
    headers: { Authorization: `Bearer ${setup.scim.token}` },
  });
  expect(scim.status).toBe(200);
});

it('signs a person in through the SAML connection, with her groups as roles', async () => {
  const claims = await signIn(setup.saml_connection_id, 'alice@example.test');
  expect(claims).toMatchObject({
    iss: gh.baseUrl,
    aud: setup.app.client_id,
    email: 'alice@example.test',
    email_verified: true,
    name: 'Alice Admin',
    tid: setup.tenant_id,
  });
  expect([...((claims?.roles as string[]) ?? [])].sort()).toEqual(['admin', 'engineer']);
});

it('signs a person added to the people file in through the OIDC connection', async () => {
  const people = [...DEFAULT_PEOPLE, { email: 'dave@example.test', name: 'Dave Sales', groups: ['Sales'] }];
  await writeFile(idp.usersFile, JSON.stringify(people));
  expect(JSON.parse(await readFile(idp.usersFile, 'utf8'))).toHaveLength(4);
  const claims = await signIn(setup.oidc_connection_id, 'dave@example.test');
  expect(claims).toMatchObject({
    iss: gh.baseUrl,
    email: 'dave@example.test',
    name: 'Dave Sales',
    tid: setup.tenant_id,
  });
  expect(claims?.roles).toEqual(['sales']);
});
