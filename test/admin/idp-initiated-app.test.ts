import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { buildAdminTestApp, type AdminTestApp } from '../support/admin.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';

/**
 * The admin side of OIDC Core §4 third-party initiated login: an app's
 * initiate_login_uri, and the app a SAML connection's IdP-initiated logins
 * land in (idp_initiated_app_id). The login itself is in
 * test/sso/idp-initiated.test.ts.
 */
const okta = readFileSync('fixtures/saml/metadata/okta.xml', 'utf8');
const START = 'https://app.example.com/login/start';

let t: TestDatabase;
let a: AdminTestApp;
let acmeId: string;
let globexId: string;

async function createApp(body: Record<string, unknown> = {}): Promise<string> {
  const res = await a
    .op()
    .post('/admin/v1/apps')
    .send({ name: 'Main app', redirect_uris: ['https://app.example.com/callback'], ...body });
  expect(res.status).toBe(201);
  return res.body.client_id;
}

async function createSamlConnection(tenantId: string, body: Record<string, unknown> = {}) {
  return a
    .op()
    .post(`/admin/v1/tenants/${tenantId}/connections`)
    .send({ type: 'saml', name: 'Okta', metadata_xml: okta, ...body });
}

beforeAll(async () => {
  t = await createTestDatabase();
  a = buildAdminTestApp(t);
  acmeId = await a.createTenant('acme', 'Acme');
  globexId = await a.createTenant('globex', 'Globex');
});
afterAll(async () => {
  await t.close();
});

describe('admin API: apps register an initiate_login_uri', () => {
  it('stores it on create, changes and clears it on update', async () => {
    const id = await createApp({ initiate_login_uri: START });
    expect((await a.op().get(`/admin/v1/apps/${id}`)).body.initiate_login_uri).toBe(START);
    const changed = await a
      .op()
      .patch(`/admin/v1/apps/${id}`)
      .send({ initiate_login_uri: 'https://app.example.com/v2/start' });
    expect(changed.status).toBe(200);
    expect(changed.body.initiate_login_uri).toBe('https://app.example.com/v2/start');
    const cleared = await a.op().patch(`/admin/v1/apps/${id}`).send({ initiate_login_uri: null });
    expect(cleared.body.initiate_login_uri).toBeNull();
  });

  it.each([
    ['plain http off loopback', 'http://app.example.com/start'],
    ['a relative URI', '/login/start'],
    ['a fragment', 'https://app.example.com/start#x'],
    ['credentials', 'https://user:pw@app.example.com/start'],
  ])('refuses %s with 400', async (_what, uri) => {
    const res = await a
      .op()
      .post('/admin/v1/apps')
      .send({ name: 'Bad', redirect_uris: ['https://app.example.com/callback'], initiate_login_uri: uri });
    expect(res.status).toBe(400);
    expect(res.body.code).toBe('bad_request');
  });
});

describe('admin API: a SAML connection names the app IdP-initiated logins land in', () => {
  it('accepts a live app with an initiate_login_uri on create and update, and null clears it', async () => {
    const appId = await createApp({ initiate_login_uri: START });
    const created = await createSamlConnection(acmeId, {
      allow_idp_initiated: true,
      idp_initiated_app_id: appId,
    });
    expect(created.status).toBe(201);
    expect(created.body.saml.idp_initiated_app_id).toBe(appId);

    const url = `/admin/v1/tenants/${acmeId}/connections/${created.body.id}`;
    const cleared = await a.op().patch(url).send({ idp_initiated_app_id: null });
    expect(cleared.status).toBe(200);
    expect(cleared.body.saml.idp_initiated_app_id).toBeNull();
    const set = await a.op().patch(url).send({ idp_initiated_app_id: appId });
    expect(set.body.saml.idp_initiated_app_id).toBe(appId);
    const audited = await t.db.withTenant(acmeId, (em) =>
      em.query(
        `SELECT after FROM audit_events WHERE action = 'connection.updated' ORDER BY seq DESC LIMIT 1`,
      ),
    );
    expect(audited[0].after.saml.idp_initiated_app_id).toBe(appId);
  });

  it('lets a tenant admin name a platform app for their own connection (apps are platform-level)', async () => {
    const appId = await createApp({ initiate_login_uri: START });
    const created = await createSamlConnection(globexId);
    const res = await a
      .tenantAdmin(globexId, randomUUID())
      .patch(`/admin/v1/tenants/${globexId}/connections/${created.body.id}`)
      .send({ idp_initiated_app_id: appId });
    expect(res.status).toBe(200);
    expect(res.body.saml.idp_initiated_app_id).toBe(appId);
  });

  it('answers 404 to an admin of another tenant, and changes nothing', async () => {
    const appId = await createApp({ initiate_login_uri: START });
    const created = await createSamlConnection(acmeId);
    const res = await a
      .tenantAdmin(globexId, randomUUID())
      .patch(`/admin/v1/tenants/${acmeId}/connections/${created.body.id}`)
      .send({ idp_initiated_app_id: appId });
    expect(res.status).toBe(404);
    const viaOwnTenant = await a
      .tenantAdmin(globexId, randomUUID())
      .patch(`/admin/v1/tenants/${globexId}/connections/${created.body.id}`)
      .send({ idp_initiated_app_id: appId });
    expect(viaOwnTenant.status).toBe(404);
    const row = await a.op().get(`/admin/v1/tenants/${acmeId}/connections/${created.body.id}`);
    expect(row.body.saml.idp_initiated_app_id).toBeNull();
  });

  it('refuses (400, nothing written) an unknown app, a deleted app and an app without initiate_login_uri', async () => {
    const deleted = await createApp({ initiate_login_uri: START });
    expect((await a.op().delete(`/admin/v1/apps/${deleted}`)).status).toBe(204);
    const withoutUri = await createApp();
    const created = await createSamlConnection(acmeId);
    const url = `/admin/v1/tenants/${acmeId}/connections/${created.body.id}`;
    for (const appId of [randomUUID(), deleted, withoutUri]) {
      const patched = await a.op().patch(url).send({ idp_initiated_app_id: appId });
      expect(patched.status).toBe(400);
      expect(patched.body.message).toMatch(/idp_initiated_app_id/);
      const posted = await createSamlConnection(acmeId, { idp_initiated_app_id: appId });
      expect(posted.status).toBe(400);
    }
    expect((await a.op().patch(url).send({ idp_initiated_app_id: 'not-a-uuid' })).status).toBe(400);
    expect((await a.op().get(url)).body.saml.idp_initiated_app_id).toBeNull();
  });

  it('refuses it on an OIDC connection (IdP-initiated login is SAML only)', async () => {
    const appId = await createApp({ initiate_login_uri: START });
    const id = randomUUID();
    await t.db.withTenant(acmeId, (em) =>
      em.query(
        `INSERT INTO connections (tenant_id, id, type, name, status, oidc_issuer, oidc_client_id)
         VALUES ($1, $2, 'oidc', 'OP', 'draft', 'https://op.example.com', 'client')`,
        [acmeId, id],
      ),
    );
    const res = await a
      .op()
      .patch(`/admin/v1/tenants/${acmeId}/connections/${id}`)
      .send({ idp_initiated_app_id: appId });
    expect(res.status).toBe(400);
    expect(res.body.message).toMatch(/not a field of oidc connections/);
  });
});
