import { randomUUID } from 'node:crypto';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { createTenant, createUser } from '../support/factories.js';

let t: TestDatabase;
let acme: string;
let globex: string;
let globexUser: string;

beforeAll(async () => {
  t = await createTestDatabase();
  acme = await createTenant(t.db, 'acme');
  globex = await createTenant(t.db, 'globex');
  await createUser(t.db, acme, 'alice@acme.com');
  await createUser(t.db, acme, 'bob@acme.com');
  globexUser = await createUser(t.db, globex, 'gina@globex.com');
});
afterAll(() => t.close());

describe('row-level security as the runtime role', () => {
  it('shows only the current tenant rows to a query without WHERE', async () => {
    const rows = await t.db.withTenant(acme, (em) => em.query('SELECT tenant_id, user_name FROM users'));
    expect(rows).toHaveLength(2);
    expect(new Set(rows.map((r: { tenant_id: string }) => r.tenant_id))).toEqual(new Set([acme]));
  });

  it('shows no tenant rows outside any tenant transaction', async () => {
    expect(await t.asApp('SELECT * FROM users')).toEqual([]);
    expect(await t.db.withPlatform((em) => em.query('SELECT * FROM users'))).toEqual([]);
  });

  it('does not carry the tenant setting to the next use of a pooled connection', async () => {
    await t.db.withTenant(acme, (em) => em.query('SELECT 1'));
    // Every pooled connection has now run a tenant transaction at least once.
    await Promise.all(
      [1, 2, 3, 4, 5].map(() => t.db.withTenant(acme, (em) => em.query('SELECT pg_sleep(0.01)'))),
    );
    const seen = await Promise.all(
      [1, 2, 3, 4, 5].map(() => t.db.withPlatform((em) => em.query('SELECT count(*)::int AS n FROM users'))),
    );
    expect(seen.map((r: { n: number }[]) => r[0]?.n)).toEqual([0, 0, 0, 0, 0]);
  });

  it("refuses to insert a row carrying another tenant's id", async () => {
    await expect(
      t.db.withTenant(acme, (em) =>
        em.query('INSERT INTO users (tenant_id, id, user_name) VALUES ($1, $2, $3)', [
          globex,
          randomUUID(),
          'x',
        ]),
      ),
    ).rejects.toThrow(/row-level security/);
    const globexRows = await t.db.withTenant(globex, (em) => em.query('SELECT * FROM users'));
    expect(globexRows).toHaveLength(1);
  });

  it("updates and deletes none of another tenant's rows, even by primary key", async () => {
    const [updated, deleted] = await t.db.withTenant(acme, async (em) => {
      const u = await em.query<[unknown, number]>(`UPDATE users SET display_name = 'pwned' WHERE id = $1`, [
        globexUser,
      ]);
      const d = await em.query<[unknown, number]>('DELETE FROM users WHERE id = $1', [globexUser]);
      return [u[1], d[1]];
    });
    expect(updated).toBe(0);
    expect(deleted).toBe(0);
    const [row] = await t.db.withTenant(globex, (em) =>
      em.query('SELECT display_name FROM users WHERE id = $1', [globexUser]),
    );
    expect(row).toEqual({ display_name: null });
  });

  it("cannot link a row to another tenant's row through a foreign key", async () => {
    // Composite keys (tenant_id, id): an acme identity pointing at a globex user fails.
    await expect(
      t.db.withTenant(acme, async (em) => {
        const connection = randomUUID();
        await em.query(`INSERT INTO connections (tenant_id, id, type, name) VALUES ($1, $2, 'oidc', 'c')`, [
          acme,
          connection,
        ]);
        await em.query(
          'INSERT INTO identities (tenant_id, user_id, connection_id, subject) VALUES ($1, $2, $3, $4)',
          [acme, globexUser, connection, 'sub'],
        );
      }),
    ).rejects.toThrow(/foreign key/);
  });

  it('rolls back everything the transaction did when it fails', async () => {
    await expect(
      t.db.withTenant(acme, async (em) => {
        await em.query('INSERT INTO users (tenant_id, user_name) VALUES ($1, $2)', [acme, 'carol@acme.com']);
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    const rows = await t.db.withTenant(acme, (em) =>
      em.query(`SELECT 1 FROM users WHERE user_name = 'carol@acme.com'`),
    );
    expect(rows).toEqual([]);
  });

  it('refuses a tenant id that is not a UUID', async () => {
    await expect(t.db.withTenant("x' OR 1=1 --", (em) => em.query('SELECT 1'))).rejects.toThrow(
      /not a tenant id/,
    );
  });
});
