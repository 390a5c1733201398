import { DataSource, type Logger } from 'typeorm';
import { Database } from '../../src/db/database.js';
import { ENTITIES } from '../../src/entities.js';
import { LIST_MEMBER_BUDGET } from '../../src/scim/scim-groups.resource.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import {
  createTenant,
  GROUP_SCHEMA,
  issueToken,
  newUser,
  scimClient,
  startNode,
  type ScimClient,
  type ScimNode,
} from './support.js';

/**
 * Issue 10, large groups: listing /Groups never reads every member of every
 * group. Every statement the app sends to PostgreSQL is recorded (TypeORM's
 * logger on the node's own pool), so "members were not read" is a fact about
 * the SQL issued, not about the response alone.
 */
type Json = Record<string, unknown>;

class StatementRecorder implements Logger {
  statements: { sql: string; params: unknown[] }[] = [];
  logQuery(sql: string, params?: unknown[]): void {
    this.statements.push({ sql, params: params ?? [] });
  }
  logQueryError(): void {}
  logQuerySlow(): void {}
  logSchemaBuild(): void {}
  logMigration(): void {}
  log(): void {}
}

const recorder = new StatementRecorder();
let t: TestDatabase;
let ds: DataSource;
let node: ScimNode;
let a: ScimClient;
let b: ScimClient;
let tenantA: string;
/** A's groups by name, with their member counts. */
const SIZES: Record<string, number> = {
  'g1 big': Math.floor(LIST_MEMBER_BUDGET * 0.75),
  'g2 half': Math.floor(LIST_MEMBER_BUDGET * 0.5),
  'g3 small': 10,
  'g4 huge': Math.floor(LIST_MEMBER_BUDGET * 1.25),
  'g5 empty': 0,
};
const groupIds: Record<string, string> = {};
let groupOfB: string;

/** The statements the app sent while `fn` ran that read group_members. */
async function memberReads(fn: () => Promise<unknown>): Promise<{ sql: string; params: unknown[] }[]> {
  const before = recorder.statements.length;
  await fn();
  return recorder.statements.slice(before).filter((s) => /\bgroup_members\b/i.test(s.sql));
}

beforeAll(async () => {
  t = await createTestDatabase();
  ds = new DataSource({
    type: 'postgres',
    url: t.appUrl,
    entities: ENTITIES,
    poolSize: 5,
    logger: recorder,
  });
  await ds.initialize();
  node = await startNode({ ...t, db: new Database(ds) });
  tenantA = await createTenant(t);
  const tenantB = await createTenant(t);
  a = scimClient(node.app, tenantA, (await issueToken(t.db, tenantA)).token);
  b = scimClient(node.app, tenantB, (await issueToken(t.db, tenantB)).token);
  const total = Math.max(...Object.values(SIZES));
  // Users and memberships in bulk, as setup: what is under test is how they are read.
  await t.db.withTenant(tenantA, (em) =>
    em.query(
      `INSERT INTO users (tenant_id, user_name) SELECT $1, 'member' || n || '@acme.test' FROM generate_series(1, $2) n`,
      [tenantA, total],
    ),
  );
  for (const [name, size] of Object.entries(SIZES)) {
    const id = (await a.post('/Groups', { schemas: [GROUP_SCHEMA], displayName: name }).expect(201)).body
      .id as string;
    groupIds[name] = id;
    await t.db.withTenant(tenantA, (em) =>
      em.query(
        `INSERT INTO group_members (tenant_id, group_id, user_id)
           SELECT $1, $2, id FROM users ORDER BY user_name LIMIT $3`,
        [tenantA, id, size],
      ),
    );
  }
  const userOfB = (await b.post('/Users', newUser('b@b.test')).expect(201)).body.id as string;
  groupOfB = (
    await b
      .post('/Groups', { schemas: [GROUP_SCHEMA], displayName: 'g0 of b', members: [{ value: userOfB }] })
      .expect(201)
  ).body.id as string;
});
afterAll(async () => {
  await node.close();
  await ds.destroy();
  await t.close();
});

const names = (body: { Resources?: Json[] }) => (body.Resources ?? []).map((r) => String(r.displayName));
const memberCount = (r: Json) => (Array.isArray(r.members) ? r.members.length : 0);

describe('SCIM /Groups with large groups', () => {
  it('reads group_members when members are returned (the recorder sees member reads)', async () => {
    const reads = await memberReads(() => a.get('/Groups?sortBy=displayName&count=3').expect(200));
    expect(reads.length).toBeGreaterThan(0);
  });

  it.each([
    ['excludedAttributes=members', 'excludedAttributes=members'],
    ['the URN-prefixed form', `excludedAttributes=${GROUP_SCHEMA}:members`],
    ['attributes that leave members out', 'attributes=displayName,externalId'],
  ])('lists every group without reading a single member with %s', async (_what, query) => {
    let body: { Resources?: Json[]; totalResults?: number } = {};
    const reads = await memberReads(async () => {
      body = (await a.get(`/Groups?${query}&count=100`).expect(200)).body as typeof body;
    });
    expect(reads).toEqual([]);
    expect(body.totalResults).toBe(Object.keys(SIZES).length);
    expect(names(body).sort()).toEqual(Object.keys(SIZES).sort());
    expect((body.Resources ?? []).filter((r) => 'members' in r)).toEqual([]);
  });

  it("answers Entra's lookup (filter + excludedAttributes=members) without reading members", async () => {
    let body: { Resources?: Json[] } = {};
    const filter = encodeURIComponent('displayName eq "g4 huge"');
    const reads = await memberReads(async () => {
      body = (await a.get(`/Groups?excludedAttributes=members&filter=${filter}`).expect(200))
        .body as typeof body;
    });
    expect(reads).toEqual([]);
    expect(names(body)).toEqual(['g4 huge']);
  });

  it('cuts a page with members at the member budget, each group whole, the first always', async () => {
    const page = async (startIndex: number) =>
      (await a.get(`/Groups?sortBy=displayName&startIndex=${startIndex}&count=100`).expect(200)).body as {
        Resources: Json[];
        totalResults: number;
        itemsPerPage: number;
        startIndex: number;
      };
    const first = await page(1);
    expect(first).toMatchObject({ totalResults: 5, itemsPerPage: 1, startIndex: 1 });
    expect(names(first)).toEqual(['g1 big']);
    const second = await page(2);
    // g2 (½ budget) does not fit after nothing: it leads; g3 fits; g4 would exceed the rest.
    expect(names(second)).toEqual(['g2 half', 'g3 small']);
    const fourth = await page(4);
    // A group larger than the budget still comes whole at the head of its page; an empty one still fits.
    expect(names(fourth)).toEqual(['g4 huge', 'g5 empty']);
    expect(memberCount(fourth.Resources[0] as Json)).toBe(SIZES['g4 huge']);
  });

  it('reads at most the budget (plus one row per group) of members for a page', async () => {
    const reads = await memberReads(() =>
      a.get('/Groups?sortBy=displayName&startIndex=2&count=100').expect(200),
    );
    // The page's first group reads whole; every later read is limited to what is left of the budget + 1.
    const [head, ...rest] = reads;
    expect(head?.params[1]).toBeNull();
    expect(rest.length).toBeGreaterThan(0);
    for (const r of rest) expect(Number(r.params[1])).toBeLessThanOrEqual(LIST_MEMBER_BUDGET + 1);
    const limits = rest.map((r) => Number(r.params[1]));
    expect(limits.reduce((x, y) => x + y, 0)).toBeLessThanOrEqual(LIST_MEMBER_BUDGET + rest.length);
  });

  it('stops reading a limited group after the limit (EXPLAIN ANALYZE as the runtime role, under RLS)', async () => {
    const reads = await memberReads(() =>
      a.get('/Groups?sortBy=displayName&startIndex=2&count=100').expect(200),
    );
    const limited = reads.find((r) => r.params[1] !== null);
    if (!limited) throw new Error('no limited member read was issued');
    // The same statement the app sent, on the largest group, limited to 11 rows.
    const [row] = await t.db.withTenant(tenantA, (em) =>
      em.query<{ 'QUERY PLAN': unknown }[]>(`EXPLAIN (ANALYZE, FORMAT JSON) ${limited.sql}`, [
        groupIds['g4 huge'],
        11,
      ]),
    );
    type PlanNode = {
      'Node Type': string;
      'Relation Name'?: string;
      'Actual Rows': number;
      'Actual Loops': number;
      Plans?: PlanNode[];
    };
    const nodes: PlanNode[] = [];
    const walk = (n: PlanNode) => {
      nodes.push(n);
      for (const child of n.Plans ?? []) walk(child);
    };
    walk((row?.['QUERY PLAN'] as { Plan: PlanNode }[])[0]?.Plan as PlanNode);
    const membersRead = nodes
      .filter((n) => n['Relation Name'] === 'group_members')
      .reduce((sum, n) => sum + n['Actual Rows'] * n['Actual Loops'], 0);
    expect(membersRead).toBeGreaterThan(0);
    expect(membersRead).toBeLessThanOrEqual(11);
    expect(nodes.map((n) => n['Node Type'])).not.toContain('Sort');
  });

  it('pages by itemsPerPage through every group exactly once, each with all its members', async () => {
    const seen: Record<string, number> = {};
    let startIndex = 1;
    for (let pages = 0; pages < 10; pages++) {
      const body = (await a.get(`/Groups?startIndex=${startIndex}&count=2`).expect(200)).body as {
        Resources?: Json[];
        itemsPerPage: number;
        totalResults: number;
      };
      for (const r of body.Resources ?? []) {
        expect(seen[String(r.displayName)]).toBeUndefined();
        seen[String(r.displayName)] = memberCount(r);
      }
      startIndex += body.itemsPerPage;
      if (startIndex > body.totalResults) break;
    }
    expect(seen).toEqual(SIZES);
  });

  it('GET /Groups/{id} returns every member of a group larger than the budget', async () => {
    const res = await a.get(`/Groups/${groupIds['g4 huge']}`).expect(200);
    expect(memberCount(res.body as Json)).toBe(SIZES['g4 huge']);
  });

  it("never lists another tenant's group or members, with or without members", async () => {
    for (const query of ['count=100', 'count=100&excludedAttributes=members', 'sortBy=displayName']) {
      const body = (await a.get(`/Groups?${query}`).expect(200)).body as { Resources?: Json[] };
      expect((body.Resources ?? []).map((r) => r.id)).not.toContain(groupOfB);
    }
    const fromB = (await b.get('/Groups').expect(200)).body as { Resources: Json[]; totalResults: number };
    expect(fromB.totalResults).toBe(1);
    expect(fromB.Resources.map((r) => r.id)).toEqual([groupOfB]);
    expect(memberCount(fromB.Resources[0] as Json)).toBe(1);
    await b.get(`/Groups/${groupIds['g1 big']}`).expect(404);
  });
});
