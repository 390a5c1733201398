import http from 'node:http';
import type { AddressInfo } from 'node:net';
import Provider from 'oidc-provider';
import request from 'supertest';
import { open } from '../../src/config/secret-box.js';
import { buildTestApp, type TestApp } from '../support/app.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { startLocalServer, type LocalServer } from '../support/local-http.js';

const CLIENT_SECRET = 'idp-client-secret-7f9c2b1e-do-not-leak';

let t: TestDatabase;
let dev: TestApp;
let strict: TestApp;
let tenantId: string;
let otherTenantId: string;
let opServer: http.Server;
let issuer: string;
let fakeOp: LocalServer;

/** A real OpenID Provider (oidc-provider) on loopback, as the tenant's IdP. */
async function startOpenIdProvider(): Promise<void> {
  let handler: http.RequestListener = (_req, res) => res.end();
  opServer = http.createServer((req, res) => handler(req, res));
  await new Promise<void>((resolve) => opServer.listen(0, '127.0.0.1', resolve));
  issuer = `http://127.0.0.1:${(opServer.address() as AddressInfo).port}`;
  const provider = new Provider(issuer, {
    clients: [
      { client_id: 'gatehouse', client_secret: CLIENT_SECRET, redirect_uris: ['https://gatehouse.test/cb'] },
    ],
  });
  const callback = provider.callback();
  handler = (req, res) => {
    void callback(req, res);
  };
}

beforeAll(async () => {
  t = await createTestDatabase();
  dev = buildTestApp(t, { GATEHOUSE_ALLOW_PRIVATE_METADATA_URLS: 'true' });
  strict = buildTestApp(t);
  await startOpenIdProvider();
  // Discovery documents with one thing wrong each, served by a real local server
  // (built per request: the server's own URL is known only once it listens).
  const discovery =
    (make: (base: string) => Record<string, unknown>) =>
    (_req: http.IncomingMessage, res: http.ServerResponse) =>
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(make(fakeOp.url)));
  fakeOp = await startLocalServer({
    '/no-jwks/.well-known/openid-configuration': discovery((base) => ({
      issuer: `${base}/no-jwks`,
      authorization_endpoint: `${base}/auth`,
      token_endpoint: `${base}/token`,
    })),
    '/not-json/.well-known/openid-configuration': (_req, res) => res.writeHead(200).end('<html>'),
  });
  tenantId = (await op(dev).post('/admin/v1/tenants').send({ slug: 'acme', name: 'Acme' })).body.id;
  otherTenantId = (await op(dev).post('/admin/v1/tenants').send({ slug: 'globex', name: 'Globex' })).body.id;
});
afterAll(async () => {
  opServer.closeAllConnections();
  await new Promise((resolve) => opServer.close(resolve));
  await fakeOp.close();
  await t.close();
});

function op(app: TestApp) {
  return request.agent(app.app).set('Authorization', `Bearer ${app.secrets.adminToken}`);
}
const path = (suffix = '') => `/admin/v1/tenants/${tenantId}/connections${suffix}`;
const oidcBody = (extra: Record<string, unknown> = {}) => ({
  type: 'oidc',
  name: 'Acme OP',
  issuer,
  client_id: 'gatehouse',
  client_secret: CLIENT_SECRET,
  ...extra,
});
const rows = () =>
  t.db.withTenant(tenantId, (em) =>
    em.query(
      'SELECT id, oidc_client_secret_enc, oidc_issuer, oidc_id_token_algs FROM connections ORDER BY id',
    ),
  );

describe('admin API: OIDC connections', () => {
  let connectionId: string;

  it('creates a connection after discovering and validating the issuer', async () => {
    const res = await op(dev)
      .post(path())
      .send(oidcBody({ scopes: ['openid', 'email', 'profile', 'groups'] }));
    expect(res.status).toBe(201);
    connectionId = res.body.id;
    expect(res.body).toMatchObject({
      type: 'oidc',
      status: 'draft',
      oidc: {
        issuer,
        client_id: 'gatehouse',
        scopes: ['openid', 'email', 'profile', 'groups'],
        id_token_algs: ['RS256'],
        trust_email_unverified: false,
        redirect_uri: `https://gatehouse.test/oidc/${connectionId}/callback`,
      },
      warnings: [],
    });
    expect(res.body.saml).toBeUndefined();
  });

  it('stores the client secret sealed under the master key, bound to tenant and connection', async () => {
    const [row] = (await rows()).filter((r: { id: string }) => r.id === connectionId);
    expect(row.oidc_client_secret_enc).not.toContain(CLIENT_SECRET);
    expect(row.oidc_client_secret_enc).toMatch(/^v1\./);
    const context = `connection:${tenantId}:${connectionId}:oidc_client_secret`;
    expect(open(dev.secrets.masterKey, row.oidc_client_secret_enc, context)).toBe(CLIENT_SECRET);
    // Copied into another tenant's row, it does not open.
    const elsewhere = `connection:${otherTenantId}:${connectionId}:oidc_client_secret`;
    expect(() => open(dev.secrets.masterKey, row.oidc_client_secret_enc, elsewhere)).toThrow();
  });

  it('never returns the client secret, nor writes it to the audit trail or logs', async () => {
    const answers = [
      await op(dev).get(path(`/${connectionId}`)),
      await op(dev).get(path()),
      await op(dev)
        .patch(path(`/${connectionId}`))
        .send({ client_secret: `${CLIENT_SECRET}-rotated` }),
    ];
    for (const res of answers) {
      expect(res.status).toBe(200);
      expect(JSON.stringify(res.body)).not.toContain(CLIENT_SECRET);
      expect(JSON.stringify(res.body)).not.toMatch(/client_secret/);
    }
    const audit = await t.db.withTenant(tenantId, (em) => em.query('SELECT before, after FROM audit_events'));
    expect(JSON.stringify(audit)).not.toContain(CLIENT_SECRET);
    expect(audit.at(-1).after.changed_fields).toEqual(['client_secret']);
    expect(dev.logs()).not.toContain(CLIENT_SECRET);
    const [row] = (await rows()).filter((r: { id: string }) => r.id === connectionId);
    const context = `connection:${tenantId}:${connectionId}:oidc_client_secret`;
    expect(open(dev.secrets.masterKey, row.oidc_client_secret_enc, context)).toBe(`${CLIENT_SECRET}-rotated`);
  });

  it('updates scopes and pinned algorithms, re-checking them against discovery', async () => {
    const ok = await op(dev)
      .patch(path(`/${connectionId}`))
      .send({ id_token_algs: ['RS256', 'ES256'] });
    expect(ok.status).toBe(200);
    expect(ok.body.oidc.id_token_algs).toEqual(['RS256', 'ES256']);
    const trusting = await op(dev)
      .patch(path(`/${connectionId}`))
      .send({ trust_email_unverified: true });
    expect(trusting.status).toBe(200);
    expect(trusting.body.oidc.trust_email_unverified).toBe(true);
    const samlOnly = await op(dev)
      .patch(path(`/${connectionId}`))
      .send({ signed_element: 'response' });
    expect(samlOnly.status).toBe(400);
    const unsupported = await op(dev)
      .patch(path(`/${connectionId}`))
      .send({ id_token_algs: ['ES384'] });
    expect(unsupported.status).toBe(400);
    expect(unsupported.body.message).toMatch(/signs ID tokens with RS256; none of id_token_algs \(ES384\)/);
    const saml = await op(dev)
      .patch(path(`/${connectionId}`))
      .send({ metadata_url: 'https://idp.example.com' });
    expect(saml.body.message).toMatch(/metadata_url: not a field of oidc connections/);
  });

  describe('refuses bad input with 400, storing nothing', () => {
    it.each([
      [() => oidcBody({ id_token_algs: ['none'] }), /"none" is never accepted/],
      [() => oidcBody({ id_token_algs: ['HS256'] }), /HS256 is symmetric/],
      [() => oidcBody({ id_token_algs: ['RS1'] }), /RS1 is not one of/],
      [() => oidcBody({ scopes: ['email'] }), /scopes: must include openid/],
      [() => oidcBody({ client_secret: undefined }), /client_secret/],
      [() => oidcBody({ issuer: `${issuer}/` }), /names the issuer ".*", not ".*\/"/],
      [() => oidcBody({ issuer: `${issuer}?tenant=x` }), /must not contain a query or fragment/],
      [() => oidcBody({ id_token_algs: ['ES256'] }), /signs ID tokens with RS256; none of id_token_algs/],
      [
        () => oidcBody({ issuer: 'http://127.0.0.1:1' }),
        /issuer discovery: could not be fetched \(connection refused\)/,
      ],
      [() => oidcBody({ issuer: `${fakeOp.url}/no-jwks` }), /no jwks_uri/],
      [() => oidcBody({ issuer: `${fakeOp.url}/not-json` }), /is not a JSON document/],
      [() => oidcBody({ issuer: `${fakeOp.url}/missing` }), /answered HTTP 404/],
    ])('case %#', async (body, message) => {
      const before = await rows();
      const res = await op(dev).post(path()).send(body());
      expect(res.status).toBe(400);
      expect(res.body.message).toMatch(message);
      expect(await rows()).toEqual(before);
    });

    it('refuses a loopback issuer without the development setting', async () => {
      const before = await rows();
      const res = await op(strict).post(path()).send(oidcBody());
      expect(res.status).toBe(400);
      expect(res.body.message).toMatch(/^issuer: must be an https:\/\/ URL/);
      const https = await op(strict)
        .post(path())
        .send(oidcBody({ issuer: issuer.replace('http:', 'https:') }));
      expect(https.body.message).toMatch(/private, loopback or link-local address/);
      expect(await rows()).toEqual(before);
    });
  });
});
