import { randomBytes, randomUUID } from 'node:crypto';
import { pino } from 'pino';
import { createDataSource } from '../../src/db/data-source.js';
import { Database } from '../../src/db/database.js';
import { NestedPoolAcquisitionError } from '../../src/db/pool-guard.js';
import { ENTITIES } from '../../src/entities.js';
import {
  counterKey,
  keyDigest,
  PostgresRateLimitStore,
  useCounterKey,
} from '../../src/http/rate-limit-store.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { createTenantWithDomains } from '../support/sso-factories.js';

/**
 * Increments of one key gather while one statement for that key is sent, and go as one statement
 * adding their number (src/http/rate-limit-store.ts, issue 13). What must hold: every increment gets a
 * count of its own, the counts of one key are 1..N whatever the nodes (two Database handles on one
 * database are two nodes), the stored count is N, and fewer than N statements were sent when they
 * arrived together. A store that cannot count fails every waiting increment (the limiter fails open).
 */
let t: TestDatabase;
const masterKey = randomBytes(32);
const log = pino({ level: 'silent' });

/** A node: its own data source and pool on the test database, its own store of the limiter. */
async function node(windowMs = 60_000) {
  const dataSource = createDataSource({ url: t.appUrl, entities: ENTITIES, poolSize: 4 });
  await dataSource.initialize();
  const db = new Database(dataSource);
  useCounterKey(db, masterKey);
  const store = new PostgresRateLimitStore(db, 'scim-tenant', log);
  store.init({ windowMs } as Parameters<PostgresRateLimitStore['init']>[0]);
  let statements = 0;
  const query = db.queryOutsideTenant.bind(db);
  db.queryOutsideTenant = (sql, params) => {
    statements += 1;
    return query(sql, params);
  };
  return { db, store, dataSource, statements: () => statements };
}

const stored = async (key: string) =>
  (
    await t.asOwner<{ hits: number }>(
      `SELECT hits FROM rate_limit_counters WHERE limiter = $1 AND key = $2`,
      ['scim-tenant', keyDigest(counterKey(masterKey), key)],
    )
  )[0]?.hits;

let a: Awaited<ReturnType<typeof node>>;
let b: Awaited<ReturnType<typeof node>>;
beforeAll(async () => {
  t = await createTestDatabase();
  a = await node();
  b = await node();
});
afterAll(async () => {
  await a.dataSource.destroy();
  await b.dataSource.destroy();
  await t.close();
});

describe('increments of one key, gathered', () => {
  it('answers each of 40 simultaneous increments its own count, 1..40, in fewer statements', async () => {
    const key = randomUUID();
    const before = a.statements();
    const counts = await Promise.all(Array.from({ length: 40 }, () => a.store.increment(key)));
    expect(counts.map((c) => c.totalHits).sort((x, y) => x - y)).toEqual(
      Array.from({ length: 40 }, (_, i) => i + 1),
    );
    // Arrival order: the first increment is the first count.
    expect(counts[0]?.totalHits).toBe(1);
    expect(new Set(counts.map((c) => c.resetTime?.getTime())).size).toBe(1);
    expect(await stored(key)).toBe(40);
    const sent = a.statements() - before;
    expect(sent).toBeGreaterThanOrEqual(2);
    expect(sent).toBeLessThan(40);
  });

  it('keeps two nodes counting one key together: 1..N across both, N stored', async () => {
    const key = randomUUID();
    const counts = await Promise.all(
      Array.from({ length: 30 }, (_, i) => (i % 2 === 0 ? a : b).store.increment(key)),
    );
    expect(counts.map((c) => c.totalHits).sort((x, y) => x - y)).toEqual(
      Array.from({ length: 30 }, (_, i) => i + 1),
    );
    expect(await stored(key)).toBe(30);
  });

  it('does not gather different keys: each key counts its own', async () => {
    const [k1, k2] = [randomUUID(), randomUUID()];
    const counts = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        a.store.increment(i % 2 === 0 ? k1 : k2).then((c) => [i % 2, c.totalHits]),
      ),
    );
    for (const which of [0, 1])
      expect(
        counts
          .filter(([w]) => w === which)
          .map(([, n]) => n)
          .sort((x, y) => (x ?? 0) - (y ?? 0)),
      ).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect([await stored(k1), await stored(k2)]).toEqual([10, 10]);
  });

  it('starts a new window with the gathered batch when the old one ended', async () => {
    const short = await node(1_000);
    try {
      const key = randomUUID();
      await Promise.all(Array.from({ length: 5 }, () => short.store.increment(key)));
      expect(await stored(key)).toBe(5);
      await t.asOwner(
        `UPDATE rate_limit_counters SET reset_at = now() - interval '1 second' WHERE limiter = $1 AND key = $2`,
        ['scim-tenant', keyDigest(counterKey(masterKey), key)],
      );
      const counts = await Promise.all(Array.from({ length: 7 }, () => short.store.increment(key)));
      expect(counts.map((c) => c.totalHits).sort((x, y) => x - y)).toEqual([1, 2, 3, 4, 5, 6, 7]);
      expect(await stored(key)).toBe(7);
    } finally {
      await short.dataSource.destroy();
    }
  });

  it('fails every waiting increment when the store cannot count, and counts again afterwards', async () => {
    const broken = await node();
    const key = randomUUID();
    await broken.dataSource.destroy();
    const results = await Promise.allSettled(Array.from({ length: 6 }, () => broken.store.increment(key)));
    expect(results.map((r) => r.status)).toEqual(Array(6).fill('rejected'));
    expect(await stored(key)).toBeUndefined();
    // Nothing of the failure stays in the store: a working node's store of the same key starts at 1.
    expect((await a.store.increment(key)).totalHits).toBe(1);
  });

  it('is refused (pool guard) when asked from inside a transaction, as the statement itself would be', async () => {
    const tenant = await createTenantWithDomains(a.db, `g${Date.now()}`, [`g${Date.now()}.test`]);
    const key = randomUUID();
    await expect(a.db.withTenant(tenant, () => a.store.increment(key))).rejects.toBeInstanceOf(
      NestedPoolAcquisitionError,
    );
    expect(await stored(key)).toBeUndefined();
  });
});
