import { createTestDatabase, type TestDatabase } from '../support/database.js';

let t: TestDatabase;
beforeAll(async () => {
  t = await createTestDatabase();
});
afterAll(() => t.close());

interface TableSecurity {
  table: string;
  rls: boolean;
  forced: boolean;
  policies: string[];
}

describe('schema guard', () => {
  it('has row-level security enabled, forced and with a tenant policy on every table with tenant_id', async () => {
    const tables = await t.asOwner<TableSecurity>(`
      SELECT c.relname AS table, c.relrowsecurity AS rls, c.relforcerowsecurity AS forced,
             COALESCE(array_agg(p.polname::text) FILTER (WHERE p.polname IS NOT NULL), '{}') AS policies
        FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public'
        JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped
        LEFT JOIN pg_policy p ON p.polrelid = c.oid
       WHERE c.relkind IN ('r', 'p')
       GROUP BY c.relname, c.relrowsecurity, c.relforcerowsecurity
       ORDER BY c.relname`);
    expect(tables.length).toBeGreaterThanOrEqual(10);
    const unprotected = tables.filter((s) => !s.rls || !s.forced || !s.policies.includes('tenant_isolation'));
    expect(unprotected).toEqual([]);
  });

  it('has every tenant policy compare tenant_id with the transaction tenant', async () => {
    const policies = await t.asOwner<{ table: string; using: string; check: string | null }>(`
      SELECT c.relname AS table, pg_get_expr(p.polqual, p.polrelid) AS using,
             pg_get_expr(p.polwithcheck, p.polrelid) AS check
        FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid
       WHERE p.polname = 'tenant_isolation'`);
    for (const p of policies) {
      expect(p.using).toBe('(tenant_id = app_current_tenant())');
      expect(p.check).toBe('(tenant_id = app_current_tenant())');
    }
  });

  it('leads every unique key and index of a tenant table with tenant_id, bar the documented resolver lookups', async () => {
    const indexes = await t.asOwner<{ index: string; first: string }>(`
      SELECT i.relname AS index, a.attname AS first
        FROM pg_index x
        JOIN pg_class c ON c.oid = x.indrelid
        JOIN pg_class i ON i.oid = x.indexrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public'
        LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = x.indkey[0]
       WHERE EXISTS (SELECT 1 FROM pg_attribute t WHERE t.attrelid = c.oid AND t.attname = 'tenant_id')`);
    const offenders = indexes.filter((i) => i.first !== 'tenant_id').map((i) => i.index);
    // The resolvers' id lookups (non-unique since 1765600000000: test/db/distributable-schema.test.ts).
    expect(offenders.sort()).toEqual(['connections_id_idx', 'sessions_id_idx']);
  });

  it('runs the service as a role that cannot bypass RLS and owns no table', async () => {
    const [role] = await t.asApp<{ rolbypassrls: boolean; rolsuper: boolean; user: string }>(
      'SELECT r.rolbypassrls, r.rolsuper, current_user AS user FROM pg_roles r WHERE r.rolname = current_user',
    );
    expect(role).toEqual({ rolbypassrls: false, rolsuper: false, user: 'gatehouse_app' });
    const owned = await t.asApp(`
      SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE n.nspname = 'public' AND pg_get_userbyid(c.relowner) = current_user`);
    expect(owned).toEqual([]);
  });

  it('lets the runtime role only read and append the audit trail', async () => {
    const [grants] = await t.asApp<{ upd: boolean; del: boolean; trunc: boolean; ins: boolean }>(`
      SELECT has_table_privilege('audit_events', 'UPDATE') AS upd, has_table_privilege('audit_events', 'DELETE') AS del,
             has_table_privilege('audit_events', 'TRUNCATE') AS trunc, has_table_privilege('audit_events', 'INSERT') AS ins`);
    expect(grants).toEqual({ upd: false, del: false, trunc: false, ins: true });
  });
});
