import { readFileSync } from 'node:fs';
import { buildAdminTestApp, type AdminTestApp } from '../support/admin.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';

/** A second connection to the same IdP entity id needs `force` (issue 14). */
const okta = readFileSync('fixtures/saml/metadata/okta.xml', 'utf8');
const entra = readFileSync('fixtures/saml/metadata/entra.xml', 'utf8');
const OKTA_ENTITY_ID = 'http://www.okta.com/exk1fcia6d6EMsf331d8';

let t: TestDatabase;
let a: AdminTestApp;
let acmeId: string;
let globexId: string;

beforeAll(async () => {
  t = await createTestDatabase();
  a = buildAdminTestApp(t);
  acmeId = await a.createTenant('acme', 'Acme');
  globexId = await a.createTenant('globex', 'Globex');
});
afterAll(() => t.close());

const connectionsOf = (tenantId: string) => `/admin/v1/tenants/${tenantId}/connections`;
const rows = (tenantId: string) =>
  t.db.withTenant(tenantId, (em) =>
    em.query<{ id: string; status: string }[]>('SELECT id, status FROM connections ORDER BY created_at, id'),
  );
const auditCount = async (tenantId: string) =>
  Number(
    (
      await t.db.withTenant(tenantId, (em) =>
        em.query<{ n: string }[]>('SELECT count(*) AS n FROM audit_events'),
      )
    )[0]?.n,
  );

describe('admin API: a connection whose IdP entity id an active connection already uses', () => {
  let activeId: string;

  it('is refused with 409 idp_entity_id_in_use naming the existing connection, and nothing is stored', async () => {
    const first = await a
      .op()
      .post(connectionsOf(acmeId))
      .send({ type: 'saml', name: 'Okta', metadata_xml: okta, status: 'active' });
    expect(first.status).toBe(201);
    activeId = first.body.id;
    const before = { rows: await rows(acmeId), audit: await auditCount(acmeId) };

    for (const status of ['active', 'draft'] as const) {
      const again = await a
        .op()
        .post(connectionsOf(acmeId))
        .send({ type: 'saml', name: 'Okta again', metadata_xml: okta, status });
      expect(again.status).toBe(409);
      expect(again.body.code).toBe('idp_entity_id_in_use');
      expect(again.body.message).toContain(activeId);
      expect(again.body.message).toContain(OKTA_ENTITY_ID);
      expect(again.body.message).toMatch(/force: true \(CLI: --force\)/);
    }
    // The tenant's own admin gets the same answer.
    const byAdmin = await a
      .tenantAdmin(acmeId, 'u-acme-admin')
      .post(connectionsOf(acmeId))
      .send({ type: 'saml', name: 'Okta again', metadata_xml: okta });
    expect(byAdmin.status).toBe(409);
    expect({ rows: await rows(acmeId), audit: await auditCount(acmeId) }).toEqual(before);
  });

  it('is created with force: true', async () => {
    const forced = await a
      .op()
      .post(connectionsOf(acmeId))
      .send({ type: 'saml', name: 'Okta (new)', metadata_xml: okta, force: true });
    expect(forced.status).toBe(201);
    expect(forced.body.saml.idp_entity_id).toBe(OKTA_ENTITY_ID);
    expect(forced.body).not.toHaveProperty('force');
  });

  it('is not refused when the connection using it is inactive, nor for another entity id', async () => {
    const other = await a
      .op()
      .post(connectionsOf(acmeId))
      .send({ type: 'saml', name: 'Entra', metadata_xml: entra, status: 'active' });
    expect(other.status).toBe(201);
    expect(
      (
        await a
          .op()
          .patch(`${connectionsOf(acmeId)}/${other.body.id}`)
          .send({ status: 'inactive' })
      ).status,
    ).toBe(200);
    const again = await a
      .op()
      .post(connectionsOf(acmeId))
      .send({ type: 'saml', name: 'Entra again', metadata_xml: entra });
    expect(again.status).toBe(201);
  });

  it("does not count another tenant's active connection with the same entity id", async () => {
    const res = await a
      .op()
      .post(connectionsOf(globexId))
      .send({ type: 'saml', name: 'Okta', metadata_xml: okta, status: 'active' });
    expect(res.status).toBe(201);
    // …and tenant A's admin learns nothing of B's connections through the check.
    const fromA = await a
      .tenantAdmin(acmeId, 'u-acme-admin')
      .post(connectionsOf(acmeId))
      .send({ type: 'saml', name: 'x', metadata_xml: okta });
    expect(fromA.status).toBe(409);
    expect(fromA.body.message).not.toContain(res.body.id);
  });

  it('refuses a force that is not a boolean', async () => {
    const res = await a
      .op()
      .post(connectionsOf(acmeId))
      .send({ type: 'saml', name: 'x', metadata_xml: okta, force: 'yes' });
    expect(res.status).toBe(400);
    expect(res.body.code).toBe('bad_request');
  });
});
