import { randomUUID } from 'node:crypto';
import { certificateUntil, metadataXml } from '../connections/metadata-refresh-support.js';
import { buildAdminTestApp, type AdminTestApp } from '../support/admin.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { auditEvents } from '../support/sso-factories.js';
import { tenantSnapshot } from '../support/tenant-admin-token.js';

/**
 * Issue 15 follow-up: certificate renewal through the admin API
 * (POST …/connections/{id}/metadata-renewal), the twin of the portal's
 * `certificate_renewal` upload: the new certificate is trusted at once, the
 * one the document drops is kept through the overlap, each audited with the
 * caller as actor; nothing but certificates changes; another tenant's admin
 * gets the 404 of a connection that does not exist.
 */
let t: TestDatabase;
let a: AdminTestApp;
let acme: string;
let globex: string;
let acmeConnection: string;
let globexConnection: string;
const ENTITY = 'https://idp.acme.test/metadata';
const SSO_URL = 'https://idp.acme.test/sso';
const DAY = 86_400_000;
let oldCert: string;
let newCert: string;

const path = (tenantId: string, connectionId: string) =>
  `/admin/v1/tenants/${tenantId}/connections/${connectionId}/metadata-renewal`;

interface ConnectionBody {
  saml: {
    sso_url: string;
    entity_id: string;
    certificates: { fingerprint_sha256: string; removed_at: string | null }[];
  };
}
const connection = async (tenantId: string, id: string) =>
  (await a.op().get(`/admin/v1/tenants/${tenantId}/connections/${id}`).expect(200)).body as ConnectionBody;

async function samlConnection(tenantId: string, entityId: string, certs: string[]): Promise<string> {
  const res = await a
    .op()
    .post(`/admin/v1/tenants/${tenantId}/connections`)
    .send({ type: 'saml', name: 'IdP', metadata_xml: metadataXml(entityId, SSO_URL, certs) });
  if (res.status !== 201) throw new Error(`connection: ${res.status} ${res.text}`);
  return String(res.body.id);
}

beforeAll(async () => {
  t = await createTestDatabase();
  a = buildAdminTestApp(t);
  oldCert = await certificateUntil(new Date(Date.now() + 10 * DAY), 'old.acme.test');
  newCert = await certificateUntil(new Date(Date.now() + 400 * DAY), 'new.acme.test');
  acme = await a.createTenant('acme', 'Acme');
  globex = await a.createTenant('globex', 'Globex');
  acmeConnection = await samlConnection(acme, ENTITY, [oldCert]);
  globexConnection = await samlConnection(globex, 'https://idp.globex.test/metadata', [oldCert]);
});
afterAll(async () => {
  await t.close();
});

describe('POST /admin/v1/tenants/{id}/connections/{id}/metadata-renewal', () => {
  it('adds the new certificate, keeps the dropped one through the overlap, and audits both with the caller as actor', async () => {
    const both = await a
      .tenantAdmin(acme, 'ada')
      .post(path(acme, acmeConnection))
      .send({ metadata_xml: metadataXml(ENTITY, SSO_URL, [oldCert, newCert]) });
    expect(both.status).toBe(200);
    expect(both.body).toMatchObject({ outcome: 'updated', sso_url_ignored: null });
    expect(both.body.changes.added).toHaveLength(1);
    const added = await auditEvents(t.db, acme, 'connection.certificate_added');
    expect(added).toEqual([expect.objectContaining({ actor_type: 'user', target_id: acmeConnection })]);

    // The IdP then drops the old one: still listed, marked removed, verifying until the overlap ends.
    const dropped = await a
      .op()
      .post(path(acme, acmeConnection))
      .send({ metadata_xml: metadataXml(ENTITY, SSO_URL, [newCert]) });
    expect(dropped.status).toBe(200);
    expect(dropped.body.changes.removed).toHaveLength(1);
    const certs = (await connection(acme, acmeConnection)).saml.certificates;
    expect(certs).toHaveLength(2);
    expect(certs.filter((c) => c.removed_at !== null)).toHaveLength(1);
    expect(await auditEvents(t.db, acme, 'connection.certificate_removed')).toEqual([
      expect.objectContaining({ actor_type: 'operator', target_id: acmeConnection }),
    ]);

    // The same document again changes nothing and writes nothing.
    const again = await a
      .op()
      .post(path(acme, acmeConnection))
      .send({ metadata_xml: metadataXml(ENTITY, SSO_URL, [newCert]) });
    expect(again.body).toMatchObject({ outcome: 'unchanged' });
    expect(await auditEvents(t.db, acme, 'connection.certificate_removed')).toHaveLength(1);
  });

  it('changes certificates only: reports another sign-in URL without applying it, refuses another entity id with 400', async () => {
    const moved = await a
      .op()
      .post(path(acme, acmeConnection))
      .send({ metadata_xml: metadataXml(ENTITY, 'https://elsewhere.test/sso', [newCert]) });
    expect(moved.status).toBe(200);
    expect(moved.body.sso_url_ignored).toBe('https://elsewhere.test/sso');
    expect((await connection(acme, acmeConnection)).saml.sso_url).toBe(SSO_URL);

    const before = await tenantSnapshot(t, acme);
    const other = await a
      .op()
      .post(path(acme, acmeConnection))
      .send({ metadata_xml: metadataXml('https://evil.test/metadata', SSO_URL, [newCert]) });
    expect(other.status).toBe(400);
    expect(other.body).toEqual({
      code: 'bad_request',
      message: expect.any(String),
      request_id: expect.any(String),
    });
    expect(await tenantSnapshot(t, acme)).toEqual(before);
  });

  it('answers bad bodies and unknown ids with {code, message} and changes nothing', async () => {
    const before = await tenantSnapshot(t, acme);
    const cases: [string, unknown, number][] = [
      [path(acme, acmeConnection), {}, 400],
      [path(acme, acmeConnection), { metadata_xml: '' }, 400],
      [path(acme, acmeConnection), { metadata_xml: 'not xml' }, 400],
      [
        path(acme, acmeConnection),
        { metadata_xml: metadataXml(ENTITY, SSO_URL, [newCert]), status: 'active' },
        400,
      ],
      [path(acme, acmeConnection), { metadata_xml: 42 }, 400],
      [path(acme, randomUUID()), { metadata_xml: metadataXml(ENTITY, SSO_URL, [newCert]) }, 404],
      [path(acme, 'not-a-uuid'), { metadata_xml: metadataXml(ENTITY, SSO_URL, [newCert]) }, 404],
    ];
    for (const [url, body, status] of cases) {
      const res = await a
        .op()
        .post(url)
        .send(body as object);
      expect({ url, body, status: res.status }).toEqual({ url, body, status });
      expect(res.body).toEqual({
        code: expect.any(String),
        message: expect.any(String),
        request_id: expect.any(String),
      });
    }
    expect(await tenantSnapshot(t, acme)).toEqual(before);
  });

  it("answers 404 to tenant B's admin renewing tenant A's connection, by A's path or its own, changing nothing of A", async () => {
    const before = await tenantSnapshot(t, acme);
    const document = { metadata_xml: metadataXml(ENTITY, SSO_URL, [newCert, oldCert]) };
    const byPath = await a.tenantAdmin(globex, 'gus').post(path(acme, acmeConnection)).send(document);
    expect(byPath.status).toBe(404);
    expect(byPath.body).toEqual({
      code: 'not_found',
      message: expect.any(String),
      request_id: expect.any(String),
    });
    // A's connection id under B's own path: RLS scopes the lookup to B, so it does not exist there.
    const underOwn = await a.tenantAdmin(globex, 'gus').post(path(globex, acmeConnection)).send(document);
    expect(underOwn.status).toBe(404);
    expect(await tenantSnapshot(t, acme)).toEqual(before);
    expect(await auditEvents(t.db, globex, 'connection.certificate_added')).toEqual([]);
    // B's own connection stays B's to renew.
    const own = await a
      .tenantAdmin(globex, 'gus')
      .post(path(globex, globexConnection))
      .send({ metadata_xml: metadataXml('https://idp.globex.test/metadata', SSO_URL, [oldCert]) });
    expect(own.status).toBe(200);
  });
});
