import fc from 'fast-check';
import request from 'supertest';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import {
  directoryDigest,
  fuzzRuns,
  fuzzSeed,
  inheritedEnumerableKeys,
  prototypeSnapshot,
} from './hardening-support.js';
import {
  createTenant,
  ENTERPRISE,
  GROUP_SCHEMA,
  issueToken,
  newUser,
  PATCH_OP,
  SCIM,
  scimClient,
  startNode,
  USER_SCHEMA,
  type ScimClient,
  type ScimNode,
} from './support.js';

/**
 * Issue 8: the SCIM surface under generated hostile input. Filters, attribute
 * lists, sortBy, PATCH paths and operations, and POST/PUT bodies, built from
 * prototype keys, URN prefixes, value filters, huge and 4-byte strings, NUL,
 * lone surrogates, RTL and combining characters, wrong types and JSON nested
 * up to 100,000 deep. Invariants per request:
 *   - never a 5xx (and the node answers /healthz after the run);
 *   - no built-in prototype gains a key, `{}` inherits nothing enumerable;
 *   - on any 4xx the tenant's users, groups, memberships and audit events are
 *     exactly as before;
 *   - on a 2xx write, the resource reads back (200).
 * GATEHOUSE_FUZZ_RUNS sets the budget (npm run fuzz), GATEHOUSE_FUZZ_SEED the seed.
 */

const RUNS = fuzzRuns(300);
const SEED = fuzzSeed(0x5c1a);

let t: TestDatabase;
let node: ScimNode;
let tenantId: string;
let token: string;
let c: ScimClient;
const userIds: string[] = [];
const groupIds: string[] = [];

beforeAll(async () => {
  t = await createTestDatabase();
  node = await startNode(t, { env: { GATEHOUSE_SCIM_RATE_LIMIT: '1000000' } });
  tenantId = await createTenant(t);
  token = (await issueToken(t.db, tenantId)).token;
  c = scimClient(node.app, tenantId, token);
  for (const name of ['ada', 'grace', 'edsger']) {
    const res = await c
      .post(
        '/Users',
        newUser(`${name}@acme.test`, { [ENTERPRISE]: { department: 'R&D', manager: { value: 'x' } } }),
      )
      .expect(201);
    userIds.push(res.body.id as string);
  }
  for (const name of ['Engineering', 'Ops']) {
    const res = await c
      .post('/Groups', { schemas: [GROUP_SCHEMA], displayName: name, members: [{ value: userIds[0] }] })
      .expect(201);
    groupIds.push(res.body.id as string);
  }
});
afterAll(async () => {
  await node.close();
  await t.close();
});

// ---------------------------------------------------------------- JSON as text

/** A JSON tree whose object keys are any strings, `__proto__` included (serialised by hand, never as a JS object). */
type Tree = null | boolean | number | string | { arr: Tree[] } | { obj: [string, Tree][] };

function serialise(tree: Tree): string {
  if (tree === null || typeof tree !== 'object') return JSON.stringify(tree);
  if ('arr' in tree) return `[${tree.arr.map(serialise).join(',')}]`;
  return `{${tree.obj.map(([k, v]) => `${JSON.stringify(k)}:${serialise(v)}`).join(',')}}`;
}

const SPECIAL_KEYS = ['__proto__', 'constructor', 'prototype', '__PROTO__', 'Constructor', 'PROTOTYPE'];

/** Mostly ordinary text (so requests get past validation and reach the directory), sometimes hostile. */
const nastyString = fc.oneof(
  { arbitrary: fc.stringMatching(/^[A-Za-z0-9 .@-]{1,16}$/), weight: 8 },
  fc.string({ maxLength: 20 }),
  fc.string({ unit: 'binary', maxLength: 20 }),
  fc.constantFrom(
    '',
    '\u0000',
    'a\u0000b',
    '\ud800',
    'x\udc00',
    '\u202Eevil\u202C',
    'e\u0301\u0301\u0301',
    '\uFEFF',
    '"',
    '\\',
    '"] or __proto__.x pr or [',
    'ada@acme.test',
    'ADA@ACME.TEST',
    ...SPECIAL_KEYS,
  ),
  fc.integer({ min: 250, max: 3000 }).map((n) => 'a'.repeat(n)),
  fc.integer({ min: 60, max: 800 }).map((n) => '😀'.repeat(n)),
  fc.integer({ min: 100, max: 1500 }).map((n) => 'İ'.repeat(n)),
);

const attributeName = fc.oneof(
  {
    arbitrary: fc.constantFrom(
      'userName',
      'displayName',
      'externalId',
      'name.givenName',
      'title',
      'emails.value',
    ),
    weight: 6,
  },
  fc.constantFrom(
    ...SPECIAL_KEYS,
    'userName',
    'displayName',
    'externalId',
    'name',
    'givenName',
    'familyName',
    'emails',
    'value',
    'type',
    'primary',
    'active',
    'title',
    'phoneNumbers',
    'members',
    'groups',
    'meta',
    'id',
    'schemas',
    ENTERPRISE,
    `${ENTERPRISE}:manager`,
    `${USER_SCHEMA}:__proto__`,
    'name.__proto__',
    'emails.constructor',
  ),
  fc.string({ maxLength: 12 }),
);

const tree: fc.Arbitrary<Tree> = fc.letrec<{ node: Tree }>((tie) => ({
  node: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constant(null),
    fc.boolean(),
    fc.oneof(fc.integer(), fc.double()),
    nastyString,
    fc.array(tie('node'), { maxLength: 4 }).map((arr) => ({ arr })),
    fc.array(fc.tuple(attributeName, tie('node')), { maxLength: 5 }).map((obj) => ({ obj })),
  ),
})).node;

/** JSON nested `depth` deep, as text (built without recursion). */
const deepJson = fc
  .tuple(fc.integer({ min: 30, max: 100_000 }), fc.boolean())
  .map(([depth, arrays]) =>
    arrays ? '['.repeat(depth) + ']'.repeat(depth) : '{"a":'.repeat(depth) + '1' + '}'.repeat(depth),
  );

// ---------------------------------------------------------------- SCIM pieces

const pathExpr = fc.oneof(
  attributeName,
  fc.tuple(attributeName, attributeName).map(([a, b]) => `${a}.${b}`),
  fc
    .tuple(attributeName, attributeName, nastyString, fc.option(attributeName, { nil: undefined }))
    .map(([a, b, v, sub]) => `${a}[${b} eq ${JSON.stringify(v)}]${sub ? `.${sub}` : ''}`),
  fc.constantFrom(
    'emails[type eq "work"].value',
    'emails[__proto__.x eq "y"].value',
    'members[value eq "00000000-0000-0000-0000-000000000000"]',
    `${ENTERPRISE}:department`,
    'name.givenName',
  ),
  fc.string({ maxLength: 40 }),
);

const filterExpr = fc.oneof(
  fc
    .array(
      fc.tuple(
        pathExpr,
        fc.constantFrom('eq', 'ne', 'co', 'sw', 'ew', 'gt', 'lt', 'ge', 'le', 'pr', 'np', 'EQ', 'xx'),
        fc.oneof(
          nastyString.map((s) => JSON.stringify(s)),
          fc.constantFrom('true', 'false', 'null', '1', '-2.5e3', '"2024-01-01T00:00:00Z"'),
        ),
        fc.constantFrom(' and ', ' or ', ' and not ', ') or (', ' or ('),
      ),
      { minLength: 1, maxLength: 4 },
    )
    .map((parts) =>
      parts
        .map(
          ([p, op, v, join], i) =>
            `${p} ${op}${['pr', 'np'].includes(op) ? '' : ` ${v}`}${i < parts.length - 1 ? join : ''}`,
        )
        .join(''),
    ),
  fc.string({ maxLength: 60 }),
  fc.integer({ min: 1990, max: 3000 }).map((n) => `userName eq "${'a'.repeat(n)}"`),
);

const attributeList = fc.array(pathExpr, { minLength: 1, maxLength: 4 }).map((l) => l.join(','));

const queryParams = fc.oneof(
  { arbitrary: fc.constant({}), weight: 1 },
  {
    arbitrary: fc
      .tuple(
        fc.constantFrom('filter', 'attributes', 'excludedAttributes', 'sortBy'),
        filterExpr,
        attributeList,
        pathExpr,
      )
      .map(([key, filter, list, path]): Record<string, string> =>
        key === 'filter' ? { filter } : key === 'sortBy' ? { sortBy: path } : { [key]: list },
      ),
    weight: 4,
  },
  fc.record(
    {
      filter: filterExpr,
      attributes: attributeList,
      excludedAttributes: attributeList,
      sortBy: pathExpr,
      sortOrder: fc.constantFrom('ascending', 'descending', 'sideways'),
      startIndex: fc.oneof(fc.integer({ min: -5, max: 10 }).map(String), nastyString),
      count: fc.oneof(fc.integer({ min: -5, max: 300 }).map(String), nastyString),
    },
    { requiredKeys: [] },
  ),
);

/** A body value: a plain JSON value, or the same with a generated junk tree in place of some fields. */
const junkOr = <T>(valid: fc.Arbitrary<T>) =>
  fc.oneof({ arbitrary: valid.map((v): Tree => toTree(v)), weight: 40 }, { arbitrary: tree, weight: 1 });

function toTree(value: unknown): Tree {
  if (value === null || ['boolean', 'number', 'string'].includes(typeof value)) return value as Tree;
  if (Array.isArray(value)) return { arr: value.map(toTree) };
  if (typeof value === 'object') return { obj: Object.entries(value).map(([k, v]) => [k, toTree(v)]) };
  return null;
}

const userBody = fc
  .record({
    schemas: junkOr(fc.constant([USER_SCHEMA])),
    userName: junkOr(fc.oneof(fc.emailAddress(), nastyString)),
    displayName: junkOr(nastyString),
    externalId: junkOr(nastyString),
    name: junkOr(fc.record({ givenName: nastyString, familyName: nastyString })),
    emails: junkOr(
      fc.array(
        fc.record({ value: nastyString, type: fc.constantFrom('work', 'home'), primary: fc.boolean() }),
        { maxLength: 3 },
      ),
    ),
    active: junkOr(fc.constantFrom(true, false, 'True', 'False')),
    extra: fc.oneof(fc.constant([]), fc.array(fc.tuple(attributeName, tree), { maxLength: 3 })),
  })
  .map(({ extra, ...fields }): Tree => ({ obj: [...Object.entries(fields), ...extra] }));

const groupBody = fc
  .record({
    schemas: junkOr(fc.constant([GROUP_SCHEMA])),
    displayName: junkOr(nastyString),
    externalId: junkOr(nastyString),
    members: junkOr(
      fc.array(fc.record({ value: fc.oneof(fc.constantFrom(...['u0', 'u1', 'u2']), nastyString) }), {
        maxLength: 3,
      }),
    ),
    extra: fc.array(fc.tuple(attributeName, tree), { maxLength: 2 }),
  })
  .map(({ extra, ...fields }): Tree => ({ obj: [...Object.entries(fields), ...extra] }));

const patchBody = fc
  .array(
    fc.record(
      {
        op: fc.oneof(
          { arbitrary: fc.constantFrom('add', 'replace', 'remove', 'Replace', 'ADD'), weight: 8 },
          nastyString,
        ),
        path: pathExpr,
        value: fc.oneof({ arbitrary: nastyString.map((v): Tree => v), weight: 3 }, tree),
      },
      { requiredKeys: ['op'] },
    ),
    { minLength: 1, maxLength: 3 },
  )
  .map((ops): Tree => ({
    obj: [
      ['schemas', { arr: [PATCH_OP] }],
      ['Operations', { arr: ops.map((op) => ({ obj: Object.entries<Tree>(op) })) }],
    ],
  }));

// ---------------------------------------------------------------- requests

interface FuzzRequest {
  method: 'get' | 'post' | 'put' | 'patch';
  /** Resolved against the ids created in beforeAll: `{user}`, `{group}`. */
  path: string;
  query?: Record<string, string>;
  body?: string;
}

const resource = fc.constantFrom('/Users', '/Groups');

const fuzzRequest: fc.Arbitrary<FuzzRequest> = fc.oneof(
  fc.tuple(resource, queryParams).map(([path, query]) => ({ method: 'get' as const, path, query })),
  fc.tuple(fc.constantFrom('/Users/{user}', '/Groups/{group}'), queryParams).map(([path, query]) => ({
    method: 'get' as const,
    path,
    query,
  })),
  fc
    .tuple(
      fc.constantFrom('/Users/.search', '/Groups/.search', '/.search'),
      queryParams,
      fc.array(fc.tuple(attributeName, tree), { maxLength: 2 }),
    )
    .map(([path, params, extra]) => {
      const entries: [string, Tree][] = Object.entries(params).map(([k, v]) => [
        k,
        k.endsWith('ttributes')
          ? { arr: v.split(',') }
          : ['startIndex', 'count'].includes(k)
            ? Number(v) || v
            : v,
      ]);
      return {
        method: 'post' as const,
        path,
        body: serialise({
          obj: [
            ['schemas', { arr: ['urn:ietf:params:scim:api:messages:2.0:SearchRequest'] }],
            ...entries,
            ...extra,
          ],
        }),
      };
    }),
  userBody.map((b) => ({ method: 'post' as const, path: '/Users', body: serialise(b) })),
  userBody.map((b) => ({ method: 'put' as const, path: '/Users/{user}', body: serialise(b) })),
  patchBody.map((b) => ({ method: 'patch' as const, path: '/Users/{user}', body: serialise(b) })),
  groupBody.map((b) => ({ method: 'post' as const, path: '/Groups', body: serialise(b) })),
  groupBody.map((b) => ({ method: 'put' as const, path: '/Groups/{group}', body: serialise(b) })),
  patchBody.map((b) => ({ method: 'patch' as const, path: '/Groups/{group}', body: serialise(b) })),
  fc
    .tuple(
      fc.constantFrom('/Users', '/Users/{user}', '/Groups/{group}', '/Users/.search'),
      deepJson,
      fc.constantFrom('post', 'put', 'patch'),
    )
    .map(([path, body, method]) => ({ method: method, path, body })),
  fc
    .tuple(fc.constantFrom('/Users', '/Groups/{group}'), fc.string({ unit: 'binary', maxLength: 200 }))
    .map(([path, body]) => ({ method: 'post' as const, path, body })),
);

function resolve(path: string, index: number): string {
  return path
    .replace('{user}', userIds[index % userIds.length] as string)
    .replace('{group}', groupIds[index % groupIds.length] as string);
}

/** Member values u0…u2 stand for the seeded users' ids. */
const withMemberIds = (body: string) =>
  body.replace(/"u([0-2])"/g, (_, i: string) => JSON.stringify(userIds[Number(i)]));

async function send(r: FuzzRequest, index: number): Promise<request.Response> {
  const url = `/scim/v2/${tenantId}${resolve(r.path, index)}`;
  let test = request(node.app)[r.method](url).set('Authorization', `Bearer ${token}`).set('Accept', SCIM);
  if (r.query) test = test.query(r.query);
  if (r.body !== undefined) test = test.set('Content-Type', SCIM).send(withMemberIds(r.body));
  return test;
}

describe('SCIM input fuzzing (issue 8)', () => {
  it('never answers 5xx, never touches a prototype, writes nothing on 4xx and reads back every 2xx write', async () => {
    const prototypes = prototypeSnapshot();
    let index = 0;
    const statuses = new Map<string, number>();
    await fc.assert(
      fc.asyncProperty(fuzzRequest, async (r) => {
        index++;
        const before = await directoryDigest(t, tenantId);
        const res = await send(r, index);
        const key = `${res.status} ${String((res.body as { scimType?: string }).scimType ?? '')}`.trim();
        statuses.set(key, (statuses.get(key) ?? 0) + 1);
        expect(res.status).toBeLessThan(500);
        expect(prototypeSnapshot()).toEqual(prototypes);
        expect(inheritedEnumerableKeys()).toEqual([]);
        if (res.status >= 400) {
          expect(await directoryDigest(t, tenantId)).toEqual(before);
          return;
        }
        if (r.method === 'get' || r.path.endsWith('.search')) {
          expect(typeof res.body).toBe('object');
          return;
        }
        const id =
          r.method === 'post' ? (res.body as { id?: string }).id : resolve(r.path, index).split('/')[2];
        const kind = r.path.startsWith('/Users') ? 'Users' : 'Groups';
        if (r.method === 'post' && kind === 'Users') userIds.push(id as string);
        await c.get(`/${kind}/${id}`).expect(200);
      }),
      { seed: SEED, numRuns: RUNS },
    );
    // What the run covered, for the fuzz report.
    console.info(
      `SCIM fuzz: ${RUNS} requests, seed ${SEED}, statuses ${JSON.stringify(Object.fromEntries(statuses))}`,
    );
    await request(node.app).get('/healthz').expect(200);
    await c.get('/Users').expect(200);
  }, 600_000);
});
