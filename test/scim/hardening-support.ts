import type { TestDatabase } from '../support/database.js';

/**
 * What the issue 8 tests compare before and after a hostile request: the
 * built-in prototypes (a polluting request adds a key to one of them) and a
 * tenant's directory rows, digested in one statement under the tenant's RLS
 * context (FORCE ROW LEVEL SECURITY binds the owner role too).
 */

const PROTOTYPES: [string, object][] = [
  ['Object.prototype', Object.prototype],
  ['Array.prototype', Array.prototype],
  ['Function.prototype', Function.prototype],
  ['String.prototype', String.prototype],
];

/** Own property names (enumerable or not) of the built-in prototypes. */
export function prototypeSnapshot(): Record<string, string[]> {
  return Object.fromEntries(
    PROTOTYPES.map(([name, proto]) => [name, Reflect.ownKeys(proto).map(String).sort()]),
  );
}

/** Whether a fresh object sees any enumerable inherited key (what a polluted prototype gives it). */
export function inheritedEnumerableKeys(): string[] {
  const keys: string[] = [];
  for (const key in {}) keys.push(key);
  return keys;
}

export interface DirectoryDigest {
  users: number;
  groups: number;
  members: number;
  audit: number;
  digest: string;
}

/** A digest of the tenant's users, groups and memberships, and their counts (audit events too). */
export async function directoryDigest(t: TestDatabase, tenantId: string): Promise<DirectoryDigest> {
  const [row] = await t.db.withTenant(tenantId, (em) =>
    em.query<DirectoryDigest[]>(
      `SELECT (SELECT count(*)::int FROM users) AS users,
              (SELECT count(*)::int FROM groups) AS groups,
              (SELECT count(*)::int FROM group_members) AS members,
              (SELECT count(*)::int FROM audit_events) AS audit,
              md5(concat_ws('|',
                (SELECT string_agg(u::text, ',' ORDER BY u.id) FROM users u),
                (SELECT string_agg(g::text, ',' ORDER BY g.id) FROM groups g),
                (SELECT string_agg(m::text, ',' ORDER BY m.group_id, m.user_id) FROM group_members m)))
                AS digest`,
    ),
  );
  if (!row) throw new Error('no digest');
  return row;
}

/** The fuzz budget: GATEHOUSE_FUZZ_RUNS (npm run fuzz) or the bounded default of `npm test`. */
export function fuzzRuns(defaultRuns: number): number {
  const raw = process.env.GATEHOUSE_FUZZ_RUNS;
  const n = raw === undefined ? NaN : Number(raw);
  return Number.isInteger(n) && n > 0 ? n : defaultRuns;
}

/** The fuzz seed: GATEHOUSE_FUZZ_SEED to replay a reported failure, else a fixed one. */
export function fuzzSeed(defaultSeed: number): number {
  const n = Number(process.env.GATEHOUSE_FUZZ_SEED);
  return Number.isInteger(n) ? n : defaultSeed;
}
