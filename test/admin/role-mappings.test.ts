import { rolesForUser } from '../../src/directory/roles.service.js';
import { buildAdminTestApp, type AdminTestApp } from '../support/admin.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { createUser } from '../support/factories.js';

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

const op = () => a.op();
const acmeAdmin = () => a.tenantAdmin(acmeId, 'u-acme-admin');
const mappings = (tenantId: string) => `/admin/v1/tenants/${tenantId}/role-mappings`;

async function count(tenantId: string): Promise<number> {
  const rows = await t.db.withTenant(tenantId, (em) =>
    em.query('SELECT count(*)::int AS n FROM role_mappings'),
  );
  return rows[0].n;
}

describe('admin API: role mappings', () => {
  it('maps a group by display name and one by external id, lists and reads them', async () => {
    const byName = await op()
      .post(mappings(acmeId))
      .send({ group: { display_name: 'Engineering' }, role: 'admin' });
    expect(byName.status).toBe(201);
    expect(byName.body).toMatchObject({ group: { display_name: 'Engineering' }, role: 'admin' });
    expect(byName.body.id).toMatch(/^[0-9a-f-]{36}$/);
    const byId = await op()
      .post(mappings(acmeId))
      .send({ group: { external_id: '00gabc123' }, role: 'billing:viewer' });
    expect(byId.status).toBe(201);
    expect(byId.body.group).toEqual({ external_id: '00gabc123' });

    const list = await op().get(mappings(acmeId));
    expect(list.body).toMatchObject({ total: 2, limit: 25, offset: 0 });
    expect(list.body.data).toEqual([byName.body, byId.body]);
    expect((await op().get(`${mappings(acmeId)}/${byId.body.id}`)).body).toEqual(byId.body);
  });

  it('turns group membership into roles for users of the tenant', async () => {
    const userId = await createUser(t.db, acmeId, 'ada@acme.com');
    await t.db.withTenant(acmeId, async (em) => {
      const [g] = await em.query(
        `INSERT INTO groups (tenant_id, display_name) VALUES ($1, 'engineering') RETURNING id`,
        [acmeId],
      );
      await em.query('INSERT INTO group_members (tenant_id, group_id, user_id) VALUES ($1, $2, $3)', [
        acmeId,
        g.id,
        userId,
      ]);
    });
    expect(await t.db.withTenant(acmeId, (em) => rolesForUser(em, userId, 'member'))).toEqual(['admin']);
  });

  it('refuses a duplicate (display names compare case-insensitively) with 409', async () => {
    const before = await count(acmeId);
    for (const group of [
      { display_name: 'Engineering' },
      { display_name: 'ENGINEERING' },
      { external_id: '00gabc123' },
    ]) {
      const role = 'display_name' in group ? 'admin' : 'billing:viewer';
      const res = await op().post(mappings(acmeId)).send({ group, role });
      expect(res.status).toBe(409);
      expect(res.body.code).toBe('conflict');
    }
    expect(await count(acmeId)).toBe(before);
    // Same group, another role: a new mapping.
    expect(
      (
        await op()
          .post(mappings(acmeId))
          .send({ group: { display_name: 'Engineering' }, role: 'member' })
      ).status,
    ).toBe(201);
  });

  it.each([
    [{ group: { display_name: 'Eng' }, role: 'Admin' }, /^role:/],
    [{ group: { display_name: 'Eng' }, role: '1admin' }, /^role:/],
    [{ group: { display_name: 'Eng' }, role: `r${'x'.repeat(64)}` }, /^role:/],
    [{ group: { display_name: 'Eng' }, role: 'has space' }, /^role:/],
    [{ group: { display_name: '' }, role: 'admin' }, /^group/],
    [{ group: { display_name: 'Eng', external_id: 'x' }, role: 'admin' }, /^group:/],
    [{ group: { name: 'Eng' }, role: 'admin' }, /^group:/],
    [{ group: 'Eng', role: 'admin' }, /^group:/],
    [{ role: 'admin' }, /^group:/],
    [{ group: { display_name: 'Eng' }, role: 'admin', priority: 1 }, /unknown field\(s\): priority/],
  ])('refuses %j with 400 and stores nothing', async (body, message) => {
    const before = await count(acmeId);
    const res = await op().post(mappings(acmeId)).send(body);
    expect(res.status).toBe(400);
    expect(res.body.message).toMatch(message);
    expect(await count(acmeId)).toBe(before);
  });

  it('deletes a mapping, with created and deleted audit events', async () => {
    const created = await op()
      .post(mappings(acmeId))
      .send({ group: { external_id: 'tmp' }, role: 'viewer' });
    expect((await op().delete(`${mappings(acmeId)}/${created.body.id}`)).status).toBe(204);
    expect((await op().get(`${mappings(acmeId)}/${created.body.id}`)).status).toBe(404);
    const events = await t.db.withTenant(acmeId, (em) =>
      em.query('SELECT action, before, after FROM audit_events WHERE target_id = $1 ORDER BY seq', [
        created.body.id,
      ]),
    );
    expect(events).toEqual([
      {
        action: 'role_mapping.created',
        before: null,
        after: { group: { external_id: 'tmp' }, role: 'viewer' },
      },
      {
        action: 'role_mapping.deleted',
        before: { group: { external_id: 'tmp' }, role: 'viewer' },
        after: null,
      },
    ]);
  });

  it("answers 404 for another tenant's mapping id under this tenant's path", async () => {
    const acmeMapping = (await op().get(mappings(acmeId))).body.data[0];
    expect((await op().get(`${mappings(globexId)}/${acmeMapping.id}`)).status).toBe(404);
    expect((await op().delete(`${mappings(globexId)}/${acmeMapping.id}`)).status).toBe(404);
    expect((await op().get(`${mappings(acmeId)}/${acmeMapping.id}`)).status).toBe(200);
    expect((await op().get(`${mappings(acmeId)}/not-a-uuid`)).status).toBe(404);
  });

  it("answers 404 to a tenant admin of Acme on Globex's mappings, and lets them manage Acme's", async () => {
    const globexMapping = await op()
      .post(mappings(globexId))
      .send({ group: { display_name: 'Ops' }, role: 'admin' });
    const before = await count(globexId);
    expect((await acmeAdmin().get(mappings(globexId))).status).toBe(404);
    expect(
      (
        await acmeAdmin()
          .post(mappings(globexId))
          .send({ group: { display_name: 'X' }, role: 'admin' })
      ).status,
    ).toBe(404);
    expect((await acmeAdmin().get(`${mappings(globexId)}/${globexMapping.body.id}`)).status).toBe(404);
    expect((await acmeAdmin().delete(`${mappings(globexId)}/${globexMapping.body.id}`)).status).toBe(404);
    expect(await count(globexId)).toBe(before);
    expect((await acmeAdmin().get(mappings(acmeId))).status).toBe(200);
  });
});
