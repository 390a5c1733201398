import { buildAdminTestApp, type AdminTestApp } from '../support/admin.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { tenantSnapshot } from '../support/tenant-admin-token.js';
import { binary, exportArchive, produceExports } from './export-support.js';

/**
 * Tenant exports across tenants (issue 8's rule, issue 12's routes): tenant
 * B's admin reaches none of tenant A's exports — not by A's path, not by A's
 * export id under B's own path — and a tenant admin cannot import. Every
 * refusal leaves A's rows as they were (tenantSnapshot: every tenant table).
 */

let t: TestDatabase;
let a: AdminTestApp;
let tenantA: string;
let tenantB: string;
let exportA: string;
const adminA = () => a.tenantAdmin(tenantA, '00000000-0000-4000-8000-00000000000a');
const adminB = () => a.tenantAdmin(tenantB, '00000000-0000-4000-8000-00000000000b');

beforeAll(async () => {
  t = await createTestDatabase();
  a = buildAdminTestApp(t);
  tenantA = await a.createTenant('export-a', 'A');
  tenantB = await a.createTenant('export-b', 'B');
  const requested = await a.op().post(`/admin/v1/tenants/${tenantA}/exports`).send({});
  expect(requested.status).toBe(202);
  exportA = requested.body.id as string;
  expect(await produceExports(t, a)).toBe(1);
});
afterAll(() => t.close());

describe('tenant exports across tenants', () => {
  it("refuses tenant B's admin creating, reading or downloading tenant A's export with 404, changing nothing of A", async () => {
    const before = await tenantSnapshot(t, tenantA);
    expect((before.tenant_exports as unknown[]).length).toBe(1);
    const base = `/admin/v1/tenants/${tenantA}/exports`;
    for (const res of [
      await adminB().post(base).send({}),
      await adminB().get(`${base}/${exportA}`),
      await adminB().get(`${base}/${exportA}/download`),
    ]) {
      expect(res.status).toBe(404);
      expect(res.body).toMatchObject({ code: 'not_found' });
      expect(res.text).not.toContain(exportA);
    }
    expect(await tenantSnapshot(t, tenantA)).toEqual(before);
    // Control: A's own admin reads it.
    expect((await adminA().get(`${base}/${exportA}`)).body).toMatchObject({ id: exportA, status: 'ready' });
  });

  it("answers 404 for A's export id under B's own path, and A's export stays ready", async () => {
    const before = await tenantSnapshot(t, tenantA);
    const base = `/admin/v1/tenants/${tenantB}/exports/${exportA}`;
    for (const agent of [adminB, a.op]) {
      for (const res of [await agent().get(base), await agent().get(`${base}/download`)]) {
        expect(res.status).toBe(404);
        expect(res.body).toMatchObject({ code: 'not_found' });
      }
    }
    expect(await tenantSnapshot(t, tenantA)).toEqual(before);
    // Still downloadable once by A: nothing above consumed it.
    const res = await adminA()
      .get(`/admin/v1/tenants/${tenantA}/exports/${exportA}/download`)
      .buffer(true)
      .parse(binary);
    expect(res.status).toBe(200);
  });

  it('refuses an import by a tenant admin with 403, writing nothing', async () => {
    const gzip = await exportArchive(t, a, tenantB);
    const platform = () =>
      t.db.withPlatform((em) => em.query('SELECT id, slug, status FROM tenants ORDER BY id'));
    const before = {
      a: await tenantSnapshot(t, tenantA),
      b: await tenantSnapshot(t, tenantB),
      p: await platform(),
    };
    for (const agent of [adminA, adminB]) {
      const res = await agent()
        .post('/admin/v1/tenant-imports')
        .set('Content-Type', 'application/gzip')
        .send(gzip);
      expect(res.status).toBe(403);
      expect(res.body).toMatchObject({ code: 'forbidden' });
    }
    expect({
      a: await tenantSnapshot(t, tenantA),
      b: await tenantSnapshot(t, tenantB),
      p: await platform(),
    }).toEqual(before);
  });
});
