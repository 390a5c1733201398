import fc from 'fast-check';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { fuzzRuns, fuzzSeed } from './hardening-support.js';
import {
  createTenant,
  ENTERPRISE,
  ERROR,
  GROUP_SCHEMA,
  issueToken,
  newUser,
  patchOp,
  scimClient,
  startNode,
  USER_SCHEMA,
  type ScimClient,
  type ScimNode,
} from './support.js';

/**
 * RFC 7644 §3.4.2.3 sorting, done in SQL: every sortable path in both orders
 * against the same list sorted here by the RFC's rule, ties broken by id,
 * paging after the sort, /.search, refusals, tenant isolation, and the
 * ServiceProviderConfig's claims checked against the live endpoints.
 */
type Json = Record<string, unknown>;
type Order = 'ascending' | 'descending';

const MAX_PAGE = 7;
let t: TestDatabase;
let node: ScimNode;
let a: ScimClient;
let b: ScimClient;
/** Every user of tenant A as listed (all attributes), and B's ids. */
let usersA: Json[] = [];
const idsB: string[] = [];

const WORD = fc.constantFrom('', 'smith', 'Smith', 'SMITH', 'adams', 'Zed', 'b', 'B-1', 'a_b', 'a b', 'Mc');
const EXACT = fc.constantFrom('X', 'x', 'é', '\uff21', '\u{1f600}', 'a1', 'A1', 'a10', 'a9', 'Ω');
const userArb = fc.record({
  handle: fc.constantFrom('amy', 'Bob', 'carl', 'Dee', 'eve', 'FAY', 'gus', '_x', '0'),
  givenName: fc.option(WORD, { nil: undefined }),
  familyName: fc.option(WORD, { nil: undefined }),
  displayName: fc.option(WORD, { nil: undefined }),
  externalId: fc.option(EXACT, { nil: undefined }),
  title: fc.option(WORD, { nil: undefined }),
  employeeNumber: fc.option(fc.constantFrom('1', '10', '9', '01', 'a'), { nil: undefined }),
  active: fc.boolean(),
  emails: fc.array(
    fc.record({ local: fc.constantFrom('Zoe', 'al', 'AL', 'bo', 'c'), primary: fc.boolean() }),
    { maxLength: 3 },
  ),
});
type GeneratedUser = typeof userArb extends fc.Arbitrary<infer U> ? U : never;

function scimUser(u: GeneratedUser, i: number): Json {
  // At most one primary email (RFC 7643 §2.4): the first flagged one.
  const primaryAt = u.emails.findIndex((e) => e.primary);
  return newUser(`${u.handle}${i}@acme.test`, {
    name: {
      ...(u.givenName !== undefined ? { givenName: u.givenName } : {}),
      ...(u.familyName !== undefined ? { familyName: u.familyName } : {}),
    },
    ...(u.displayName !== undefined ? { displayName: u.displayName } : {}),
    ...(u.externalId !== undefined ? { externalId: `${u.externalId}${i % 3}` } : {}),
    ...(u.title !== undefined ? { title: u.title } : {}),
    ...(u.employeeNumber !== undefined ? { [ENTERPRISE]: { employeeNumber: u.employeeNumber } } : {}),
    active: u.active,
    emails: u.emails.map((e, j) => ({
      value: `${e.local}${j}@mail.test`,
      type: j === 0 ? 'work' : 'home',
      ...(j === primaryAt ? { primary: true } : {}),
    })),
  });
}

beforeAll(async () => {
  t = await createTestDatabase();
  node = await startNode(t, { env: { GATEHOUSE_SCIM_MAX_PAGE_SIZE: String(MAX_PAGE) } });
  const tenantA = await createTenant(t);
  const tenantB = await createTenant(t);
  a = scimClient(node.app, tenantA, (await issueToken(t.db, tenantA)).token);
  b = scimClient(node.app, tenantB, (await issueToken(t.db, tenantB)).token);
  const generated = fc.sample(fc.array(userArb, { minLength: 24, maxLength: 24 }), {
    seed: fuzzSeed(7070),
    numRuns: 1,
  })[0] as GeneratedUser[];
  for (const [i, u] of generated.entries()) await a.post('/Users', scimUser(u, i)).expect(201);
  // B's names sort before and between A's: a leak would show in A's pages.
  for (const name of ['AAA', 'aaa0', 'Smith', '0000'])
    idsB.push(
      (
        await b
          .post('/Users', newUser(`${name}@b.test`, { name: { familyName: name }, externalId: name }))
          .expect(201)
      ).body.id as string,
    );
  usersA = await everyUser(a);
});
afterAll(async () => {
  await node.close();
  await t.close();
});

/** Every user of a tenant, page by page (pages are at most MAX_PAGE long). */
async function everyUser(client: ScimClient, query = ''): Promise<Json[]> {
  const all: Json[] = [];
  for (let start = 1; ; start += MAX_PAGE) {
    const res = await client.get(`/Users?startIndex=${start}&count=${MAX_PAGE}${query}`).expect(200);
    all.push(...(res.body.Resources as Json[]));
    if (all.length >= (res.body.totalResults as number)) return all;
  }
}

// ---- The RFC's rule, written independently of the SQL ----

/** Compares by Unicode code point (not UTF-16 unit): "no specific locale implied". */
function codePointCompare(x: string, y: string): number {
  const xs = Array.from(x, (ch) => ch.codePointAt(0) ?? 0);
  const ys = Array.from(y, (ch) => ch.codePointAt(0) ?? 0);
  for (let i = 0; i < Math.min(xs.length, ys.length); i++) {
    const d = (xs[i] ?? 0) - (ys[i] ?? 0);
    if (d !== 0) return d < 0 ? -1 : 1;
  }
  return xs.length === ys.length ? 0 : xs.length < ys.length ? -1 : 1;
}

type Key = string | number | boolean | null;
interface SortPath {
  sortBy: string;
  key: (r: Json) => Key;
}

const text = (v: unknown, caseExact = false): Key =>
  typeof v === 'string' && v !== '' ? (caseExact ? v : v.toLowerCase()) : null;
const at = (r: Json, ...path: string[]): unknown =>
  path.reduce<unknown>((v, k) => (v && typeof v === 'object' ? (v as Json)[k] : undefined), r);
/** RFC 7644 §3.4.2.3: a multi-valued attribute sorts by its primary value, else its first. */
const primaryOrFirst = (list: unknown, sub: string): unknown => {
  if (!Array.isArray(list) || list.length === 0) return undefined;
  const primary = (list as Json[]).find((e) => e.primary === true) ?? list[0];
  return (primary as Json)[sub];
};

const USER_PATHS: SortPath[] = [
  { sortBy: 'userName', key: (r) => text(r.userName) },
  { sortBy: 'name.familyName', key: (r) => text(at(r, 'name', 'familyName')) },
  { sortBy: 'name.givenName', key: (r) => text(at(r, 'name', 'givenName')) },
  { sortBy: 'displayName', key: (r) => text(r.displayName) },
  { sortBy: 'externalId', key: (r) => text(r.externalId, true) },
  { sortBy: 'meta.created', key: (r) => Date.parse(String(at(r, 'meta', 'created'))) },
  { sortBy: 'meta.lastModified', key: (r) => Date.parse(String(at(r, 'meta', 'lastModified'))) },
  { sortBy: 'emails.value', key: (r) => text(primaryOrFirst(r.emails, 'value')) },
  { sortBy: 'emails', key: (r) => text(primaryOrFirst(r.emails, 'value')) },
  { sortBy: 'emails.type', key: (r) => text(primaryOrFirst(r.emails, 'type')) },
  { sortBy: 'active', key: (r) => r.active === true },
  { sortBy: 'title', key: (r) => text(r.title) },
  { sortBy: 'id', key: (r) => String(r.id) },
  { sortBy: `${ENTERPRISE}:employeeNumber`, key: (r) => text(at(r, ENTERPRISE, 'employeeNumber')) },
  // Attribute names are case-insensitive and may carry the schema URN (RFC 7644 §3.10).
  { sortBy: 'NAME.FAMILYNAME', key: (r) => text(at(r, 'name', 'familyName')) },
  { sortBy: `${USER_SCHEMA}:userName`, key: (r) => text(r.userName) },
  { sortBy: `${USER_SCHEMA}:name.givenName`, key: (r) => text(at(r, 'name', 'givenName')) },
];

function compareKeys(x: Key, y: Key): number {
  if (x === y) return 0;
  if (x === null) return 1; // no value: last when ascending (RFC 7644 §3.4.2.3)
  if (y === null) return -1;
  if (typeof x === 'string' && typeof y === 'string') return codePointCompare(x, y);
  return x < y ? -1 : 1;
}

/** The ids in the RFC's order; ties by id; descending is the exact reverse. */
function expectedOrder(resources: Json[], path: SortPath, order: Order): string[] {
  const sorted = [...resources].sort(
    (x, y) => compareKeys(path.key(x), path.key(y)) || codePointCompare(String(x.id), String(y.id)),
  );
  const ids = sorted.map((r) => String(r.id));
  return order === 'descending' ? ids.reverse() : ids;
}

const ids = (body: { Resources?: Json[] }) => (body.Resources ?? []).map((r) => String(r.id));
const sortQuery = (sortBy: string, order?: Order) =>
  `sortBy=${encodeURIComponent(sortBy)}${order ? `&sortOrder=${order}` : ''}`;

describe('SCIM sorting (RFC 7644 §3.4.2.3)', () => {
  it('has ties to break: the generated directory repeats values', () => {
    const family = usersA.map((r) => text(at(r, 'name', 'familyName')));
    expect(new Set(family).size).toBeLessThan(family.length);
    expect(family).toContain(null);
  });

  it.each(
    USER_PATHS.flatMap((p) => (['ascending', 'descending'] as const).map((o) => [p.sortBy, o, p] as const)),
  )('sorts /Users by %s %s, every page after the sort, ties by id', async (sortBy, order, path) => {
    const listed = await everyUser(a, `&${sortQuery(sortBy, order)}`);
    expect(listed.map((r) => String(r.id))).toEqual(expectedOrder(usersA, path, order));
  });

  it('defaults sortOrder to ascending, and reads it ignoring case', async () => {
    const path = USER_PATHS[1] as SortPath;
    const asc = expectedOrder(usersA, path, 'ascending').slice(0, MAX_PAGE);
    expect(ids((await a.get(`/Users?${sortQuery(path.sortBy)}`).expect(200)).body)).toEqual(asc);
    const desc = expectedOrder(usersA, path, 'descending').slice(0, MAX_PAGE);
    expect(ids((await a.get(`/Users?sortBy=name.familyName&sortOrder=DESCENDING`).expect(200)).body)).toEqual(
      desc,
    );
  });

  it('applies startIndex and count to the sorted list', async () => {
    const path = USER_PATHS[0] as SortPath;
    const order = expectedOrder(usersA, path, 'descending');
    const res = await a.get(`/Users?${sortQuery('userName', 'descending')}&startIndex=5&count=3`).expect(200);
    expect(res.body).toMatchObject({ totalResults: usersA.length, startIndex: 5, itemsPerPage: 3 });
    expect(ids(res.body)).toEqual(order.slice(4, 7));
  });

  it('sorts the filtered list only', async () => {
    const path = USER_PATHS[3] as SortPath;
    const active = usersA.filter((r) => r.active === true);
    const res = await a
      .get(`/Users?filter=${encodeURIComponent('active eq true')}&${sortQuery('displayName', 'ascending')}`)
      .expect(200);
    expect(res.body.totalResults).toBe(active.length);
    expect(ids(res.body)).toEqual(expectedOrder(active, path, 'ascending').slice(0, MAX_PAGE));
  });

  it('sorts through a POST /Users/.search body, sortOrder in any case', async () => {
    const path = USER_PATHS[7] as SortPath;
    const body = {
      schemas: ['urn:ietf:params:scim:api:messages:2.0:SearchRequest'],
      sortBy: 'emails.value',
      sortOrder: 'descending',
      startIndex: 2,
      count: 4,
    };
    const res = await a.post('/Users/.search', body).expect(200);
    expect(res.body.totalResults).toBe(usersA.length);
    expect(ids(res.body)).toEqual(expectedOrder(usersA, path, 'descending').slice(1, 5));
    const upper = await a.post('/Users/.search', { ...body, sortOrder: 'Descending' }).expect(200);
    expect(ids(upper.body)).toEqual(ids(res.body));
    // The root /.search (every type) is scimmy's in-memory merge (docs/scim.md): it answers, never 5xx.
    const root = await a.post('/.search', { ...body, sortBy: 'meta.created' });
    expect(root.status).toBe(200);
  });

  it('sorts /Groups by displayName, externalId and meta dates, ties by id', async () => {
    const names = ['beta', 'Alpha', 'gamma', 'ALPHA2', 'delta'];
    const created: Json[] = [];
    for (const [i, name] of names.entries())
      created.push(
        (
          await a
            .post('/Groups', {
              schemas: [GROUP_SCHEMA],
              displayName: name,
              ...(i % 2 === 0 ? { externalId: ['Z', 'a', 'B'][i / 2] } : {}),
            })
            .expect(201)
        ).body as Json,
      );
    const groupPaths: SortPath[] = [
      { sortBy: 'displayName', key: (r) => text(r.displayName) },
      { sortBy: 'externalId', key: (r) => text(r.externalId, true) },
      { sortBy: 'meta.created', key: (r) => Date.parse(String(at(r, 'meta', 'created'))) },
      { sortBy: 'meta.lastModified', key: (r) => Date.parse(String(at(r, 'meta', 'lastModified'))) },
      { sortBy: `${GROUP_SCHEMA}:DisplayName`, key: (r) => text(r.displayName) },
    ];
    for (const path of groupPaths)
      for (const order of ['ascending', 'descending'] as const) {
        const res = await a.get(`/Groups?${sortQuery(path.sortBy, order)}&count=${MAX_PAGE}`).expect(200);
        expect({ sortBy: path.sortBy, order, ids: ids(res.body) }).toEqual({
          sortBy: path.sortBy,
          order,
          ids: expectedOrder(created, path, order),
        });
      }
  });

  it.each([
    ['an unknown attribute', 'Users', 'nickname2'],
    ['a complex attribute without a sub-attribute', 'Users', 'name'],
    ['a value filter', 'Users', 'emails[type eq "work"].value'],
    ['group membership of a user', 'Users', 'groups.display'],
    ['group members', 'Groups', 'members'],
    ['group members by value', 'Groups', 'members.value'],
    ['another schema', 'Users', 'urn:ietf:params:scim:schemas:core:2.0:Group:displayName'],
    ['a blank value', 'Users', ' '],
  ])('refuses to sort by %s with 400 invalidValue', async (_what, endpoint, sortBy) => {
    const res = await a.get(`/${endpoint}?sortBy=${encodeURIComponent(sortBy)}`);
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ schemas: [ERROR], status: '400', scimType: 'invalidValue' });
    const search = await a.post(`/${endpoint}/.search`, {
      schemas: ['urn:ietf:params:scim:api:messages:2.0:SearchRequest'],
      sortBy,
    });
    expect(search.status).toBe(400);
    expect(search.body.scimType).toBe('invalidValue');
  });

  it('refuses a sortOrder other than ascending or descending', async () => {
    const res = await a.get('/Users?sortBy=userName&sortOrder=sideways');
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ schemas: [ERROR], scimType: 'invalidValue' });
  });

  it('refuses a prototype key as sortBy before anything reads it', async () => {
    const res = await a.get('/Users?sortBy=__proto__');
    expect(res.status).toBe(400);
    expect(res.body.schemas).toEqual([ERROR]);
  });

  it("never shows another tenant's users, whatever the sort", async () => {
    for (const path of USER_PATHS)
      for (const order of ['ascending', 'descending'] as const) {
        const res = await a.get(`/Users?${sortQuery(path.sortBy, order)}&count=${MAX_PAGE}`).expect(200);
        expect(res.body.totalResults).toBe(usersA.length);
        expect(ids(res.body).filter((id) => idsB.includes(id))).toEqual([]);
      }
    // And B sees only its own four, in its own order.
    const fromB = await b.get(`/Users?${sortQuery('name.familyName')}`).expect(200);
    expect(ids(fromB.body).sort()).toEqual([...idsB].sort());
    expect(fromB.body.totalResults).toBe(idsB.length);
  });

  it('property: any sort, order, filter and page equals the RFC order computed here', async () => {
    const filters: { filter: string | null; keep: (r: Json) => boolean }[] = [
      { filter: null, keep: () => true },
      { filter: 'active eq true', keep: (r) => r.active === true },
      { filter: 'name.familyName pr', keep: (r) => text(at(r, 'name', 'familyName')) !== null },
      { filter: 'emails pr', keep: (r) => Array.isArray(r.emails) && r.emails.length > 0 },
    ];
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...USER_PATHS),
        fc.option(fc.constantFrom<Order>('ascending', 'descending'), { nil: undefined }),
        fc.constantFrom(...filters),
        fc.integer({ min: -1, max: usersA.length + 2 }),
        fc.integer({ min: 0, max: MAX_PAGE + 3 }),
        fc.boolean(),
        async (path, order, f, startIndex, count, viaSearch) => {
          const expected = expectedOrder(usersA.filter(f.keep), path, order ?? 'ascending');
          const from = Math.max(1, startIndex) - 1;
          const page = expected.slice(from, from + Math.min(count, MAX_PAGE));
          const res = viaSearch
            ? await a.post('/Users/.search', {
                schemas: ['urn:ietf:params:scim:api:messages:2.0:SearchRequest'],
                sortBy: path.sortBy,
                ...(order ? { sortOrder: order } : {}),
                ...(f.filter ? { filter: f.filter } : {}),
                startIndex: Math.max(1, startIndex),
                count: Math.max(1, count),
              })
            : await a.get(
                `/Users?${sortQuery(path.sortBy, order)}&startIndex=${startIndex}&count=${count}` +
                  (f.filter ? `&filter=${encodeURIComponent(f.filter)}` : ''),
              );
          expect(res.status).toBe(200);
          expect(res.body.totalResults).toBe(expected.length);
          const want = viaSearch ? expected.slice(from, from + Math.min(Math.max(1, count), MAX_PAGE)) : page;
          expect(ids(res.body)).toEqual(want);
        },
      ),
      { numRuns: fuzzRuns(40), seed: fuzzSeed(7071) },
    );
  });
});

describe('sortBy as an input surface', () => {
  const SEGMENTS = [
    'userName',
    'name',
    'familyName',
    'emails',
    'value',
    'type',
    'primary',
    'meta',
    'created',
    'groups',
    'members',
    'display',
    'active',
    'x',
    '',
    '0',
    'constructor',
    'prototype',
    '__proto__',
    'urn:ietf:params:scim:schemas:core:2.0:User',
    ENTERPRISE,
    'urn:x:y',
    '"',
    '\\',
    'é',
    '\u0000',
  ];
  const caseOf = (s: string, upper: boolean[]) =>
    Array.from(s, (ch, i) => (upper[i % Math.max(1, upper.length)] ? ch.toUpperCase() : ch)).join('');
  const sortByArb = fc.oneof(
    fc
      .tuple(
        fc.array(fc.constantFrom(...SEGMENTS), { minLength: 1, maxLength: 4 }),
        fc.constantFrom('.', ':', '[', ']', ' ', ''),
        fc.array(fc.boolean(), { maxLength: 6 }),
      )
      .map(([parts, sep, upper]) => caseOf(parts.join(sep), upper)),
    fc.string({ maxLength: 40 }),
  );

  it('property: any sortBy and sortOrder is a 200 within the tenant or a 400 SCIM error, never 5xx', async () => {
    const mine = new Set(usersA.map((r) => String(r.id)));
    await fc.assert(
      fc.asyncProperty(
        sortByArb,
        fc.option(fc.constantFrom('ascending', 'DESCENDING', 'x', ''), { nil: undefined }),
        fc.constantFrom('Users', 'Groups'),
        fc.boolean(),
        async (sortBy, sortOrder, endpoint, viaSearch) => {
          const res = viaSearch
            ? await a.post(`/${endpoint}/.search`, {
                schemas: ['urn:ietf:params:scim:api:messages:2.0:SearchRequest'],
                sortBy,
                ...(sortOrder !== undefined ? { sortOrder } : {}),
              })
            : await a.get(
                `/${endpoint}?sortBy=${encodeURIComponent(sortBy)}` +
                  (sortOrder !== undefined ? `&sortOrder=${encodeURIComponent(sortOrder)}` : ''),
              );
          expect([200, 400]).toContain(res.status);
          if (res.status === 400) {
            expect(res.body.schemas).toEqual([ERROR]);
            expect(['invalidValue', 'invalidPath', 'invalidSyntax']).toContain(res.body.scimType);
          } else if (endpoint === 'Users') {
            expect(res.body.totalResults).toBe(usersA.length);
            for (const id of ids(res.body)) expect(mine.has(id)).toBe(true);
          }
          expect(({} as Json).polluted).toBeUndefined();
        },
      ),
      { numRuns: fuzzRuns(60), seed: fuzzSeed(7072) },
    );
  });
});

describe('ServiceProviderConfig advertises exactly what works', () => {
  let spc: Json;
  beforeAll(async () => {
    spc = (await a.get('/ServiceProviderConfig').expect(200)).body as Json;
  });

  it('sort: supported, and a sorted list comes back sorted', async () => {
    expect(spc.sort).toEqual({ supported: true });
    const res = await a.get(`/Users?${sortQuery('userName', 'descending')}`).expect(200);
    expect(ids(res.body)).toEqual(
      expectedOrder(usersA, USER_PATHS[0] as SortPath, 'descending').slice(0, MAX_PAGE),
    );
  });

  it('filter: supported, maxResults is the real page cap', async () => {
    expect(spc.filter).toEqual({ supported: true, maxResults: MAX_PAGE });
    const page = await a.get(`/Users?count=${MAX_PAGE + 5}`).expect(200);
    expect(page.body.itemsPerPage).toBe(MAX_PAGE);
    expect(page.body.Resources).toHaveLength(MAX_PAGE);
    const first = usersA[0] as Json;
    const found = await a
      .get(`/Users?filter=${encodeURIComponent(`userName eq "${String(first.userName)}"`)}`)
      .expect(200);
    expect(ids(found.body)).toEqual([first.id]);
  });

  it('patch and etag: supported, and a PATCH with a stale If-Match is refused', async () => {
    expect(spc.patch).toEqual({ supported: true });
    expect(spc.etag).toEqual({ supported: true });
    const user = (await a.post('/Users', newUser('spc-check@acme.test')).expect(201)).body as Json;
    const read = await a.get(`/Users/${String(user.id)}`).expect(200);
    expect(read.headers.etag).toBe('W/"1"');
    const patched = await a
      .patch(`/Users/${String(user.id)}`, patchOp({ op: 'replace', path: 'title', value: 'Lead' }))
      .set('If-Match', 'W/"1"')
      .expect(200);
    expect(patched.body.title).toBe('Lead');
    const stale = await a
      .patch(`/Users/${String(user.id)}`, patchOp({ op: 'replace', path: 'title', value: 'Again' }))
      .set('If-Match', 'W/"1"');
    expect(stale.status).toBe(412);
    await a.delete(`/Users/${String(user.id)}`).expect(204);
  });

  it('changePassword: not supported, and a password is never returned', async () => {
    expect(spc.changePassword).toEqual({ supported: false });
    const created = await a.post('/Users', newUser('pw-check@acme.test', { password: 'S3cret-pass' }));
    expect(created.status).toBe(201);
    expect(JSON.stringify(created.body)).not.toContain('S3cret-pass');
    const read = await a.get(`/Users/${String(created.body.id)}?attributes=password`).expect(200);
    expect(JSON.stringify(read.body)).not.toContain('S3cret-pass');
    await a.delete(`/Users/${String(created.body.id)}`).expect(204);
  });

  it('lists one authentication scheme, the bearer token it checks', async () => {
    expect(spc.authenticationSchemes).toEqual([expect.objectContaining({ type: 'oauthbearertoken' })]);
    const res = await a.get('/Users').set('Authorization', 'Bearer gh_scim_nope');
    expect(res.status).toBe(401);
  });
});
