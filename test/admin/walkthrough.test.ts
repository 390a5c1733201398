import { readFile } from 'node:fs/promises';
import request from 'supertest';
import { resolveTenantByEmailDomain } from '../../src/db/resolvers.js';
import { buildAdminTestApp, type AdminTestApp } from '../support/admin.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { startDnsServer, type TestDnsServer } from '../support/dns-server.js';

/**
 * The operator onboards a customer through the admin API, step by step, as the
 * README tells it. Each step depends on the one before, so they run in order.
 */
let t: TestDatabase;
let dns: TestDnsServer;
let a: AdminTestApp;

beforeAll(async () => {
  t = await createTestDatabase();
  dns = await startDnsServer();
  a = buildAdminTestApp(t, { GATEHOUSE_DNS_SERVERS: dns.address });
});
afterAll(async () => {
  await dns.close();
  await t.close();
});

const op = () => a.op();

describe('walkthrough: onboarding a customer', () => {
  let tenantId: string;
  let domainId: string;

  it('1. creates the tenant', async () => {
    const res = await op().post('/admin/v1/tenants').send({ slug: 'acme', name: 'Acme Inc' });
    expect(res.status).toBe(201);
    tenantId = res.body.id;
  });

  it('2. adds the domain and gets the TXT record to publish', async () => {
    const res = await op().post(`/admin/v1/tenants/${tenantId}/domains`).send({ domain: 'acme.com' });
    expect(res.status).toBe(201);
    domainId = res.body.id;
    // The customer's IT admin publishes the record.
    dns.setTxt(res.body.verification.name, [res.body.verification.value]);
  });

  it('3. verifies the domain, which now routes logins to the tenant', async () => {
    const res = await op().post(`/admin/v1/tenants/${tenantId}/domains/${domainId}/verify`);
    expect(res.status).toBe(200);
    expect(res.body.status).toBe('verified');
    expect(await resolveTenantByEmailDomain(t.db, 'ACME.com')).toBe(tenantId);
  });

  let connectionId: string;

  it('3a. creates the SAML connection from the IdP metadata and answers the SP details', async () => {
    const metadata = await readFile('fixtures/saml/metadata/okta.xml', 'utf8');
    const res = await op()
      .post(`/admin/v1/tenants/${tenantId}/connections`)
      .send({ type: 'saml', name: 'Okta', metadata_xml: metadata, status: 'active' });
    expect(res.status).toBe(201);
    connectionId = res.body.id;
    expect(res.body.sp).toEqual({
      entity_id: `https://gatehouse.test/saml/${connectionId}`,
      acs_url: `https://gatehouse.test/saml/${connectionId}/acs`,
      metadata_url: `https://gatehouse.test/saml/${connectionId}/metadata`,
      slo_url: `https://gatehouse.test/saml/${connectionId}/slo`,
    });
    expect(res.body.saml.certificates.length).toBeGreaterThanOrEqual(1);
  });

  it('3b. serves the SP metadata document the IdP admin imports', async () => {
    const res = await request(a.app).get(`/saml/${connectionId}/metadata`);
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/samlmetadata\+xml/);
    expect(res.text).toContain(`entityID="https://gatehouse.test/saml/${connectionId}"`);
  });

  it('4. maps the IdP group to a role', async () => {
    const res = await op()
      .post(`/admin/v1/tenants/${tenantId}/role-mappings`)
      .send({ group: { display_name: 'Gatehouse Admins' }, role: 'admin' });
    expect(res.status).toBe(201);
  });

  it('5. issues the SCIM token for the IdP', async () => {
    const res = await op()
      .post(`/admin/v1/tenants/${tenantId}/scim-tokens`)
      .send({ description: 'Okta provisioning' });
    expect(res.status).toBe(201);
    expect(res.body.token).toMatch(/^gh_scim_/);
    expect(res.body.scim_base_url).toBe(`https://gatehouse.test/scim/v2/${tenantId}`);
  });

  it('5a. registers the main app as an OAuth client (platform level, its own trail)', async () => {
    const res = await op()
      .post('/admin/v1/apps')
      .send({ name: 'Main app', redirect_uris: ['https://app.example.com/callback'] });
    expect(res.status).toBe(201);
    expect(res.body.client_secret).toMatch(/^gh_secret_/);
  });

  it("6. the tenant's audit trail holds every step and its chain verifies", async () => {
    const trail = await op().get(`/admin/v1/tenants/${tenantId}/audit-events?order=asc`);
    expect(trail.body.data.map((e: { action: string }) => e.action)).toEqual([
      'tenant.created',
      'domain.added',
      'domain.verified',
      'connection.created',
      // The connection's own SP keys, made when its SP metadata was first read (issue 16).
      'connection.sp_keys_created',
      'role_mapping.created',
      'scim_token.created',
    ]);
    const chain = await op().get(`/admin/v1/tenants/${tenantId}/audit-events/verify`);
    expect(chain.body).toMatchObject({ valid: true, checked: 7, first_broken_seq: null });
  });
});
