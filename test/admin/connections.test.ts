import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { readFileSync } from 'node:fs';
import request from 'supertest';
import { verifyAuditChain } from '../../src/audit/audit.service.js';
import { buildTestApp, type TestApp } from '../support/app.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { loopbackCertificate, startLocalServer, type LocalServer } from '../support/local-http.js';

const fixture = (name: string) => readFileSync(`fixtures/saml/metadata/${name}`, 'utf8');
const REDIRECT = 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect';

let t: TestDatabase;
let a: TestApp;
let dev: TestApp;
let tenantId: string;
let metadataServer: LocalServer;
let tlsServer: LocalServer;
let caFile: string;

beforeAll(async () => {
  t = await createTestDatabase();
  a = buildTestApp(t);
  metadataServer = await startLocalServer({
    '/okta/metadata': (_req, res) =>
      res.writeHead(200, { 'content-type': 'application/samlmetadata+xml' }).end(fixture('okta.xml')),
    '/entra/metadata': (_req, res) => res.writeHead(200).end(fixture('entra.xml')),
  });
  const tls = await loopbackCertificate();
  tlsServer = await startLocalServer(
    { '/google/metadata': (_req, res) => res.writeHead(200).end(fixture('google.xml')) },
    tls,
  );
  caFile = path.join(await mkdtemp(path.join(tmpdir(), 'gh-ca-')), 'ca.pem');
  await writeFile(caFile, tls.cert);
  // A second app on the same database, with the development setting on.
  dev = buildTestApp(t, {
    GATEHOUSE_ALLOW_PRIVATE_METADATA_URLS: 'true',
    GATEHOUSE_OUTBOUND_CA_FILE: caFile,
  });
  tenantId = (await op(a).post('/admin/v1/tenants').send({ slug: 'acme', name: 'Acme' })).body.id;
});
afterAll(async () => {
  await metadataServer.close();
  await tlsServer.close();
  await t.close();
});

function op(app: TestApp) {
  return request.agent(app.app).set('Authorization', `Bearer ${app.secrets.adminToken}`);
}
const connections = `/admin/v1/tenants/`;
const url = (suffix = '') => `${connections}${tenantId}/connections${suffix}`;
const countConnections = async () =>
  Number((await t.db.withTenant(tenantId, (em) => em.query('SELECT count(*) AS n FROM connections')))[0].n);

describe('admin API: SAML connections', () => {
  it.each([
    ['okta.xml', 'http://www.okta.com/exk1fcia6d6EMsf331d8', 1],
    ['entra.xml', 'https://sts.windows.net/72f988bf-86f1-41af-91ab-2d7cd011db47/', 2],
    ['google.xml', 'https://accounts.google.com/o/saml2?idpid=C03abc123', 1],
  ])('creates a connection from %s metadata and answers the SP details', async (file, entityId, certs) => {
    const res = await op(a)
      .post(url())
      .send({ type: 'saml', name: file, metadata_xml: fixture(file) });
    expect(res.status).toBe(201);
    const id = res.body.id as string;
    expect(res.body).toMatchObject({
      tenant_id: tenantId,
      type: 'saml',
      status: 'draft',
      jit_enabled: true,
      default_role: 'member',
      warnings: [],
      saml: {
        idp_entity_id: entityId,
        sso_binding: REDIRECT,
        allow_idp_initiated: false,
        allow_sha1: false,
        signed_element: 'assertion',
      },
      sp: {
        entity_id: `https://gatehouse.test/saml/${id}`,
        acs_url: `https://gatehouse.test/saml/${id}/acs`,
        metadata_url: `https://gatehouse.test/saml/${id}/metadata`,
      },
    });
    expect(res.body.saml.certificates).toHaveLength(certs);
    for (const cert of res.body.saml.certificates) {
      expect(cert).toMatchObject({ not_after: '2045-01-01T00:00:00.000Z', expired: false });
      expect(cert.fingerprint_sha256).toMatch(/^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
      expect(cert.pem).toMatch(/^-----BEGIN CERTIFICATE-----/);
    }
    const stored = await t.db.withTenant(tenantId, (em) =>
      em.query('SELECT saml_certificates, saml_sso_url FROM connections WHERE id = $1', [id]),
    );
    expect(stored[0].saml_certificates).toHaveLength(certs);
    expect(stored[0].saml_certificates[0]).toEqual(
      expect.objectContaining({ pem: expect.any(String), fingerprintSha256: expect.any(String) }),
    );
  });

  it('sets flags, status and attribute mapping on create', async () => {
    const res = await op(a)
      .post(url())
      .send({
        type: 'saml',
        name: 'Okta prod',
        metadata_xml: fixture('okta.xml'),
        status: 'active',
        jit_enabled: false,
        default_role: 'viewer',
        allow_unverified_email: true,
        allow_idp_initiated: true,
        sign_authn_requests: true,
        signed_element: 'response',
        attribute_mapping: { email: 'mail', groups: 'memberOf' },
      });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({
      status: 'active',
      jit_enabled: false,
      default_role: 'viewer',
      allow_unverified_email: true,
      attribute_mapping: { email: 'mail', groups: 'memberOf' },
      saml: {
        allow_idp_initiated: true,
        sign_authn_requests: true,
        allow_sha1: false,
        signed_element: 'response',
      },
    });
  });

  it('accepts an expired certificate with a warning and flags it', async () => {
    const res = await op(a)
      .post(url())
      .send({ type: 'saml', name: 'old', metadata_xml: fixture('metadata.expired-cert.xml') });
    expect(res.status).toBe(201);
    expect(res.body.warnings).toEqual([expect.stringMatching(/expired on 2021-01-01/)]);
    expect(res.body.saml.certificates[0]).toMatchObject({
      expired: true,
      not_after: '2021-01-01T00:00:00.000Z',
    });
  });

  it('imports from a metadata URL on a real local HTTP server (development setting)', async () => {
    const res = await op(dev)
      .post(url())
      // force: an active Okta connection above already uses this entity id (409 idp_entity_id_in_use).
      .send({
        type: 'saml',
        name: 'Okta by URL',
        metadata_url: `${metadataServer.url}/okta/metadata`,
        force: true,
      });
    expect(res.status).toBe(201);
    expect(res.body.saml.idp_entity_id).toBe('http://www.okta.com/exk1fcia6d6EMsf331d8');
    expect(metadataServer.requests).toContain('/okta/metadata');
  });

  it('imports from an HTTPS metadata URL whose certificate is trusted through GATEHOUSE_OUTBOUND_CA_FILE', async () => {
    const res = await op(dev)
      .post(url())
      .send({ type: 'saml', name: 'Google by URL', metadata_url: `${tlsServer.url}/google/metadata` });
    expect(res.status).toBe(201);
    expect(res.body.saml.idp_entity_id).toBe('https://accounts.google.com/o/saml2?idpid=C03abc123');
  });

  it('refuses a loopback metadata URL without the development setting, storing nothing', async () => {
    const before = await countConnections();
    const served = metadataServer.requests.length;
    const res = await op(a)
      .post(url())
      .send({ type: 'saml', name: 'x', metadata_url: `${tlsServer.url}/google/metadata` });
    expect(res.status).toBe(400);
    expect(res.body.message).toMatch(/^metadata_url: .*private, loopback or link-local address/);
    const plain = await op(a)
      .post(url())
      .send({ type: 'saml', name: 'x', metadata_url: `${metadataServer.url}/okta/metadata` });
    expect(plain.status).toBe(400);
    expect(plain.body.message).toMatch(/must be an https:\/\/ URL/);
    expect(metadataServer.requests.length).toBe(served);
    expect(await countConnections()).toBe(before);
  });

  it('lists, reads, updates and deletes, auditing every change', async () => {
    const created = await op(a)
      .post(url())
      .send({ type: 'saml', name: 'Entra', metadata_xml: fixture('entra.xml') });
    const id = created.body.id as string;

    const list = await op(a).get(url('?limit=2'));
    expect(list.status).toBe(200);
    expect(list.body).toMatchObject({ limit: 2, offset: 0 });
    expect(list.body.total).toBeGreaterThanOrEqual(3);
    expect(list.body.data).toHaveLength(2);

    expect((await op(a).get(url(`/${id}`))).body).toMatchObject({ id, name: 'Entra' });

    const patched = await op(a)
      .patch(url(`/${id}`))
      .send({
        status: 'active',
        allow_sha1: true,
        signed_element: 'both',
        name: 'Entra ID',
        attribute_mapping: { email: '$NameID' },
      });
    expect(patched.status).toBe(200);
    expect(patched.body).toMatchObject({
      status: 'active',
      name: 'Entra ID',
      attribute_mapping: { email: '$NameID' },
      saml: { allow_sha1: true, signed_element: 'both' },
    });
    const refused = await op(a)
      .patch(url(`/${id}`))
      .send({ signed_element: 'none' });
    expect(refused.status).toBe(400);
    expect(refused.body.code).toBe('bad_request');
    expect(patched.body.saml.certificates).toHaveLength(2);

    // Re-import: the IdP moved to new metadata (here, Okta's).
    const reimported = await op(a)
      .patch(url(`/${id}`))
      .send({ metadata_xml: fixture('okta.xml') });
    expect(reimported.status).toBe(200);
    expect(reimported.body.saml.idp_entity_id).toBe('http://www.okta.com/exk1fcia6d6EMsf331d8');
    expect(reimported.body.saml.certificates).toHaveLength(1);

    // Certificates replaced directly (rotation without new metadata): Okta's plus Entra's first.
    const pems = [reimported.body.saml.certificates[0].pem, created.body.saml.certificates[0].pem];
    const rotated = await op(a)
      .patch(url(`/${id}`))
      .send({ certificates: pems });
    expect(rotated.status).toBe(200);
    expect(rotated.body.saml.certificates.map((c: { pem: string }) => c.pem)).toEqual(pems);

    expect((await op(a).delete(url(`/${id}`))).status).toBe(204);
    expect((await op(a).get(url(`/${id}`))).status).toBe(404);

    const events = await t.db.withTenant(tenantId, (em) =>
      em.query(
        `SELECT action, actor_type, before, after FROM audit_events WHERE target_id = $1 ORDER BY seq`,
        [id],
      ),
    );
    expect(events.map((e: { action: string }) => e.action)).toEqual([
      'connection.created',
      'connection.updated',
      'connection.updated',
      'connection.updated',
      'connection.deleted',
    ]);
    expect(events[1].before).toMatchObject({ status: 'draft' });
    expect(events[1].after).toMatchObject({
      status: 'active',
      changed_fields: expect.arrayContaining(['status']),
    });
    expect(JSON.stringify(events)).not.toContain('BEGIN CERTIFICATE');
    expect(await verifyAuditChain(t.db, tenantId)).toMatchObject({ valid: true });
  });

  it('signs out sessions made through a connection when it is deleted', async () => {
    const created = await op(a)
      .post(url())
      .send({ type: 'saml', name: 'tmp', metadata_xml: fixture('okta.xml'), force: true });
    const id = created.body.id as string;
    const sessionId = await t.db.withTenant(tenantId, async (em) => {
      const [user] = await em.query(
        `INSERT INTO users (tenant_id, user_name) VALUES ($1, 'bob@acme.com') RETURNING id`,
        [tenantId],
      );
      const [session] = await em.query(
        `INSERT INTO sessions (tenant_id, user_id, connection_id, expires_at)
         VALUES ($1, $2, $3, now() + interval '1 hour') RETURNING id`,
        [tenantId, user.id, id],
      );
      return session.id as string;
    });
    expect((await op(a).delete(url(`/${id}`))).status).toBe(204);
    const [session] = await t.db.withTenant(tenantId, (em) =>
      em.query('SELECT revoked_at, revoked_reason, connection_id FROM sessions WHERE id = $1', [sessionId]),
    );
    expect(session).toMatchObject({ revoked_reason: 'connection_deleted', connection_id: null });
    expect(session.revoked_at).not.toBeNull();
  });
});
