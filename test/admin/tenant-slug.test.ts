import fc from 'fast-check';
import { buildAdminTestApp, type AdminTestApp } from '../support/admin.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';

/** Tenants addressed by slug as well as id (issue 14), and `GET /tenants?slug=`. */
let t: TestDatabase;
let a: AdminTestApp;
let acmeId: string;
let globexId: string;

beforeAll(async () => {
  t = await createTestDatabase();
  a = buildAdminTestApp(t);
  acmeId = await a.createTenant('acme', 'Acme Inc');
  globexId = await a.createTenant('globex', 'Globex');
});
afterAll(() => t.close());

const op = () => a.op();
const acmeAdmin = () => a.tenantAdmin(acmeId, 'u-acme-admin');
const tenantRows = () =>
  t.asOwner<{ id: string; slug: string; name: string; status: string }>(
    'SELECT id, slug, name, status FROM tenants ORDER BY id',
  );

describe('admin API: a tenant by slug', () => {
  it('reads, renames, suspends and reactivates a tenant addressed by its slug, as by its id', async () => {
    const bySlug = await op().get('/admin/v1/tenants/acme');
    expect(bySlug.status).toBe(200);
    expect(bySlug.body).toEqual((await op().get(`/admin/v1/tenants/${acmeId}`)).body);
    expect((await op().get('/admin/v1/tenants/ACME')).body.id).toBe(acmeId);

    const renamed = await op().patch('/admin/v1/tenants/acme').send({ name: 'Acme Corporation' });
    expect(renamed.body).toMatchObject({ id: acmeId, name: 'Acme Corporation' });
    expect((await op().post('/admin/v1/tenants/acme/suspend')).body.status).toBe('suspended');
    expect((await op().post('/admin/v1/tenants/acme/reactivate')).body.status).toBe('active');
  });

  it('answers 404 for an unknown slug and for a value that is neither an id nor a slug', async () => {
    for (const ref of ['nobody', 'a', '-acme', 'acme_inc', '%00']) {
      const res = await op().get(`/admin/v1/tenants/${ref}`);
      expect(res.status).toBe(404);
      expect(res.body).toMatchObject({ code: 'not_found', message: 'Tenant not found' });
    }
  });

  it("answers tenant A's admin naming tenant B's slug with the 404 of an unknown tenant, changing nothing of B", async () => {
    const before = await tenantRows();
    const unknown = await acmeAdmin().get('/admin/v1/tenants/nobody');
    for (const res of [
      await acmeAdmin().get('/admin/v1/tenants/globex'),
      await acmeAdmin().patch('/admin/v1/tenants/globex').send({ name: 'Owned' }),
      await acmeAdmin().post('/admin/v1/tenants/globex/suspend'),
      await acmeAdmin().delete('/admin/v1/tenants/globex'),
    ]) {
      expect(res.status).toBe(404);
      expect(res.body).toMatchObject({ code: unknown.body.code, message: unknown.body.message });
      expect(JSON.stringify(res.body)).not.toContain(globexId);
    }
    expect(await tenantRows()).toEqual(before);
    // Their own tenant by slug works.
    expect((await acmeAdmin().get('/admin/v1/tenants/acme')).body.id).toBe(acmeId);
  });
});

describe('admin API: GET /tenants?slug=', () => {
  it('filters the list to the tenant with that slug, or none', async () => {
    const one = await op().get('/admin/v1/tenants?slug=globex');
    expect(one.status).toBe(200);
    expect(one.body).toMatchObject({ total: 1, limit: 25, offset: 0, data: [{ id: globexId }] });
    const none = await op().get('/admin/v1/tenants?slug=nobody');
    expect(none.body).toMatchObject({ total: 0, data: [] });
  });

  it('refuses a malformed slug filter with 400 instead of ignoring it', async () => {
    for (const q of ['slug=Not%20A%20Slug', 'slug=a&slug=b', 'slug=']) {
      const res = await op().get(`/admin/v1/tenants?${q}`);
      expect(res.status).toBe(400);
      expect(res.body.code).toBe('bad_request');
    }
  });

  it('never 5xx and never names another tenant than the one the slug filter asked for (property)', async () => {
    const runs = Number(process.env.GATEHOUSE_FUZZ_RUNS ?? 40);
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(fc.string({ maxLength: 70 }), fc.constantFrom('acme', 'globex', 'ACME', acmeId)),
        async (value) => {
          const res = await op().get('/admin/v1/tenants').query({ slug: value });
          expect(res.status).toBeLessThan(500);
          if (res.status === 200) {
            for (const tenant of res.body.data as { slug: string }[]) expect(tenant.slug).toBe(value);
          }
          const byRef = await acmeAdmin().get(`/admin/v1/tenants/${encodeURIComponent(value)}`);
          expect(byRef.status).toBeLessThan(500);
          // A tenant admin reaches their own tenant only, whatever they name.
          if (byRef.status === 200) expect(byRef.body.id).toBe(acmeId);
        },
      ),
      { seed: Number(process.env.GATEHOUSE_FUZZ_SEED ?? 14), numRuns: runs },
    );
  });
});
