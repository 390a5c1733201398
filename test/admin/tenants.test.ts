import request from 'supertest';
import { verifyAuditChain } from '../../src/audit/audit.service.js';
import { buildAdminTestApp, type AdminTestApp } from '../support/admin.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';

let t: TestDatabase;
let a: AdminTestApp;
let acmeId: string;
let globexId: string;

beforeAll(async () => {
  t = await createTestDatabase();
  a = buildAdminTestApp(t, { GATEHOUSE_ADMIN_AUTH_FAILURE_LIMIT: '5' });
  acmeId = await a.createTenant('acme', 'Acme Inc');
  globexId = await a.createTenant('globex', 'Globex');
});
afterAll(() => t.close());

const op = () => a.op();
const acmeAdmin = () => a.tenantAdmin(acmeId, 'u-acme-admin');

describe('admin API: tenants', () => {
  it('creates, reads, lists and updates tenants', async () => {
    const got = await op().get(`/admin/v1/tenants/${acmeId}`);
    expect(got.status).toBe(200);
    expect(got.body).toMatchObject({ id: acmeId, slug: 'acme', name: 'Acme Inc', status: 'active' });

    const list = await op().get('/admin/v1/tenants?limit=1');
    expect(list.body).toMatchObject({ total: 2, limit: 1, offset: 0 });
    expect(list.body.data).toHaveLength(1);

    const renamed = await op().patch(`/admin/v1/tenants/${acmeId}`).send({ name: 'Acme Corporation' });
    expect(renamed.body.name).toBe('Acme Corporation');
  });

  it('answers a duplicate slug with 409 and stores nothing', async () => {
    const res = await op().post('/admin/v1/tenants').send({ slug: 'acme', name: 'Other' });
    expect(res.status).toBe(409);
    expect(res.body.code).toBe('conflict');
    expect((await op().get('/admin/v1/tenants')).body.total).toBe(2);
  });

  it('refuses malformed JSON, unknown fields and invalid values with 400', async () => {
    const malformed = await op()
      .post('/admin/v1/tenants')
      .set('Content-Type', 'application/json')
      .send('{"slug":');
    expect(malformed.status).toBe(400);
    const unknown = await op().post('/admin/v1/tenants').send({ slug: 'x1', name: 'X', plan: 'gold' });
    expect(unknown.status).toBe(400);
    expect(unknown.body.message).toMatch(/unknown field\(s\): plan/);
    const invalid = await op().post('/admin/v1/tenants').send({ slug: 'Not A Slug', name: 'X' });
    expect(invalid.status).toBe(400);
    expect(invalid.body.message).toMatch(/^slug:/);
  });

  it('suspends and reactivates', async () => {
    expect((await op().post(`/admin/v1/tenants/${globexId}/suspend`)).body.status).toBe('suspended');
    expect((await op().post(`/admin/v1/tenants/${globexId}/reactivate`)).body.status).toBe('active');
  });

  it('lets a tenant admin reach their own tenant and answers 404 for another', async () => {
    const own = await acmeAdmin().get(`/admin/v1/tenants/${acmeId}`);
    expect(own.status).toBe(200);
    const other = await acmeAdmin().get(`/admin/v1/tenants/${globexId}`);
    expect(other.status).toBe(404);
    expect(other.body.code).toBe('not_found');
    const rename = await acmeAdmin().patch(`/admin/v1/tenants/${globexId}`).send({ name: 'pwned' });
    expect(rename.status).toBe(404);
    expect((await op().get(`/admin/v1/tenants/${globexId}`)).body.name).toBe('Globex');
    const list = await acmeAdmin().get('/admin/v1/tenants');
    expect(list.status).toBe(403);
  });

  it('answers 404 for ids that are not UUIDs or do not exist', async () => {
    expect((await op().get('/admin/v1/tenants/not-a-uuid')).status).toBe(404);
    expect((await op().get('/admin/v1/tenants/00000000-0000-4000-8000-000000000000')).status).toBe(404);
  });

  it('soft-deletes a tenant: gone from reads, data kept (unreachable) until the purge, trail intact', async () => {
    const id = (await op().post('/admin/v1/tenants').send({ slug: 'initech', name: 'Initech' })).body.id;
    await t.db.withTenant(id, (em) =>
      em.query(`INSERT INTO users (tenant_id, user_name) VALUES ($1, 'p@initech.com')`, [id]),
    );
    expect((await op().delete(`/admin/v1/tenants/${id}`)).status).toBe(204);
    expect((await op().get(`/admin/v1/tenants/${id}`)).status).toBe(404);
    // Issue 12: kept for GATEHOUSE_TENANT_RETENTION, then purged (test/offboarding/deletion.security.test.ts).
    expect(await t.db.withTenant(id, (em) => em.query('SELECT * FROM users'))).toHaveLength(1);
    const actions = await t.db.withTenant(id, (em) =>
      em.query('SELECT action FROM audit_events ORDER BY seq'),
    );
    expect(actions.map((r: { action: string }) => r.action)).toEqual(['tenant.created', 'tenant.deleted']);
    expect(await verifyAuditChain(t.db, id)).toMatchObject({ valid: true, checked: 2 });
  });

  it('audits every change with actor, request id and before/after', async () => {
    const rows = await t.db.withTenant(acmeId, (em) =>
      em.query(
        'SELECT action, actor_type, actor_id, request_id, before, after FROM audit_events ORDER BY seq',
      ),
    );
    expect(rows.map((r: { action: string }) => r.action)).toEqual(['tenant.created', 'tenant.updated']);
    expect(rows[1]).toMatchObject({
      actor_type: 'operator',
      before: expect.objectContaining({ name: 'Acme Inc' }),
      after: expect.objectContaining({ name: 'Acme Corporation' }),
    });
    expect(rows[1].request_id).toMatch(/^[0-9a-f-]{36}$/);
  });
});

describe('admin API: authentication', () => {
  it('answers a missing or wrong token with 401 and WWW-Authenticate', async () => {
    const missing = await request(a.app).get('/admin/v1/tenants');
    expect(missing.status).toBe(401);
    expect(missing.headers['www-authenticate']).toMatch(/^Bearer realm="gatehouse-admin"/);
    const wrong = await request(a.app).get('/admin/v1/tenants').set('Authorization', 'Bearer nope');
    expect(wrong.status).toBe(401);
    expect(wrong.body.code).toBe('unauthorized');
  });

  it('rate-limits repeated bad tokens with 429 and Retry-After', async () => {
    const fresh = buildAdminTestApp(t, { GATEHOUSE_ADMIN_AUTH_FAILURE_LIMIT: '3' });
    // Counters are shared by every node (issue 11), so earlier tests' failures count here: start from none.
    await t.asOwner(`DELETE FROM rate_limit_counters WHERE limiter = 'admin-auth'`);
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) {
      statuses.push(
        (await request(fresh.app).get('/admin/v1/tenants').set('Authorization', `Bearer bad-${i}`)).status,
      );
    }
    expect(statuses).toEqual([401, 401, 401, 429, 429]);
    const limited = await request(fresh.app).get('/admin/v1/tenants').set('Authorization', 'Bearer bad');
    expect(limited.headers['retry-after']).toMatch(/^\d+$/);
    expect(limited.body.code).toBe('rate_limited');
  });
});
