import SCIMMY from 'scimmy';
import type { EntityManager } from 'typeorm';
import { findGroup, findGroupsByExternalId, listGroups } from '../../src/directory/groups.service.js';
import {
  findUser,
  findUserByUserName,
  findUsersByEmail,
  listUsers,
  userNameInUse,
} from '../../src/directory/users.service.js';
import { auditEventsPage, type AuditEventQuery } from '../../src/audit/audit-events.service.js';
import { sealTrail } from '../../src/audit/audit-sealer.js';
import type { Database } from '../../src/db/database.js';
import { listDeliveries, type DeliveryQuery } from '../../src/db/outbox-deliveries.js';
import { findLoginTrace, listLoginTraces, type TraceListQuery } from '../../src/sso/login-trace-store.js';
import { WEBHOOK_DELIVERIES } from '../../src/webhooks/webhook-deliveries.js';
import {
  filterToSql,
  parseFilter,
  sortToSql,
  SqlParams,
  type FilterResolver,
} from '../../src/scim/scim-filter.js';
import {
  ENTERPRISE_USER,
  groupFilterResolver,
  userFilterResolver,
} from '../../src/scim/scim-schema-paths.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { createTenant } from '../support/factories.js';

/**
 * Does every lookup the SCIM filter translator and the directory emit still use
 * an index once row-level security applies (issue 13)? Under RLS the planner
 * may use an index condition only when it is LEAKPROOF; `lower(user_name) = …`
 * silently became a filter over the whole tenant. This runs, on the migrated
 * catalog, as the runtime role inside withTenant, EXPLAIN for the statements
 * the real code sends (captured at the query runner, then executed as usual)
 * and fails on a sequential scan of a tenant table, on a key lookup whose
 * index condition names nothing but the tenant, and on a Sort of a whole
 * tenant's rows where an index gives the order. No planner setting is changed.
 */

let t: TestDatabase;
let tenantId: string;
let someUserId: string;
let someGroupId: string;
let tenantTables: Set<string>;
let indexTable: Map<string, string>;
let appId: string;

// The tenant is a few percent of each table, as on a shared installation: a plan that reads
// the tenant's part through an index on tenant_id is then cheaper than a sequential scan, and
// a sequential scan would betray a condition no index can evaluate under RLS.
const USERS = 2000;
const GROUPS = 2000;
const EVENTS = 1000;
const NEIGHBOURS = 9;
const NEIGHBOUR_ROWS = 3000;
// Events too: with 300 per neighbour the tenant held 27% of the trail, where a sequential scan is the planner's
// honest choice for a capped count, and the guard failed by chance of statistics.
const NEIGHBOUR_EVENTS = 3000;
// Audit events name one of ACTORS actors (2% of a trail each, like a busy admin) and a target of their own.
const ACTORS = 50;
// Login traces (the admin API's and the portal's lists), over CONNECTIONS connections per tenant.
const TRACES = 2000;
const NEIGHBOUR_TRACES = 3000;
const CONNECTIONS = 5;

async function seed(
  id: string,
  n: number,
  users: number,
  groups: number,
  events: number,
  traces: number,
): Promise<void> {
  await t.db.withTenant(id, async (em) => {
    // One webhook delivery per user, a tenth of them given up.
    await em.query(
      `INSERT INTO webhook_outbox (tenant_id, event_id, event_type, app_id, payload, status)
       SELECT $1, gen_random_uuid(), 'user.created', $2, '{}', CASE WHEN i % 10 = 0 THEN 'failed' ELSE 'delivered' END
         FROM generate_series(1, $3) AS i`,
      [id, appId, users],
    );
    await em.query(
      `INSERT INTO users (tenant_id, user_name, email, external_id, display_name, given_name, family_name,
                          status, attributes)
       SELECT $1, 'user' || i || '@t' || $2 || '.test', 'user' || i || '@t' || $2 || '.test', 'ext-' || i,
              'User ' || i, 'Given' || i, 'Family' || i,
              CASE WHEN i % 50 = 0 THEN 'deleted' WHEN i % 20 = 0 THEN 'suspended' ELSE 'active' END,
              jsonb_build_object('title', 'Title ' || (i % 7), 'emails', jsonb_build_array(jsonb_build_object(
                'value', 'user' || i || '@t' || $2 || '.test', 'type', 'work', 'primary', true)))
         FROM generate_series(1, $3) AS i`,
      [id, n, users],
    );
    await em.query(
      `INSERT INTO groups (tenant_id, display_name, external_id, source)
       SELECT $1, 'Group ' || i, 'gext-' || i, CASE WHEN i % 10 = 0 THEN 'idp' ELSE 'scim' END
         FROM generate_series(1, $2) AS i`,
      [id, groups],
    );
    await em.query(
      `INSERT INTO group_members (tenant_id, group_id, user_id)
       SELECT $1, g.id, u.id FROM users u
         JOIN groups g ON g.external_id = 'gext-' || (substring(u.external_id FROM 5)::int % $2 + 1)`,
      [id, groups],
    );
    await em.query(
      `INSERT INTO audit_events (tenant_id, actor_type, actor_id, action, target_type, target_id)
       SELECT $1, 'operator', 'actor-' || (i % $3),
              (ARRAY['user.created', 'domain.verified', 'scim.user.patched'])[i % 3 + 1], 'user', i::text
         FROM generate_series(1, $2) AS i`,
      [id, events, ACTORS],
    );
    // Newest first a minute apart; one login in five failed; the support reference is the request id.
    await em.query(
      `INSERT INTO login_traces (tenant_id, connection_id, support_ref, protocol, kind, outcome, steps,
                                 created_at, expires_at)
       SELECT $1, ('00000000-0000-4000-8000-00000000000' || (i % $3))::uuid, 'req-' || $2 || '-' || i, 'saml',
              'sp_initiated', CASE WHEN i % 5 = 0 THEN 'saml_signature_invalid' ELSE 'success' END, '[]',
              now() - i * interval '1 minute', now() + interval '30 days'
         FROM generate_series(1, $4) AS i`,
      [id, n, CONNECTIONS, traces],
    );
  });
  // Issue 13: events are chained after their transaction commits; the page lists sealed events.
  await sealTrail(t.db, id);
}

beforeAll(async () => {
  t = await createTestDatabase();
  tenantId = await createTenant(t.db);
  const [app] = await t.db.withPlatform((em) =>
    em.query<{ id: string }[]>(`INSERT INTO apps (name) VALUES ('guard') RETURNING id`),
  );
  appId = app?.id ?? '';
  await seed(tenantId, 0, USERS, GROUPS, EVENTS, TRACES);
  for (let n = 1; n <= NEIGHBOURS; n++)
    await seed(
      await createTenant(t.db),
      n,
      NEIGHBOUR_ROWS,
      NEIGHBOUR_ROWS,
      NEIGHBOUR_EVENTS,
      NEIGHBOUR_TRACES,
    );
  await t.asOwner(
    'VACUUM (ANALYZE) users, groups, group_members, audit_events, webhook_outbox, login_traces',
  );
  const tables = await t.asOwner<{ table: string }>(
    `SELECT DISTINCT c.relname AS table FROM pg_class c
       JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public'
       JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped
      WHERE c.relkind IN ('r', 'p')`,
  );
  tenantTables = new Set(tables.map((r) => r.table));
  const indexes = await t.asOwner<{ index: string; table: string }>(
    `SELECT indexname AS index, tablename AS table FROM pg_indexes WHERE schemaname = 'public'`,
  );
  indexTable = new Map(indexes.map((r) => [r.index, r.table]));
  const [user] = await t.db.withTenant(tenantId, (em) =>
    em.query<{ id: string }[]>(`SELECT id FROM users WHERE user_name = 'user42@t0.test'`),
  );
  const [group] = await t.db.withTenant(tenantId, (em) =>
    em.query<{ id: string }[]>(`SELECT id FROM groups WHERE display_name = 'Group 42'`),
  );
  someUserId = user?.id ?? '';
  someGroupId = group?.id ?? '';
}, 120_000);
afterAll(() => t.close());

interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  'Index Name'?: string;
  'Index Cond'?: string;
  Plans?: PlanNode[];
}

interface Captured {
  sql: string;
  plan: PlanNode;
}

/**
 * Runs `work` in the tenant's transaction; every read or write it sends is
 * EXPLAINed first, then sent, or (explainOnly) answered with no rows, so that
 * a list also sends its count and thousands of filters stay quick.
 */
async function captured(
  work: (em: EntityManager) => Promise<unknown>,
  options: { explainOnly?: boolean } = {},
): Promise<Captured[]> {
  return t.db.withTenant(tenantId, async (em) => {
    const runner = em.queryRunner;
    if (!runner) throw new Error('withTenant gave no query runner');
    const original = runner.query.bind(runner);
    const send = original as (sql: string, params?: unknown[], structured?: boolean) => Promise<unknown>;
    const seen: Captured[] = [];
    runner.query = (async (sql: string, params?: unknown[], structured?: boolean) => {
      if (/^\s*(SELECT|WITH|UPDATE|DELETE)\b/i.test(sql) && !sql.includes('set_config')) {
        const rows = (await send(`EXPLAIN (FORMAT JSON) ${sql}`, params)) as {
          'QUERY PLAN': { Plan: PlanNode }[];
        }[];
        const plan = rows[0]?.['QUERY PLAN'][0]?.Plan;
        if (plan) seen.push({ sql, plan });
        if (options.explainOnly) return [];
      }
      return send(sql, params, structured);
    }) as typeof runner.query;
    try {
      await work(em);
    } finally {
      runner.query = original;
    }
    return seen;
  });
}

function nodes(plan: PlanNode): PlanNode[] {
  return [plan, ...(plan.Plans ?? []).flatMap(nodes)];
}

const tableOf = (node: PlanNode) =>
  node['Relation Name'] ?? (node['Index Name'] ? indexTable.get(node['Index Name']) : undefined);

/** An index condition that narrows more than the tenant (the RLS policy's own condition). */
const narrowsBeyondTenant = (cond: string | undefined) =>
  cond !== undefined && /\b(?!tenant_id\b)[a-z_]+ (=|>=|<=|>|<|~>=~|~<~) /.test(cond);

interface Expectation {
  /** Name shown on failure. */
  name: string;
  /** A key lookup: every index scan of this table must narrow beyond tenant_id. */
  probes?: string;
  /** A list page in index order: no Sort node, and no window count over every match. */
  ordered?: boolean;
}

function problemsOf(expect: Expectation, statements: Captured[]): string[] {
  const problems: string[] = [];
  if (statements.length === 0) problems.push(`${expect.name}: sent no statement to explain`);
  for (const { sql, plan } of statements) {
    const all = nodes(plan);
    const where = `${expect.name} [${sql.replace(/\s+/g, ' ').slice(0, 160)}]`;
    for (const node of all)
      if (node['Node Type'] === 'Seq Scan' && tenantTables.has(node['Relation Name'] ?? ''))
        problems.push(`${where}: Seq Scan on ${node['Relation Name']}`);
    if (expect.probes) {
      const scans = all.filter(
        (n) => /Index/.test(n['Node Type']) && n['Node Type'] !== 'BitmapOr' && tableOf(n) === expect.probes,
      );
      if (scans.length === 0) problems.push(`${where}: no index scan of ${expect.probes}`);
      for (const scan of scans)
        if (!narrowsBeyondTenant(scan['Index Cond']))
          problems.push(`${where}: ${scan['Index Name']} scanned on ${scan['Index Cond'] ?? 'no condition'}`);
    }
    if (expect.ordered)
      for (const node of all)
        if (node['Node Type'] === 'Sort') problems.push(`${where}: Sort of the tenant's rows`);
        // count(*) OVER () reads every match to answer one page (the audit list's 13 MB spill).
        else if (node['Node Type'] === 'WindowAgg') problems.push(`${where}: a window count of every match`);
  }
  return problems;
}

type Attribute = InstanceType<typeof SCIMMY.Types.Attribute>;

/** Every filterable path of a schema: attributes, and sub-attributes of complex ones. */
function pathsOf(attributes: readonly Attribute[], prefix = ''): { path: string; type: string }[] {
  const out: { path: string; type: string }[] = [];
  for (const a of attributes) {
    if (prefix && ['schemas', 'id', 'externalId', 'meta'].includes(a.name)) continue;
    const path = `${prefix}${a.name}`;
    if (String(a.type) === 'complex') {
      if (a.config.multiValued) out.push({ path, type: 'string' });
      for (const sub of a.subAttributes ?? [])
        out.push({ path: `${path}.${sub.name}`, type: String(sub.type) });
    } else out.push({ path, type: String(a.type) });
  }
  return out;
}

const OPS: Record<string, string[]> = {
  boolean: ['eq', 'ne', 'pr'],
  dateTime: ['eq', 'ne', 'gt', 'ge', 'lt', 'le', 'pr'],
  string: ['eq', 'ne', 'co', 'sw', 'ew', 'gt', 'ge', 'lt', 'le', 'pr'],
};
const VALUE: Record<string, string> = { boolean: 'true', dateTime: '"2026-01-01T00:00:00Z"' };

/** Key lookups: these must probe an index beyond the tenant. */
const PROBES = new Set([
  'userName eq',
  'userName sw',
  'externalId eq',
  'displayName eq',
  'displayName sw',
  'id eq',
]);

/** Each filter a client can send on one attribute and operator, with its SQL from the real translator. */
function filterCases(
  kind: 'Users' | 'Groups',
  resolver: FilterResolver,
): { name: string; filter: string; probe: boolean }[] {
  const attributes =
    kind === 'Users'
      ? [
          ...pathsOf(SCIMMY.Schemas.User.definition.attributes),
          ...pathsOf(SCIMMY.Schemas.EnterpriseUser.definition.attributes, `${ENTERPRISE_USER}:`),
        ]
      : pathsOf(SCIMMY.Schemas.Group.definition.attributes);
  const cases: { name: string; filter: string; probe: boolean }[] = [];
  for (const { path, type } of attributes) {
    const family = type === 'boolean' || type === 'dateTime' ? type : 'string';
    for (const op of OPS[family] ?? []) {
      const value =
        VALUE[family] ??
        JSON.stringify(
          path === 'id'
            ? kind === 'Users'
              ? someUserId
              : someGroupId
            : kind === 'Users'
              ? 'user42@t0.test'
              : 'Group 42',
        );
      const filter = op === 'pr' ? `${path} pr` : `${path} ${op} ${value}`;
      try {
        filterToSql(parseFilter(filter), resolver, new SqlParams());
      } catch {
        continue; // the translator refuses it (400 invalidFilter): nothing reaches the database
      }
      cases.push({ name: `${kind} ${filter}`, filter, probe: PROBES.has(`${path} ${op}`) });
    }
  }
  cases.push(
    {
      name: `${kind} value filter`,
      filter:
        kind === 'Users'
          ? 'emails[type eq "work" and value eq "user42@t0.test"]'
          : `members[value eq "${someUserId}"]`,
      probe: false,
    },
    {
      name: `${kind} Entra/Okta combined`,
      filter:
        kind === 'Users' ? 'userName eq "USER42@t0.test" and active eq true' : 'displayName eq "group 42"',
      probe: true,
    },
  );
  return cases;
}

async function listPlans(
  kind: 'Users' | 'Groups',
  filter: string | null,
  options: { sortBy?: string; offset?: number; explainOnly?: boolean } = {},
): Promise<Captured[]> {
  const resolver = kind === 'Users' ? userFilterResolver : groupFilterResolver;
  const params = new SqlParams();
  const where = filter ? filterToSql(parseFilter(filter), resolver, params) : 'true';
  const orderBy = options.sortBy ? sortToSql(options.sortBy, 'ascending', resolver) : undefined;
  const query = { where, params: params.values, orderBy, offset: options.offset ?? 100, limit: 100 };
  return captured(
    (em) => (kind === 'Users' ? listUsers(em, query) : listGroups(em, { ...query, source: 'scim' })),
    { explainOnly: options.explainOnly },
  );
}

describe('the EXPLAIN guard: lookups keep their indexes under row-level security', () => {
  it('seeds a tenant among neighbours, and sees it only through withTenant', async () => {
    const [counted] = await t.db.withTenant(tenantId, (em) =>
      em.query<{ n: string }[]>('SELECT count(*) AS n FROM users'),
    );
    expect(Number(counted?.n)).toBe(USERS);
    expect(someUserId).toMatch(/^[0-9a-f-]{36}$/);
    expect(tenantTables.has('users') && tenantTables.has('audit_events')).toBe(true);
  });

  it.each(['Users', 'Groups'] as const)(
    'plans every SCIM filter on %s without a sequential scan, key lookups as index probes',
    async (kind) => {
      const cases = filterCases(kind, kind === 'Users' ? userFilterResolver : groupFilterResolver);
      // Every core attribute with at least eq: the enumeration is not silently empty.
      expect(cases.length).toBeGreaterThan(kind === 'Users' ? 300 : 40);
      const problems: string[] = [];
      for (const c of cases)
        problems.push(
          ...problemsOf(
            { name: c.name, probes: c.probe ? kind.toLowerCase() : undefined },
            await listPlans(kind, c.filter, { explainOnly: true }),
          ),
        );
      expect(problems).toEqual([]);
    },
  );

  it('plans the directory lookups by id, user name, external id and group as index probes', async () => {
    const lookups: [string, string, (em: EntityManager) => Promise<unknown>][] = [
      ['findUser', 'users', (em) => findUser(em, someUserId)],
      ['findUser lock', 'users', (em) => findUser(em, someUserId, { lock: true })],
      ['findUserByUserName', 'users', (em) => findUserByUserName(em, 'User42@t0.test')],
      ['userNameInUse (JIT)', 'users', (em) => userNameInUse(em, 'user42@t0.test')],
      ['findUsersByEmail (JIT)', 'users', (em) => findUsersByEmail(em, 'USER42@t0.test')],
      ['findGroup', 'groups', (em) => findGroup(em, someGroupId, { source: 'scim' })],
      ['findGroupsByExternalId', 'groups', (em) => findGroupsByExternalId(em, 'idp', ['gext-10', 'gext-20'])],
    ];
    const problems: string[] = [];
    for (const [name, table, work] of lookups)
      problems.push(...problemsOf({ name, probes: table }, await captured(work)));
    expect(problems).toEqual([]);
  });

  it('pages unfiltered lists in index order, without sorting the tenant', async () => {
    const problems = [
      ...problemsOf({ name: 'Users page', ordered: true }, await listPlans('Users', null)),
      ...problemsOf({ name: 'Groups page', ordered: true }, await listPlans('Groups', null)),
      ...problemsOf(
        { name: 'Users sorted by userName', ordered: true },
        await listPlans('Users', null, { sortBy: 'userName' }),
      ),
      ...problemsOf(
        { name: 'Groups sorted by displayName', ordered: true },
        await listPlans('Groups', null, { sortBy: 'displayName' }),
      ),
    ];
    expect(problems).toEqual([]);
  });

  it('pages the audit trail along (tenant_id, seq), counting at most up to the cap', async () => {
    const page = (q: Partial<AuditEventQuery>) =>
      captured((em) => auditEventsPage(em, tenantId, { limit: 25, offset: 0, order: 'desc', ...q }));
    const [first] = await t.db.withTenant(tenantId, (em) =>
      auditEventsPage(em, tenantId, { limit: 25, offset: 0, order: 'desc' }).then((p) => [p]),
    );
    expect(first?.data).toHaveLength(25);
    expect(first?.next_seq).toBe(EVENTS - 24);
    const problems = [
      ...problemsOf({ name: 'audit first page', ordered: true }, await page({})),
      ...problemsOf(
        { name: 'audit next page', ordered: true },
        await page({ afterSeq: first?.next_seq ?? 0 }),
      ),
      ...problemsOf(
        { name: 'audit oldest first', ordered: true },
        await page({ order: 'asc', afterSeq: 100 }),
      ),
      ...problemsOf({ name: 'audit by action' }, await page({ action: 'domain.verified' })),
      ...problemsOf({ name: 'audit by prefix' }, await page({ action: 'scim.*' })),
      ...problemsOf(
        { name: 'audit since', ordered: true },
        await page({ since: new Date(Date.now() - 3_600_000) }),
      ),
    ];
    expect(problems).toEqual([]);
  });

  it('pages the trail of one actor and of one target along their own indexes', async () => {
    // The portal's audit filters (actor, target; src/portal/audit.pages.ts): a page of 5 so that a next
    // page and the capped count are sent too. Without (tenant_id, actor_id, seq) the first page walks the
    // tenant's whole trail on (tenant_id, seq), filtering: the probe below fails on that.
    const page = (q: Partial<AuditEventQuery>) =>
      captured((em) => auditEventsPage(em, tenantId, { limit: 5, offset: 0, order: 'desc', ...q }));
    const [byActor] = await t.db.withTenant(tenantId, (em) =>
      auditEventsPage(em, tenantId, { limit: 5, offset: 0, order: 'desc', actorId: 'actor-7' }).then((p) => [
        p,
      ]),
    );
    expect(byActor?.total).toBe(EVENTS / ACTORS);
    expect(byActor?.data.map((e) => e.actor.id)).toEqual(Array(5).fill('actor-7'));
    const byTarget = await t.db.withTenant(tenantId, (em) =>
      auditEventsPage(em, tenantId, { limit: 5, offset: 0, order: 'desc', targetId: '42' }),
    );
    expect(byTarget.data.map((e) => e.target?.id)).toEqual(['42']);
    const audit = { probes: 'audit_events', ordered: true };
    // A later page may be a bitmap range of the actor's remaining events and a Sort of those few (the
    // planner's honest choice for 15 rows): bounded by the actor's index range, never the tenant's rows.
    const later = { probes: 'audit_events' };
    const problems = [
      ...problemsOf({ name: 'audit by actor', ...audit }, await page({ actorId: 'actor-7' })),
      ...problemsOf(
        { name: 'audit by actor, next page', ...later },
        await page({ actorId: 'actor-7', afterSeq: byActor?.next_seq ?? 0 }),
      ),
      ...problemsOf(
        { name: 'audit by actor, oldest first', ...later },
        await page({ actorId: 'actor-7', order: 'asc', afterSeq: 100 }),
      ),
      ...problemsOf({ name: 'audit by an unknown actor', ...audit }, await page({ actorId: 'nobody' })),
      ...problemsOf({ name: 'audit by target', ...audit }, await page({ targetId: '42' })),
      ...problemsOf(
        { name: 'audit by actor and action', probes: 'audit_events' },
        await page({ actorId: 'actor-7', action: 'domain.verified' }),
      ),
    ];
    expect(problems).toEqual([]);
  });

  it('pages login traces along (tenant_id, created_at, id) and finds them by support reference', async () => {
    // listLoginTraces opens its own tenant transaction: here it is handed the captured one.
    const within = (em: EntityManager) =>
      ({
        withTenant: (_: string, fn: (em: EntityManager) => Promise<unknown>) => fn(em),
      }) as unknown as Database;
    const list = (q: Partial<TraceListQuery>) =>
      captured((em) => listLoginTraces(within(em), tenantId, { limit: 50, ...q }));
    const first = await listLoginTraces(t.db, tenantId, { limit: 50 });
    expect(first.data).toHaveLength(50);
    const cursor = first.next_cursor ?? '';
    expect(cursor).not.toBe('');
    const second = await listLoginTraces(t.db, tenantId, { limit: 50, cursor });
    expect(second.data[0]?.support_ref).toBe('req-0-51');
    const byRef = await listLoginTraces(t.db, tenantId, { limit: 10, supportRef: 'req-0-42' });
    expect(byRef.data.map((r) => r.support_ref)).toEqual(['req-0-42']);
    const problems = [
      // Admin GET …/login-traces and the portal's /sso/traces: newest first, then by cursor.
      ...problemsOf({ name: 'traces first page', ordered: true }, await list({})),
      ...problemsOf({ name: 'traces next page', ordered: true }, await list({ cursor })),
      ...problemsOf(
        { name: 'traces of one connection', ordered: true },
        await list({ connectionId: '00000000-0000-4000-8000-000000000003' }),
      ),
      ...problemsOf({ name: 'failed traces', ordered: true }, await list({ outcome: 'failure' })),
      // ?support_ref= (admin), /sso/traces/:ref (portal, 10), and the test login's own trace (portal, 1).
      ...problemsOf(
        { name: 'traces by support reference', probes: 'login_traces' },
        await list({ limit: 10, supportRef: 'req-0-42' }),
      ),
      ...problemsOf(
        { name: 'trace of a test login', probes: 'login_traces' },
        await list({
          limit: 1,
          supportRef: 'req-0-43',
          connectionId: '00000000-0000-4000-8000-000000000003',
        }),
      ),
      // One trace by its id (admin GET …/login-traces/{traceId}).
      ...problemsOf(
        { name: 'trace by id', probes: 'login_traces' },
        await captured((em) => findLoginTrace(within(em), tenantId, byRef.data[0]?.id ?? '')),
      ),
    ];
    expect(problems).toEqual([]);
  });

  it('pages deliveries along (tenant_id, created_at, id), counting at most up to the cap', async () => {
    const page = (q: Partial<DeliveryQuery>) =>
      captured((em) => listDeliveries(em, WEBHOOK_DELIVERIES, { limit: 50, offset: 0, ...q }));
    const problems = [
      ...problemsOf({ name: 'deliveries page', ordered: true }, await page({})),
      ...problemsOf({ name: 'deliveries deep page', ordered: true }, await page({ offset: 500 })),
      ...problemsOf({ name: 'deliveries given up', ordered: true }, await page({ status: 'failed' })),
    ];
    expect(problems).toEqual([]);
  });
});
