import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { createTenantWithDomains } from '../support/sso-factories.js';
import { detached, NestedPoolAcquisitionError } from '../../src/db/pool-guard.js';

/**
 * Work that holds a pooled connection never waits for another (src/db/pool-guard.ts): the suite runs with
 * GATEHOUSE_POOL_GUARD=throw (test/support/global-setup.js), so such a wait fails at once instead of
 * waiting, maybe for ever, on a saturated pool.
 */
let t: TestDatabase;
let acme: string;

beforeAll(async () => {
  t = await createTestDatabase();
  acme = await createTenantWithDomains(t.db, 'acme', ['acme.test']);
});
afterAll(async () => {
  await t.close();
});

describe('the pool guard', () => {
  it('is on in the test suite', () => {
    expect(process.env.GATEHOUSE_POOL_GUARD).toBe('throw');
  });

  it('refuses a transaction opened from inside another, and a plain query too', async () => {
    await expect(
      t.db.withTenant(acme, () => t.db.withPlatform((em) => em.query('SELECT 1'))),
    ).rejects.toBeInstanceOf(NestedPoolAcquisitionError);
    await expect(t.db.withTenant(acme, () => t.db.queryOutsideTenant('SELECT 1', []))).rejects.toBeInstanceOf(
      NestedPoolAcquisitionError,
    );
    // …including after the body has awaited its own statements.
    await expect(
      t.db.withTenant(acme, async (em) => {
        await em.query('SELECT 1');
        await new Promise((resolve) => setImmediate(resolve));
        return t.db.withTenant(acme, (inner) => inner.query('SELECT 2'));
      }),
    ).rejects.toBeInstanceOf(NestedPoolAcquisitionError);
  });

  it('lets work started inside a transaction but not waited for (detached) take its own connection', async () => {
    let background: Promise<unknown> = Promise.resolve();
    const rows = await t.db.withTenant(acme, async (em) => {
      background = detached(() => t.db.withPlatform((other) => other.query('SELECT 1 AS one')));
      return em.query<{ two: number }[]>('SELECT 2 AS two');
    });
    expect(rows).toEqual([{ two: 2 }]);
    await expect(background).resolves.toEqual([{ one: 1 }]);
  });

  it('leaves sequential transactions and transactions side by side alone', async () => {
    const one = await t.db.withTenant(acme, (em) => em.query<{ n: number }[]>('SELECT 1 AS n'));
    const both = await Promise.all([
      t.db.withTenant(acme, (em) => em.query<{ n: number }[]>('SELECT 2 AS n')),
      t.db.withPlatform((em) => em.query<{ n: number }[]>('SELECT 3 AS n')),
    ]);
    expect([one, ...both]).toEqual([[{ n: 1 }], [{ n: 2 }], [{ n: 3 }]]);
  });
});
