import fc from 'fast-check';
import type pg from 'pg';
import type { DataSource } from 'typeorm';
import type { PostgresDriver } from 'typeorm/driver/postgres/PostgresDriver.js';
import { createDataSource } from '../../src/db/data-source.js';
import { Database } from '../../src/db/database.js';
import { isDatabaseUnavailable } from '../../src/db/pg-errors.js';
import { finalStatement } from '../../src/db/pipelined-transaction.js';
import { ENTITIES } from '../../src/entities.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { RoundTripCounter } from '../support/round-trips.js';
import { createTenantWithDomains } from '../support/sso-factories.js';

/**
 * Transactions in pipeline mode (src/db/pipelined-transaction.ts): BEGIN with
 * the tenant setting travels with the first statement, a final statement with
 * its COMMIT. What must hold: all or nothing exactly as before, row-level
 * security exactly as before, a failed transaction leaves the pooled
 * connection fit for the next one, and the trips are what the counter says.
 */
const RUNS = Number(process.env.GATEHOUSE_FUZZ_RUNS ?? 40);

let t: TestDatabase;
let ds: DataSource;
let db: Database;
let acme: string;
let globex: string;
const counter = new RoundTripCounter();

beforeAll(async () => {
  t = await createTestDatabase();
  // One connection: every transaction below reuses the one a failure may have left behind.
  ds = createDataSource({ url: t.appUrl, entities: ENTITIES, poolSize: 1 });
  await ds.initialize();
  counter.countDataSource(ds);
  db = new Database(ds);
  acme = await createTenantWithDomains(t.db, 'acme', ['acme.test']);
  globex = await createTenantWithDomains(t.db, 'globex', ['globex.test']);
});
afterAll(async () => {
  await ds.destroy();
  await t.close();
});

const insertUser = `INSERT INTO users (tenant_id, user_name) VALUES (current_setting('app.tenant_id')::uuid, $1)
                    RETURNING user_name`;
const userNames = async (tenantId: string): Promise<string[]> =>
  (
    await db.withTenant(tenantId, (em) =>
      em.query<{ user_name: string }[]>('SELECT user_name FROM users ORDER BY user_name'),
    )
  )
    .map((r) => r.user_name)
    .sort();

describe('a pipelined transaction', () => {
  it('runs on a pool in pipeline mode', async () => {
    const pool = (ds.driver as PostgresDriver).master as pg.Pool;
    const client = await pool.connect();
    try {
      expect((client as pg.PoolClient & { pipeline?: boolean }).pipeline).toBe(true);
    } finally {
      client.release();
    }
  });

  it('sends BEGIN, the tenant, one statement and COMMIT in one round trip with finalStatement', async () => {
    const { tally, result } = counter.run('final', () =>
      db.withTenant(acme, (em) => finalStatement(em, insertUser, ['one-trip@acme.test'])),
    );
    expect((await result).rows).toEqual([{ user_name: 'one-trip@acme.test' }]);
    expect(tally.roundTrips).toBe(1);
    expect(tally.statements).toHaveLength(3);
    expect(await userNames(acme)).toContain('one-trip@acme.test');
  });

  it("sends BEGIN with the first statement: a read and a COMMIT are two trips, and see only the tenant's rows", async () => {
    const { tally, result } = counter.run('read', () =>
      db.withTenant(globex, (em) => em.query<{ tenant_id: string }[]>('SELECT tenant_id FROM users')),
    );
    const rows = await result;
    expect(rows.every((r) => r.tenant_id === globex)).toBe(true);
    expect(tally.roundTrips).toBe(2);
  });

  it('a final statement that fails commits nothing, throws its own error, and leaves the connection usable', async () => {
    await db.withTenant(acme, (em) => finalStatement(em, insertUser, ['taken@acme.test']));
    const before = await userNames(acme);
    await expect(
      db.withTenant(acme, async (em) => {
        await em.query(insertUser, ['written-then-undone@acme.test']);
        return finalStatement(em, insertUser, ['TAKEN@acme.test']);
      }),
    ).rejects.toMatchObject({ code: '23505' });
    expect(await userNames(acme)).toEqual(before);
  });

  it('refuses a statement after the final one, which never runs outside the transaction', async () => {
    const before = await userNames(acme);
    await expect(
      db.withTenant(acme, async (em) => {
        await finalStatement(em, insertUser, ['final@acme.test']);
        await em.query(insertUser, ['after-final@acme.test']);
      }),
    ).rejects.toThrow('a statement after the final statement of a transaction');
    expect(await userNames(acme)).toEqual([...before, 'final@acme.test'].sort());
  });

  it('a connection lost under the final statement and its COMMIT is an outage (503), commits nothing, and the pool recovers', async () => {
    const before = await userNames(acme);
    const error = await db
      .withTenant(acme, async (em) => {
        await em.query(insertUser, ['lost@acme.test']);
        // The backend ends itself: the statement and the COMMIT behind it lose their connection.
        await finalStatement(em, 'SELECT pg_terminate_backend(pg_backend_pid())', []);
        return null;
      })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Error);
    expect(isDatabaseUnavailable(error)).toBe(true);
    expect(await userNames(acme)).toEqual(before);
  });

  it('a first statement that fails rolls back and the next transaction on the connection sees its own tenant', async () => {
    await expect(db.withTenant(acme, (em) => em.query('SELECT 1/0'))).rejects.toMatchObject({
      code: '22012',
    });
    const seen = await db.withTenant(globex, (em) =>
      em.query<{ tenant: string }[]>(`SELECT current_setting('app.tenant_id') AS tenant`),
    );
    expect(seen).toEqual([{ tenant: globex }]);
  });

  it('is all or nothing for any mix of good and failing statements, final or not (property)', async () => {
    let round = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.constantFrom('new', 'duplicate', 'error'), { minLength: 1, maxLength: 5 }),
        fc.boolean(),
        fc.constantFrom(acme, globex),
        async (steps, endsWithFinal, tenantId) => {
          round += 1;
          const before = await userNames(tenantId);
          const names = steps.map((step, i) =>
            step === 'duplicate' ? (before[0] ?? `p${round}-0@x.test`) : `p${round}-${i}@x.test`,
          );
          const run = (
            name: string,
            step: string,
            em: Parameters<Parameters<Database['withTenant']>[1]>[0],
          ) => (step === 'error' ? em.query('SELECT 1/0') : em.query(insertUser, [name]));
          const outcome = await db
            .withTenant(tenantId, async (em) => {
              const last = steps.length - 1;
              for (let i = 0; i < last; i += 1) await run(names[i]!, steps[i]!, em);
              if (endsWithFinal && steps[last] !== 'error')
                await finalStatement(em, insertUser, [names[last]!]);
              else await run(names[last]!, steps[last]!, em);
            })
            .then(
              () => 'committed',
              () => 'failed',
            );
          const after = await userNames(tenantId);
          // What the transaction must do, simulated: it fails at an error or a taken name.
          const taken = new Set(before);
          const fails = steps.some((step, i) => {
            if (step === 'error' || taken.has(names[i]!)) return true;
            taken.add(names[i]!);
            return false;
          });
          expect(outcome).toBe(fails ? 'failed' : 'committed');
          expect(after).toEqual(fails ? before : [...before, ...names].sort());
          // The other tenant never sees these rows.
          const other = tenantId === acme ? globex : acme;
          expect((await userNames(other)).some((n) => names.includes(n))).toBe(false);
        },
      ),
      { numRuns: RUNS, seed: 1307 },
    );
  });
});
