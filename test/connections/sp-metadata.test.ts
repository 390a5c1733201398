import { readFileSync } from 'node:fs';
import { DOMParser } from '@xmldom/xmldom';
import * as samlify from 'samlify';
import request from 'supertest';
import xpath from 'xpath';
import { spMetadataXml } from '../../src/connections/sp-metadata.js';
import { serviceProviderDetails } from '../../src/connections/sp.js';
import { buildTestApp, type TestApp } from '../support/app.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { loopbackCertificate } from '../support/local-http.js';

const POST = 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST';
const select = xpath.useNamespaces({
  md: 'urn:oasis:names:tc:SAML:2.0:metadata',
  ds: 'http://www.w3.org/2000/09/xmldsig#',
});

let t: TestDatabase;
let a: TestApp;
let tenantId: string;
let connectionId: string;
let signedConnectionId: string;

beforeAll(async () => {
  t = await createTestDatabase();
  a = buildTestApp(t);
  const op = () =>
    request(a.app).post('/admin/v1/tenants').set('Authorization', `Bearer ${a.secrets.adminToken}`);
  tenantId = (await op().send({ slug: 'acme', name: 'Acme' })).body.id;
  const create = (body: Record<string, unknown>) =>
    request(a.app)
      .post(`/admin/v1/tenants/${tenantId}/connections`)
      .set('Authorization', `Bearer ${a.secrets.adminToken}`)
      .send({
        type: 'saml',
        name: 'Okta',
        metadata_xml: readFileSync('fixtures/saml/metadata/okta.xml', 'utf8'),
        ...body,
      });
  connectionId = (await create({})).body.id;
  signedConnectionId = (await create({ sign_authn_requests: true })).body.id;
});
afterAll(() => t.close());

function parse(xml: string): Document {
  return new DOMParser().parseFromString(xml, 'text/xml');
}

describe('SP metadata endpoint', () => {
  it('serves a SAML 2.0 metadata document for the connection, without authentication', async () => {
    const res = await request(a.app).get(`/saml/${connectionId}/metadata`);
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/samlmetadata\+xml/);
    const doc = parse(res.text);
    const sp = serviceProviderDetails('https://gatehouse.test', connectionId);
    expect(select('string(/md:EntityDescriptor/@entityID)', doc)).toBe(sp.entityId);
    const descriptor = select('/md:EntityDescriptor/md:SPSSODescriptor', doc, true) as Element;
    expect(descriptor.getAttribute('protocolSupportEnumeration')).toBe(
      'urn:oasis:names:tc:SAML:2.0:protocol',
    );
    expect(descriptor.getAttribute('WantAssertionsSigned')).toBe('true');
    expect(descriptor.getAttribute('AuthnRequestsSigned')).toBe('false');
    expect((select('md:NameIDFormat', descriptor) as Element[]).map((n) => n.textContent)).toEqual([
      'urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress',
      'urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified',
    ]);
    const acs = select('md:AssertionConsumerService', descriptor) as Element[];
    expect(acs).toHaveLength(1);
    expect(acs[0]!.getAttribute('Binding')).toBe(POST);
    expect(acs[0]!.getAttribute('Location')).toBe(sp.acsUrl);
    expect(acs[0]!.getAttribute('index')).toBe('0');
  });

  it('is accepted by an independent SAML library (samlify) as SP metadata', async () => {
    const res = await request(a.app).get(`/saml/${signedConnectionId}/metadata`);
    const sp = samlify.ServiceProvider({ metadata: res.text });
    const expected = serviceProviderDetails('https://gatehouse.test', signedConnectionId);
    expect(sp.entityMeta.getEntityID()).toBe(expected.entityId);
    expect(sp.entityMeta.getAssertionConsumerService('post')).toBe(expected.acsUrl);
    expect(sp.entityMeta.isWantAssertionsSigned()).toBe(true);
    expect(sp.entityMeta.isAuthnRequestSigned()).toBe(true);
    expect(sp.entityMeta.getNameIDFormat()).toContain(
      'urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress',
    );
  });

  it('places an SP signing certificate in a KeyDescriptor before NameIDFormat (schema order)', async () => {
    const { cert } = await loopbackCertificate();
    const xml = spMetadataXml({
      sp: serviceProviderDetails('https://gatehouse.test', connectionId),
      authnRequestsSigned: true,
      signingCertificatePem: cert,
    });
    const children = (select('/md:EntityDescriptor/md:SPSSODescriptor/*', parse(xml)) as Element[]).map(
      (e) => e.localName,
    );
    expect(children).toEqual([
      'KeyDescriptor',
      'SingleLogoutService',
      'SingleLogoutService',
      'NameIDFormat',
      'NameIDFormat',
      'AssertionConsumerService',
    ]);
    const sp = samlify.ServiceProvider({ metadata: xml });
    const body = cert.replace(/-----(BEGIN|END) CERTIFICATE-----|\s+/g, '');
    expect(sp.entityMeta.getX509Certificate('signing')).toBe(body);
  });

  it('answers 404 for unknown ids, non-UUIDs and OIDC connections', async () => {
    const oidcId = await t.db.withTenant(tenantId, async (em) => {
      const [row] = await em.query(
        `INSERT INTO connections (tenant_id, type, name, oidc_issuer) VALUES ($1, 'oidc', 'op', 'https://op.example.com') RETURNING id`,
        [tenantId],
      );
      return row.id as string;
    });
    for (const id of ['00000000-0000-4000-8000-000000000000', 'not-a-uuid', oidcId]) {
      const res = await request(a.app).get(`/saml/${id}/metadata`);
      expect(res.status).toBe(404);
      expect(res.body.code).toBe('not_found');
    }
  });

  it('answers 404 for the connections of a suspended tenant', async () => {
    await t.db.withPlatform((em) =>
      em.query(`UPDATE tenants SET status = 'suspended' WHERE id = $1`, [tenantId]),
    );
    try {
      expect((await request(a.app).get(`/saml/${connectionId}/metadata`)).status).toBe(404);
    } finally {
      await t.db.withPlatform((em) =>
        em.query(`UPDATE tenants SET status = 'active' WHERE id = $1`, [tenantId]),
      );
    }
  });
});
