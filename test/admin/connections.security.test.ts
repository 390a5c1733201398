import { readFileSync } from 'node:fs';
import { buildAdminTestApp, type AdminTestApp } from '../support/admin.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';

const fixture = (name: string) => readFileSync(`fixtures/saml/metadata/${name}`, 'utf8');

let t: TestDatabase;
let a: AdminTestApp;
let acmeId: string;
let globexId: string;
let acmeConnection: string;
let globexConnection: string;

beforeAll(async () => {
  t = await createTestDatabase();
  a = buildAdminTestApp(t);
  acmeId = await a.createTenant('acme', 'Acme');
  globexId = await a.createTenant('globex', 'Globex');
  acmeConnection = (
    await op()
      .post(`/admin/v1/tenants/${acmeId}/connections`)
      .send({ type: 'saml', name: 'Acme Okta', metadata_xml: fixture('okta.xml') })
  ).body.id;
  globexConnection = (
    await op()
      .post(`/admin/v1/tenants/${globexId}/connections`)
      .send({ type: 'saml', name: 'Globex Entra', metadata_xml: fixture('entra.xml') })
  ).body.id;
});
afterAll(() => t.close());

const op = () => a.op();
const acmeAdmin = () => a.tenantAdmin(acmeId, 'u-acme-admin');
const path = (tenantId: string, suffix = '') => `/admin/v1/tenants/${tenantId}/connections${suffix}`;

async function snapshot(tenantId: string) {
  return t.db.withTenant(tenantId, async (em) => ({
    connections: await em.query('SELECT id, name, status, saml_certificates FROM connections ORDER BY id'),
    audit: Number((await em.query('SELECT count(*) AS n FROM audit_events'))[0].n),
  }));
}

describe('connections: tenant isolation', () => {
  it("answers 404 for another tenant's connection id in the path, changing nothing", async () => {
    const before = await snapshot(globexId);
    expect((await op().get(path(acmeId, `/${globexConnection}`))).status).toBe(404);
    const patch = await op()
      .patch(path(acmeId, `/${globexConnection}`))
      .send({ name: 'pwned' });
    expect(patch.status).toBe(404);
    expect(patch.body.code).toBe('not_found');
    expect((await op().delete(path(acmeId, `/${globexConnection}`))).status).toBe(404);
    expect(await snapshot(globexId)).toEqual(before);
  });

  it('lets a tenant admin manage their own connections', async () => {
    expect((await acmeAdmin().get(path(acmeId, `/${acmeConnection}`))).status).toBe(200);
    const created = await acmeAdmin()
      .post(path(acmeId))
      .send({ type: 'saml', name: 'Acme Google', metadata_xml: fixture('google.xml') });
    expect(created.status).toBe(201);
    const events = await t.db.withTenant(acmeId, (em) =>
      em.query(`SELECT actor_type, actor_id FROM audit_events WHERE target_id = $1`, [created.body.id]),
    );
    expect(events).toEqual([{ actor_type: 'user', actor_id: 'u-acme-admin' }]);
  });

  it("answers 404 to a tenant admin of Acme on Globex's connections", async () => {
    const before = await snapshot(globexId);
    expect((await acmeAdmin().get(path(globexId))).status).toBe(404);
    expect((await acmeAdmin().get(path(globexId, `/${globexConnection}`))).status).toBe(404);
    const create = await acmeAdmin()
      .post(path(globexId))
      .send({ type: 'saml', name: 'planted', metadata_xml: fixture('okta.xml') });
    expect(create.status).toBe(404);
    expect(
      (
        await acmeAdmin()
          .patch(path(globexId, `/${globexConnection}`))
          .send({ status: 'inactive' })
      ).status,
    ).toBe(404);
    expect((await acmeAdmin().delete(path(globexId, `/${globexConnection}`))).status).toBe(404);
    // Globex's connection under Acme's own path is not found either.
    expect((await acmeAdmin().get(path(acmeId, `/${globexConnection}`))).status).toBe(404);
    expect(await snapshot(globexId)).toEqual(before);
  });

  it('answers 404 for ids that are not UUIDs and tenants that do not exist', async () => {
    expect((await op().get(path(acmeId, '/not-a-uuid'))).status).toBe(404);
    const ghost = '00000000-0000-4000-8000-000000000001';
    expect((await op().get(path(ghost))).status).toBe(404);
    const create = await op()
      .post(path(ghost))
      .send({ type: 'saml', name: 'x', metadata_xml: fixture('okta.xml') });
    expect(create.status).toBe(404);
  });
});

describe('connections: bad input is refused with 400 and nothing is stored', () => {
  it.each([
    ['metadata.xxe.xml', /^metadata: a DOCTYPE or ENTITY declaration is not allowed/],
    ['metadata.billion-laughs.xml', /^metadata: a DOCTYPE or ENTITY declaration is not allowed/],
    ['metadata.oversize.xml', /^metadata: the document is larger than 256 KiB/],
    ['metadata.no-signing-cert.xml', /^metadata: no signing certificate/],
    ['metadata.not-metadata.xml', /^metadata: not a SAML 2\.0 metadata document/],
  ])('refuses %s', async (file, message) => {
    const before = await snapshot(acmeId);
    const res = await op()
      .post(path(acmeId))
      .send({ type: 'saml', name: file, metadata_xml: fixture(file) });
    expect(res.status).toBe(400);
    expect(res.body.code).toBe('bad_request');
    expect(res.body.message).toMatch(message);
    expect(await snapshot(acmeId)).toEqual(before);
  });

  it.each([
    [{ type: 'saml', name: 'x' }, /exactly one of metadata_xml or metadata_url/],
    [
      { type: 'saml', name: 'x', metadata_xml: '<a/>', metadata_url: 'https://idp.example.com/m' },
      /exactly one of metadata_xml or metadata_url/,
    ],
    [{ type: 'ldap', name: 'x' }, /type: must be "saml" or "oidc"/],
    [{ name: 'x', metadata_xml: '<a/>' }, /type: must be "saml" or "oidc"/],
    [{ type: 'saml', name: 'x', metadata_xml: '<a/>', sso_url: 'https://x' }, /unknown field\(s\): sso_url/],
    [{ type: 'saml', name: 'x', metadata_xml: '<a/>', default_role: 'Admin!' }, /^default_role:/],
    [{ type: 'saml', name: 'x', metadata_xml: '<a/>', status: 'enabled' }, /^status:/],
    [
      { type: 'saml', name: 'x', metadata_xml: '<a/>', attribute_mapping: { phone: 'tel' } },
      /unknown field\(s\): phone/,
    ],
    [{ type: 'saml', name: '', metadata_xml: '<a/>' }, /^name:/],
    [{ type: 'saml', name: 'x', metadata_xml: 'not xml at all' }, /^metadata: not well-formed XML/],
  ])('refuses %j', async (body, message) => {
    const before = await snapshot(acmeId);
    const res = await op().post(path(acmeId)).send(body);
    expect(res.status).toBe(400);
    expect(res.body.message).toMatch(message);
    expect(await snapshot(acmeId)).toEqual(before);
  });

  it('refuses malformed JSON', async () => {
    const res = await op().post(path(acmeId)).set('Content-Type', 'application/json').send('{"type":');
    expect(res.status).toBe(400);
    expect(res.body.message).toMatch(/Malformed JSON/);
  });

  it.each([
    [{}, /nothing to change/],
    [{ client_secret: 'x' }, /client_secret: not a field of saml connections/],
    [{ type: 'oidc' }, /unknown field\(s\): type/],
    [{ certificates: ['not a certificate'] }, /certificates\[0\]: not a valid X\.509 certificate/],
    [{ metadata_xml: fixture('metadata.xxe.xml') }, /DOCTYPE or ENTITY/],
    [{ metadata_xml: fixture('okta.xml'), certificates: ['x'] }, /either new metadata or certificates/],
  ])('refuses the update %#, leaving the connection as it was', async (body, message) => {
    const before = await snapshot(acmeId);
    const res = await op()
      .patch(path(acmeId, `/${acmeConnection}`))
      .send(body);
    expect(res.status).toBe(400);
    expect(res.body.message).toMatch(message);
    expect(await snapshot(acmeId)).toEqual(before);
  });
});
