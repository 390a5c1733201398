import 'reflect-metadata';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { DistributableKeys1765600000000 } from '../../migrations/1765600000000-distributable-keys.js';
import { createDataSource } from '../../src/db/data-source.js';
import { ENTITIES } from '../../src/entities.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { createTenant, createUser } from '../support/factories.js';

/**
 * Can the schema be sharded by tenant_id (issue 11, "Past one PostgreSQL";
 * docs/scaling.md)? Read from the migrated catalog, so a future migration
 * cannot quietly break it:
 *   - a tenant table is a table with a tenant_id column; its primary key and
 *     every unique key or unique index contain tenant_id (a sharded database
 *     enforces uniqueness only within a shard);
 *   - a foreign key between tenant tables pairs tenant_id with tenant_id (both
 *     rows on the same shard); from a tenant table it may also point at a
 *     reference table; no platform table points into a tenant table;
 *   - every other table is listed in PLATFORM with its place and why;
 *   - the create_distributed_table / create_reference_table calls of
 *     docs/scaling.md name exactly these tables, in an order their keys allow.
 * Then the one behaviour the keys' migration changed: the verified-domain claim
 * (domain_claims) and the id resolvers, and the migration's way back.
 */

type Placement =
  /** Small, read on hot paths, written rarely: one copy on every node (create_reference_table). */
  | { place: 'reference'; why: string }
  /** Written before any tenant is known: sharded by its own key, colocated with nothing. */
  | { place: 'distributed'; column: string; why: string }
  /** Stays a plain table on the coordinator. */
  | { place: 'coordinator'; why: string };

/** Every table without tenant_id. A new one fails the first test until it is placed here. */
const PLATFORM: Record<string, Placement> = {
  tenants: { place: 'reference', why: 'one row per tenant; the target of every tenant foreign key' },
  apps: { place: 'reference', why: "the main app's registered clients: a handful of rows" },
  app_secrets: { place: 'reference', why: 'client secrets of the apps: a few per app' },
  app_webhook_secrets: { place: 'reference', why: 'webhook signing secrets of the apps: a few per app' },
  signing_keys: { place: 'reference', why: 'token signing keys: a few per algorithm' },
  domain_claims: {
    place: 'reference',
    why: 'one row per verified domain: the cross-tenant uniqueness a sharded domains table cannot hold',
  },
  authorization_requests: {
    place: 'distributed',
    column: 'id',
    why: 'written at /oauth/authorize before the tenant is known, read back by its id',
  },
  rate_limit_counters: {
    place: 'coordinator',
    why: 'unlogged hit counters keyed by digests, never joined with tenant data',
  },
  gatehouse_installation: {
    place: 'coordinator',
    why: "one row: the installation's key checks (owner only)",
  },
  gatehouse_migrations: { place: 'coordinator', why: "TypeORM's record of applied migrations" },
  // Issue 15: the Admin Portal's ways in, found by a token's digest before any tenant is known.
  portal_links: { place: 'coordinator', why: "the operator's one-time portal links: a handful of rows" },
  portal_sessions: {
    place: 'coordinator',
    why: 'portal browser sessions: few, short-lived, found by digest',
  },
};

interface Table {
  table: string;
  tenant: boolean;
  tenant_type: string | null;
  tenant_not_null: boolean | null;
}
interface Constraint {
  name: string;
  type: 'p' | 'u' | 'f' | 'x';
  table: string;
  ref: string | null;
  columns: string[];
  ref_columns: string[];
}
interface UniqueIndex {
  name: string;
  table: string;
  columns: string[];
}

let t: TestDatabase;
let tables: Table[];
let constraints: Constraint[];
let uniqueIndexes: UniqueIndex[];
const tenantTables = () => new Set(tables.filter((x) => x.tenant).map((x) => x.table));

async function readCatalog(db: TestDatabase) {
  const tables = await db.asOwner<Table>(`
    SELECT c.relname AS table, a.attname IS NOT NULL AS tenant,
           format_type(a.atttypid, a.atttypmod) AS tenant_type, a.attnotnull AS tenant_not_null
      FROM pg_class c
      JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public'
      LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped
     WHERE c.relkind IN ('r', 'p')
     ORDER BY c.relname`);
  const constraints = await db.asOwner<Constraint>(`
    SELECT con.conname AS name, con.contype AS type, c.relname AS table, r.relname AS ref,
           ARRAY(SELECT a.attname::text FROM unnest(con.conkey) WITH ORDINALITY k(n, i)
                   JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.n ORDER BY k.i) AS columns,
           ARRAY(SELECT a.attname::text FROM unnest(con.confkey) WITH ORDINALITY k(n, i)
                   JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.n ORDER BY k.i) AS ref_columns
      FROM pg_constraint con
      JOIN pg_class c ON c.oid = con.conrelid
      JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public'
      LEFT JOIN pg_class r ON r.oid = con.confrelid
     WHERE con.contype IN ('p', 'u', 'f', 'x')
     ORDER BY con.conname`);
  // Key columns only (not INCLUDE); an expression column shows as '(expression)'.
  const uniqueIndexes = await db.asOwner<UniqueIndex>(`
    SELECT i.relname AS name, c.relname AS table,
           ARRAY(SELECT COALESCE(a.attname::text, '(expression)')
                   FROM unnest(x.indkey::int2[]) WITH ORDINALITY k(n, i)
                   LEFT JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.n
                  WHERE k.i <= x.indnkeyatts ORDER BY k.i) AS columns
      FROM pg_index x
      JOIN pg_class c ON c.oid = x.indrelid
      JOIN pg_class i ON i.oid = x.indexrelid
      JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public'
     WHERE x.indisunique
     ORDER BY i.relname`);
  return { tables, constraints, uniqueIndexes };
}

/** Keys of tenant tables without tenant_id: a sharded database could not enforce them. */
function keyProblems(catalog: Awaited<ReturnType<typeof readCatalog>>): string[] {
  const tenant = new Set(catalog.tables.filter((x) => x.tenant).map((x) => x.table));
  const problems: string[] = [];
  for (const name of tenant) {
    const pk = catalog.constraints.find((c) => c.table === name && c.type === 'p');
    if (!pk) problems.push(`${name}: no primary key`);
    else if (!pk.columns.includes('tenant_id'))
      problems.push(`${name}: primary key (${pk.columns.join(', ')})`);
  }
  for (const c of catalog.constraints)
    if (tenant.has(c.table) && (c.type === 'u' || c.type === 'x') && !c.columns.includes('tenant_id'))
      problems.push(`${c.table}.${c.name}: (${c.columns.join(', ')})`);
  // Unique indexes cover the constraints above and the partial / expression ones.
  for (const i of catalog.uniqueIndexes)
    if (tenant.has(i.table) && !i.columns.includes('tenant_id'))
      problems.push(`${i.table}.${i.name}: unique on (${i.columns.join(', ')})`);
  return problems;
}

beforeAll(async () => {
  t = await createTestDatabase();
  ({ tables, constraints, uniqueIndexes } = await readCatalog(t));
});
afterAll(() => t.close());

describe('the catalog stays distributable by tenant_id', () => {
  it('classifies every table: tenant tables carry a uuid NOT NULL tenant_id, every other table is placed in PLATFORM', () => {
    const problems: string[] = [];
    for (const x of tables) {
      if (x.tenant) {
        if (x.table in PLATFORM) problems.push(`${x.table}: has tenant_id but is listed in PLATFORM`);
        // One distribution column type for every tenant table, so all of them colocate.
        if (x.tenant_type !== 'uuid' || !x.tenant_not_null)
          problems.push(`${x.table}: tenant_id is ${x.tenant_type}${x.tenant_not_null ? '' : ' NULL'}`);
      } else if (!(x.table in PLATFORM)) {
        problems.push(
          `${x.table}: no tenant_id and not placed in PLATFORM (reference, distributed or coordinator?)`,
        );
      }
    }
    for (const name of Object.keys(PLATFORM))
      if (!tables.some((x) => x.table === name)) problems.push(`${name}: in PLATFORM but not in the schema`);
    expect(problems).toEqual([]);
    expect(tenantTables().size).toBeGreaterThanOrEqual(18);
  });

  it('keeps tenant_id in the primary key and in every unique key, exclusion constraint and unique index of a tenant table', () => {
    expect(keyProblems({ tables, constraints, uniqueIndexes })).toEqual([]);
  });

  it('joins tenant tables by foreign keys that pair tenant_id with tenant_id', () => {
    const tenant = tenantTables();
    const fks = constraints.filter((c) => c.type === 'f' && tenant.has(c.table) && tenant.has(c.ref ?? ''));
    expect(fks.length).toBeGreaterThanOrEqual(10);
    const problems = fks
      .filter(
        (c) => c.columns.findIndex((col, i) => col === 'tenant_id' && c.ref_columns[i] === 'tenant_id') < 0,
      )
      .map((c) => `${c.table}.${c.name}: (${c.columns.join(', ')}) -> ${c.ref}(${c.ref_columns.join(', ')})`);
    expect(problems).toEqual([]);
  });

  it('lets tenant tables point only at reference tables among platform tables, and no platform table point into tenant data', () => {
    const tenant = tenantTables();
    const problems: string[] = [];
    for (const c of constraints.filter((x) => x.type === 'f')) {
      const ref = c.ref ?? '';
      const from = tenant.has(c.table) ? 'tenant' : PLATFORM[c.table]?.place;
      const to = tenant.has(ref) ? 'tenant' : PLATFORM[ref]?.place;
      if (from === 'tenant' && to === 'tenant') continue; // the test above
      // A sharded or reference table may reference a reference table; nothing else crosses.
      if (to !== 'reference' || from === 'coordinator')
        problems.push(`${c.table} (${from}) -> ${ref} (${to}): ${c.name}`);
    }
    expect(problems).toEqual([]);
  });

  it('keeps the distribution column in every unique key of a platform table sharded by its own key', () => {
    const problems: string[] = [];
    for (const [name, p] of Object.entries(PLATFORM)) {
      if (p.place !== 'distributed') continue;
      for (const i of uniqueIndexes.filter((x) => x.table === name))
        if (!i.columns.includes(p.column)) problems.push(`${name}.${i.name}: (${i.columns.join(', ')})`);
    }
    expect(problems).toEqual([]);
  });
});

describe('docs/scaling.md', () => {
  const doc = readFileSync(path.resolve(import.meta.dirname, '../../docs/scaling.md'), 'utf8');
  const calls = [
    ...doc.matchAll(
      /SELECT (create_reference_table|create_distributed_table)\('(\w+)'(?:, '(\w+)')?(?:, colocate_with => '(\w+)')?\)/g,
    ),
  ].map((m) => ({ fn: m[1], table: m[2] ?? '', column: m[3], colocateWith: m[4] }));

  it('distributes every tenant table by tenant_id colocated with users, and replicates exactly the reference tables', () => {
    const distributed = calls.filter((c) => c.fn === 'create_distributed_table');
    const byTenant = distributed.filter((c) => c.column === 'tenant_id');
    expect(byTenant.map((c) => c.table).sort()).toEqual([...tenantTables()].sort());
    for (const c of byTenant)
      if (c.table !== 'users') expect([c.table, c.colocateWith]).toEqual([c.table, 'users']);
    const ownKey = Object.entries(PLATFORM).flatMap(([table, p]) =>
      p.place === 'distributed' ? [{ table, column: p.column, colocateWith: 'none' }] : [],
    );
    expect(
      distributed
        .filter((c) => c.column !== 'tenant_id')
        .map(({ table, column, colocateWith }) => ({
          table,
          column,
          colocateWith,
        })),
    ).toEqual(ownKey);
    const reference = Object.entries(PLATFORM).flatMap(([table, p]) =>
      p.place === 'reference' ? [table] : [],
    );
    expect(
      calls
        .filter((c) => c.fn === 'create_reference_table')
        .map((c) => c.table)
        .sort(),
    ).toEqual(reference.sort());
  });

  it('orders the calls so that a referenced or colocation table comes before the tables that need it', () => {
    const position = new Map(calls.map((c, i) => [c.table, i]));
    const problems: string[] = [];
    for (const c of constraints.filter((x) => x.type === 'f' && x.ref !== x.table)) {
      const from = position.get(c.table);
      const to = position.get(c.ref ?? '');
      if (from !== undefined && to !== undefined && to > from) problems.push(`${c.ref} after ${c.table}`);
    }
    for (const c of calls) {
      const anchor = c.colocateWith && c.colocateWith !== 'none' ? position.get(c.colocateWith) : undefined;
      if (anchor !== undefined && anchor > (position.get(c.table) ?? 0))
        problems.push(`${c.colocateWith} after ${c.table}`);
    }
    expect(problems).toEqual([]);
  });
});

/** The tenant a resolver names, as the runtime role calls it (db/resolvers.ts). */
async function resolve(fn: string, arg: string): Promise<string | null> {
  const rows = await t.asApp<{ tenant_id: string | null }>(`SELECT ${fn}($1) AS tenant_id`, [arg]);
  return rows[0]?.tenant_id ?? null;
}

async function addDomain(tenantId: string, domain: string, verified: boolean): Promise<string> {
  const id = randomUUID();
  await t.db.withTenant(tenantId, (em) =>
    em.query(
      `INSERT INTO domains (tenant_id, id, domain, verification_token, verified_at)
       VALUES ($1, $2, $3, 'x', CASE WHEN $4 THEN now() END)`,
      [tenantId, id, domain, verified],
    ),
  );
  return id;
}

const verify = (tenantId: string, domainId: string) =>
  t.db.withTenant(tenantId, (em) =>
    em.query(`UPDATE domains SET verified_at = now() WHERE id = $1 AND verified_at IS NULL`, [domainId]),
  );

const claims = () =>
  t.asOwner<{ domain: string; tenant: string }>('SELECT domain, tenant FROM domain_claims');

describe('the verified-domain claim (domain_claims)', () => {
  it('lets one tenant verify a domain, refuses a second with domains_verified_domain_key, and frees it when the domain or the tenant goes', async () => {
    const a = await createTenant(t.db);
    const b = await createTenant(t.db);
    const domain = `claim-${randomUUID().slice(0, 8)}.example`;
    const aDomain = await addDomain(a, domain, true);
    const bDomain = await addDomain(b, domain, false);
    expect(await resolve('resolve_tenant_by_domain', domain.toUpperCase())).toBe(a);

    const refused = await verify(b, bDomain).then(
      () => null,
      (e: unknown) => e as { driverError?: { code?: string; constraint?: string } },
    );
    expect(refused?.driverError).toMatchObject({ code: '23505', constraint: 'domains_verified_domain_key' });
    // The refused transaction left nothing behind.
    const [bRow] = await t.db.withTenant(b, (em) =>
      em.query<{ verified_at: Date | null }[]>('SELECT verified_at FROM domains WHERE id = $1', [bDomain]),
    );
    expect(bRow?.verified_at).toBeNull();

    await t.db.withTenant(a, (em) => em.query('DELETE FROM domains WHERE id = $1', [aDomain]));
    expect(await resolve('resolve_tenant_by_domain', domain)).toBeNull();
    await verify(b, bDomain);
    expect(await resolve('resolve_tenant_by_domain', domain)).toBe(b);
    const [taken] = await t.asApp<{ taken: boolean }>(
      'SELECT domain_verified_by_other_tenant($1, $2) AS taken',
      [domain, a],
    );
    expect(taken?.taken).toBe(true);

    await t.db.withPlatform((em) => em.query('DELETE FROM tenants WHERE id = $1', [b]));
    expect((await claims()).filter((c) => c.domain === domain)).toEqual([]);
  });

  it('gives the runtime role no way to read or write the claims but through the resolvers', async () => {
    const [grants] = await t.asApp<{ sel: boolean; ins: boolean }>(
      `SELECT has_table_privilege('domain_claims', 'SELECT') AS sel, has_table_privilege('domain_claims', 'INSERT') AS ins`,
    );
    expect(grants).toEqual({ sel: false, ins: false });
  });

  // Property: whatever tenants do with their domains, the claims are exactly the verified domains.
  it('holds exactly the verified domains after any sequence of adds, verifications and deletions', async () => {
    const tenants = [await createTenant(t.db), await createTenant(t.db), await createTenant(t.db)];
    const names = ['p1', 'p2', 'p3'].map((n) => `${n}-${randomUUID().slice(0, 8)}.example`);
    const op = fc.record({
      kind: fc.constantFrom('add', 'verify', 'delete'),
      tenant: fc.integer({ min: 0, max: tenants.length - 1 }),
      name: fc.integer({ min: 0, max: names.length - 1 }),
    });
    await fc.assert(
      fc.asyncProperty(fc.array(op, { maxLength: 12 }), async (ops) => {
        for (const tenant of tenants)
          await t.db.withTenant(tenant, (em) =>
            em.query('DELETE FROM domains WHERE domain = ANY($1)', [names]),
          );
        for (const o of ops) {
          const tenant = tenants[o.tenant] ?? '';
          const domain = names[o.name] ?? '';
          const rows = await t.db.withTenant(tenant, (em) =>
            em.query<{ id: string }[]>('SELECT id FROM domains WHERE domain = $1', [domain]),
          );
          const id = rows[0]?.id;
          try {
            if (o.kind === 'add' && !id) await addDomain(tenant, domain, false);
            if (o.kind === 'verify' && id) await verify(tenant, id);
            if (o.kind === 'delete' && id)
              await t.db.withTenant(tenant, (em) => em.query('DELETE FROM domains WHERE id = $1', [id]));
          } catch (error) {
            const code = (error as { driverError?: { constraint?: string } }).driverError?.constraint;
            if (code !== 'domains_verified_domain_key') throw error;
          }
        }
        const verified: { domain: string; tenant: string }[] = [];
        for (const tenant of tenants) {
          const rows = await t.db.withTenant(tenant, (em) =>
            em.query<{ domain: string }[]>(
              'SELECT domain FROM domains WHERE domain = ANY($1) AND verified_at IS NOT NULL',
              [names],
            ),
          );
          verified.push(...rows.map((r) => ({ domain: r.domain, tenant })));
        }
        const sort = (xs: { domain: string; tenant: string }[]) =>
          [...xs].sort((x, y) => (x.domain + x.tenant).localeCompare(y.domain + y.tenant));
        const claimed = (await claims()).filter((c) => names.includes(c.domain));
        expect(sort(claimed)).toEqual(sort(verified));
        expect(new Set(verified.map((v) => v.domain)).size).toBe(verified.length);
      }),
      { numRuns: fuzzRuns(15), seed: fuzzSeed(0xd15), endOnFailure: true },
    );
  });
});

describe('the id resolvers', () => {
  it('resolve an id found in two tenants to no tenant (fail closed), and a unique one to its tenant', async () => {
    const a = await createTenant(t.db);
    const b = await createTenant(t.db);
    const connectionId = randomUUID();
    const sessionId = randomUUID();
    for (const tenant of [a, b]) {
      const user = await createUser(t.db, tenant, `u-${randomUUID().slice(0, 8)}`);
      await t.db.withTenant(tenant, async (em) => {
        await em.query(`INSERT INTO connections (tenant_id, id, type, name) VALUES ($1, $2, 'saml', 'c')`, [
          tenant,
          connectionId,
        ]);
        await em.query(
          `INSERT INTO sessions (tenant_id, id, user_id, expires_at) VALUES ($1, $2, $3, now() + interval '1 hour')`,
          [tenant, sessionId, user],
        );
      });
      if (tenant === a) {
        expect(await resolve('resolve_tenant_by_connection', connectionId)).toBe(a);
        expect(await resolve('resolve_tenant_by_session', sessionId)).toBe(a);
      }
    }
    expect(await resolve('resolve_tenant_by_connection', connectionId)).toBeNull();
    expect(await resolve('resolve_tenant_by_session', sessionId)).toBeNull();
  });
});

describe('migration 1765600000000 down and up again', () => {
  it('restores the previous keys and resolvers, then re-applies with the verified domains copied into claims', async () => {
    const own = await createTestDatabase();
    const ds = createDataSource({ url: own.ownerUrl, entities: ENTITIES, poolSize: 1 });
    await ds.initialize();
    const runner = ds.createQueryRunner();
    const migration = new DistributableKeys1765600000000();
    try {
      const tenant = await createTenant(own.db);
      const domain = `back-${randomUUID().slice(0, 8)}.example`;
      await own.db.withTenant(tenant, (em) =>
        em.query(
          `INSERT INTO domains (tenant_id, id, domain, verification_token, verified_at) VALUES ($1, $2, $3, 'x', now())`,
          [tenant, randomUUID(), domain],
        ),
      );

      await runner.startTransaction();
      await migration.down(runner);
      await runner.commitTransaction();
      const before = await readCatalog(own);
      expect(before.tables.some((x) => x.table === 'domain_claims')).toBe(false);
      // The previous keys, which the check above reports: it sees what it is meant to see.
      expect(keyProblems(before).sort()).toEqual([
        'connections.connections_id_key: unique on (id)',
        'domains.domains_verified_domain_key: unique on (domain)',
        'sessions.sessions_id_key: unique on (id)',
      ]);
      const [old] = await own.asApp<{ tenant_id: string }>(
        'SELECT resolve_tenant_by_domain($1) AS tenant_id',
        [domain],
      );
      expect(old?.tenant_id).toBe(tenant);

      await runner.startTransaction();
      await migration.up(runner);
      await runner.commitTransaction();
      const after = await readCatalog(own);
      expect(after.uniqueIndexes.map((i) => i.name)).toEqual(uniqueIndexes.map((i) => i.name));
      expect(await own.asOwner('SELECT domain, tenant FROM domain_claims')).toEqual([{ domain, tenant }]);
      const [again] = await own.asApp<{ tenant_id: string }>(
        'SELECT resolve_tenant_by_domain($1) AS tenant_id',
        [domain],
      );
      expect(again?.tenant_id).toBe(tenant);
    } finally {
      await runner.release();
      await ds.destroy();
      await own.close();
    }
  });
});

function fuzzRuns(defaultRuns: number): number {
  const n = Number(process.env.GATEHOUSE_FUZZ_RUNS);
  return Number.isInteger(n) && n > 0 ? n : defaultRuns;
}

function fuzzSeed(defaultSeed: number): number {
  const n = Number(process.env.GATEHOUSE_FUZZ_SEED);
  return Number.isInteger(n) ? n : defaultSeed;
}
