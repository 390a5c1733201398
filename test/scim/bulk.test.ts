import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { findActiveSession } from '../../src/sessions/sessions.service.js';
import { createApp, signIn } from '../sessions/support.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { directoryDigest, fuzzRuns, fuzzSeed } from './hardening-support.js';
import {
  BASE_URL,
  createTenant,
  ERROR,
  GROUP_SCHEMA,
  issueToken,
  newUser,
  patchOp,
  scimClient,
  startNode,
  type ScimClient,
  USER_SCHEMA,
  type ScimNode,
} from './support.js';

/**
 * Issue 10: POST /Bulk (RFC 7644 §3.7) against the real app and database:
 * bulkId references and their order, failOnErrors, one transaction per
 * operation, the 413 limits, the rate limit counting operations, another
 * tenant's ids, and a property over random operation sequences.
 */

const BULK_REQUEST = 'urn:ietf:params:scim:api:messages:2.0:BulkRequest';
const BULK_RESPONSE = 'urn:ietf:params:scim:api:messages:2.0:BulkResponse';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

let t: TestDatabase;
let node: ScimNode;

beforeAll(async () => {
  t = await createTestDatabase();
  node = await startNode(t, { env: { GATEHOUSE_SCIM_RATE_LIMIT: '1000000' }, listen: false });
});
afterAll(async () => {
  await node.close();
  await t.close();
});

interface Tenant {
  id: string;
  c: ScimClient;
}

async function tenant(on: ScimNode = node): Promise<Tenant> {
  const id = await createTenant(t);
  return { id, c: scimClient(on.app, id, (await issueToken(t.db, id)).token) };
}

const bulk = (operations: unknown[], extra: Record<string, unknown> = {}) => ({
  schemas: [BULK_REQUEST],
  Operations: operations,
  ...extra,
});
const postUser = (bulkId: string, userName: string, extra: Record<string, unknown> = {}) => ({
  method: 'POST',
  path: '/Users',
  bulkId,
  data: newUser(userName, extra),
});
const postGroup = (bulkId: string, displayName: string, members: string[] = []) => ({
  method: 'POST',
  path: '/Groups',
  bulkId,
  data: { schemas: [GROUP_SCHEMA], displayName, members: members.map((value) => ({ value })) },
});

interface Entry {
  method?: string;
  bulkId?: string;
  version?: string;
  location?: string;
  status: string;
  response?: { schemas: string[]; status: string; scimType?: string; detail: string };
}
const entries = (body: { Operations: Entry[] }) => body.Operations;
const idOf = (entry: Entry | undefined) => String(entry?.location?.split('/').pop());

async function query<T>(tenantId: string, sql: string, params: unknown[] = []): Promise<T[]> {
  return t.db.withTenant(tenantId, (em) => em.query<T[]>(sql, params));
}
const userNames = async (tenantId: string) =>
  (
    await query<{ user_name: string }>(
      tenantId,
      "SELECT user_name FROM users WHERE status <> 'deleted' ORDER BY user_name",
    )
  ).map((r) => r.user_name);
const members = async (tenantId: string, groupId: string) =>
  (
    await query<{ user_id: string }>(
      tenantId,
      'SELECT user_id FROM group_members WHERE group_id = $1 ORDER BY user_id',
      [groupId],
    )
  ).map((r) => r.user_id);

describe('SCIM /Bulk', () => {
  it('creates users, then a group whose members are those users, through bulkId references', async () => {
    const { id: tenantId, c } = await tenant();
    const res = await c.post(
      '/Bulk',
      bulk([
        postUser('u1', 'ann@acme.test'),
        postUser('u2', 'ben@acme.test'),
        postGroup('g1', 'Engineering', ['bulkId:u1', 'bulkId:u2']),
        {
          method: 'PATCH',
          path: '/Users/bulkId:u1',
          data: patchOp({ op: 'replace', path: 'displayName', value: 'Ann A.' }),
        },
        {
          method: 'PATCH',
          path: '/Groups/bulkId:g1',
          data: patchOp({ op: 'remove', path: 'members', value: [{ value: 'bulkId:u2' }] }),
        },
      ]),
    );
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/scim\+json/);
    expect(res.body.schemas).toEqual([BULK_RESPONSE]);
    const [u1, u2, g1, patchU1, patchG1] = entries(res.body);
    const base = `${BASE_URL}/scim/v2/${tenantId}`;
    expect(u1).toEqual({
      method: 'POST',
      bulkId: 'u1',
      status: '201',
      version: 'W/"1"',
      location: expect.stringMatching(new RegExp(`^${base}/Users/[0-9a-f-]{36}$`)),
    });
    expect(u2).toMatchObject({ method: 'POST', bulkId: 'u2', status: '201' });
    expect(g1).toMatchObject({ method: 'POST', bulkId: 'g1', status: '201', version: 'W/"1"' });
    expect(g1?.location).toMatch(new RegExp(`^${base}/Groups/[0-9a-f-]{36}$`));
    expect(patchU1).toEqual({
      method: 'PATCH',
      status: '200',
      version: 'W/"2"',
      location: `${base}/Users/${idOf(u1)}`,
    });
    expect(patchG1).toEqual({
      method: 'PATCH',
      status: '204',
      version: 'W/"2"',
      location: `${base}/Groups/${idOf(g1)}`,
    });
    // The database: both users, the group with ann only (ben removed by the last operation).
    expect(await userNames(tenantId)).toEqual(['ann@acme.test', 'ben@acme.test']);
    expect(await members(tenantId, idOf(g1))).toEqual([idOf(u1)]);
    const [ann] = await query<{ display_name: string }>(
      tenantId,
      'SELECT display_name FROM users WHERE id = $1',
      [idOf(u1)],
    );
    expect(ann?.display_name).toBe('Ann A.');
    // The same path as single requests: each change is audited, under the Bulk request's id.
    const audit = await query<{ action: string; request_id: string }>(
      tenantId,
      'SELECT action, request_id FROM audit_events ORDER BY seq',
    );
    expect(audit.map((r) => r.action)).toEqual([
      'scim.user.created',
      'scim.user.created',
      'scim.group.created',
      'scim.user.patched',
      'scim.group.patched',
    ]);
    expect(new Set(audit.map((r) => r.request_id)).size).toBe(1);
    expect(audit[0]?.request_id).toBe(res.headers['x-request-id']);
  });

  it('runs an operation after the POSTs it names even when it comes first, answering in request order', async () => {
    const { id: tenantId, c } = await tenant();
    const res = await c
      .post('/Bulk', bulk([postGroup('g', 'Ops', ['bulkId:a']), postUser('a', 'ada@acme.test')]))
      .expect(200);
    const [group, user] = entries(res.body);
    expect(group).toMatchObject({ bulkId: 'g', status: '201' });
    expect(user).toMatchObject({ bulkId: 'a', status: '201' });
    expect(await members(tenantId, idOf(group))).toEqual([idOf(user)]);
  });

  it('stops after failOnErrors failures, keeping what ran before', async () => {
    const { id: tenantId, c } = await tenant();
    await c.post('/Users', newUser('taken@acme.test')).expect(201);
    const res = await c
      .post(
        '/Bulk',
        bulk(
          [
            postUser('a', 'first@acme.test'),
            postUser('b', 'taken@acme.test'),
            postUser('c', 'never@acme.test'),
            postUser('d', 'nor@acme.test'),
          ],
          { failOnErrors: 1 },
        ),
      )
      .expect(200);
    expect(entries(res.body).map((e) => [e.bulkId, e.status])).toEqual([
      ['a', '201'],
      ['b', '409'],
    ]);
    expect(entries(res.body)[1]?.response).toMatchObject({
      schemas: [ERROR],
      status: '409',
      scimType: 'uniqueness',
    });
    expect(entries(res.body)[1]).not.toHaveProperty('location');
    expect(await userNames(tenantId)).toEqual(['first@acme.test', 'taken@acme.test']);
  });

  it('runs each operation in its own transaction: a failure in the middle leaves the others exact', async () => {
    const { id: tenantId, c } = await tenant();
    const kept = (await c.post('/Users', newUser('kept@acme.test')).expect(201)).body.id as string;
    const before = await query(tenantId, 'SELECT * FROM users WHERE id = $1', [kept]);
    const res = await c
      .post(
        '/Bulk',
        bulk([
          postUser('a', 'before@acme.test'),
          // Fails after the group row would be written: one member is not a user of this tenant.
          postGroup('g', 'Half', [kept, randomUUID()]),
          // Fails in validation: a PUT without userName.
          { method: 'PUT', path: `/Users/${kept}`, data: { schemas: newUser('x').schemas, active: false } },
          postUser('b', 'after@acme.test'),
        ]),
      )
      .expect(200);
    expect(entries(res.body).map((e) => e.status)).toEqual(['201', '400', '400', '201']);
    expect(entries(res.body)[1]?.response).toMatchObject({ status: '400', scimType: 'invalidValue' });
    expect(entries(res.body)[2]).toMatchObject({
      method: 'PUT',
      location: `${BASE_URL}/scim/v2/${tenantId}/Users/${kept}`,
    });
    expect(await userNames(tenantId)).toEqual(['after@acme.test', 'before@acme.test', 'kept@acme.test']);
    expect(await query(tenantId, 'SELECT * FROM groups')).toEqual([]);
    expect(await query(tenantId, 'SELECT * FROM group_members')).toEqual([]);
    expect(await query(tenantId, 'SELECT * FROM users WHERE id = $1', [kept])).toEqual(before);
  });

  it('deprovisions through the same path as single requests: deactivation and deletion revoke sessions', async () => {
    const { id: tenantId, c } = await tenant();
    const appId = await createApp(t.db, null);
    const ids: string[] = [];
    for (const name of ['off@acme.test', 'gone@acme.test', 'stays@acme.test'])
      ids.push((await c.post('/Users', newUser(name)).expect(201)).body.id as string);
    const sessions = await Promise.all(ids.map((id) => signIn(t.db, tenantId, id, appId)));
    const live = (sessionId: string) =>
      t.db.withTenant(tenantId, (em) => findActiveSession(em, sessionId, new Date()));
    const res = await c
      .post(
        '/Bulk',
        bulk([
          {
            method: 'PATCH',
            path: `/Users/${ids[0]}`,
            data: patchOp({ op: 'replace', path: 'active', value: false }),
          },
          { method: 'DELETE', path: `/Users/${ids[1]}` },
        ]),
      )
      .expect(200);
    expect(entries(res.body).map((e) => e.status)).toEqual(['200', '204']);
    expect(await live(sessions[0] as string)).toBeNull();
    expect(await live(sessions[1] as string)).toBeNull();
    expect(await live(sessions[2] as string)).not.toBeNull();
    const actions = await query<{ action: string; after: { revoked_sessions?: number } }>(
      tenantId,
      "SELECT action, after FROM audit_events WHERE action IN ('scim.user.suspended', 'scim.user.deleted') ORDER BY seq",
    );
    expect(actions).toEqual([
      { action: 'scim.user.suspended', after: expect.objectContaining({ revoked_sessions: 1 }) },
      { action: 'scim.user.deleted', after: expect.objectContaining({ revoked_sessions: 1 }) },
    ]);
  });

  it('takes each operation version as If-Match: 412 on a stale one, and 404 for an unknown id', async () => {
    const { c } = await tenant();
    const id = (await c.post('/Users', newUser('v@acme.test')).expect(201)).body.id as string;
    const res = await c
      .post(
        '/Bulk',
        bulk([
          {
            method: 'PATCH',
            path: `/Users/${id}`,
            version: 'W/"7"',
            data: patchOp({ op: 'replace', path: 'title', value: 'x' }),
          },
          {
            method: 'PATCH',
            path: `/Users/${id}`,
            version: 'W/"1"',
            data: patchOp({ op: 'replace', path: 'title', value: 'y' }),
          },
          { method: 'DELETE', path: `/Users/${randomUUID()}` },
          { method: 'DELETE', path: '/Users/not-a-uuid' },
          { method: 'DELETE', path: `/Users/${id}`, version: 'W/"2"' },
        ]),
      )
      .expect(200);
    expect(entries(res.body).map((e) => e.status)).toEqual(['412', '200', '404', '404', '204']);
    expect(entries(res.body)[1]?.version).toBe('W/"2"');
    await c.get(`/Users/${id}`).expect(404);
  });

  it('fails circular and unknown bulkId references, and operations that need a failed POST', async () => {
    const { id: tenantId, c } = await tenant();
    const res = await c
      .post(
        '/Bulk',
        bulk([
          postUser('u', 'loop@acme.test', { externalId: 'bulkId:g' }),
          postGroup('g', 'Loop', ['bulkId:u']),
          postUser('self', 'self@acme.test', { externalId: 'bulkId:self' }),
          {
            method: 'PATCH',
            path: '/Groups/bulkId:nope',
            data: patchOp({ op: 'add', path: 'members', value: [] }),
          },
          { method: 'POST', path: '/Users', bulkId: 'bad', data: { schemas: [USER_SCHEMA] } },
          postGroup('needs-bad', 'NeedsBad', ['bulkId:bad']),
          { method: 'GET', path: '/Users' },
          { method: 'POST', path: '/Users', data: newUser('nobulkid@acme.test') },
          { method: 'POST', path: '/Users/x', bulkId: 'p' },
          { method: 'PUT', path: '/Nothing/1', data: {} },
          'not an operation',
        ]),
      )
      .expect(200);
    const statuses = entries(res.body).map((e) => [
      e.bulkId ?? e.method ?? '-',
      e.status,
      e.response?.scimType,
    ]);
    expect(statuses).toEqual([
      ['u', '409', undefined],
      ['g', '409', undefined],
      ['self', '409', undefined],
      ['PATCH', '400', 'invalidValue'],
      ['bad', '400', 'invalidValue'],
      ['needs-bad', '409', undefined],
      ['GET', '400', 'invalidValue'],
      ['POST', '400', 'invalidValue'],
      ['p', '400', 'invalidPath'],
      ['PUT', '400', 'invalidPath'],
      ['-', '400', 'invalidSyntax'],
    ]);
    for (const e of entries(res.body))
      expect(e.response).toMatchObject({ schemas: [ERROR], detail: expect.any(String) });
    expect(await userNames(tenantId)).toEqual([]);
    expect(await query(tenantId, 'SELECT * FROM groups')).toEqual([]);
  });

  it('refuses a malformed BulkRequest as a whole, and methods other than POST', async () => {
    const { id: tenantId, c } = await tenant();
    for (const body of [
      { Operations: [postUser('a', 'a@acme.test')] },
      { schemas: [BULK_REQUEST], Operations: {} },
      bulk([postUser('a', 'a@acme.test')], { failOnErrors: 0 }),
      bulk([postUser('a', 'a@acme.test')], { failOnErrors: '1' }),
      [],
    ]) {
      const res = await c.post('/Bulk', body);
      expect(res.status).toBe(400);
      expect(res.body).toMatchObject({ schemas: [ERROR], status: '400' });
    }
    const proto = await c.post(
      '/Bulk',
      JSON.parse(
        `{"schemas":["${BULK_REQUEST}"],"Operations":[{"method":"POST","path":"/Users","bulkId":"a","__proto__":{"x":1},"data":{}}]}`,
      ),
    );
    expect(proto.status).toBe(400);
    const get = await c.get('/Bulk');
    expect(get.status).toBe(405);
    expect(get.headers.allow).toBe('POST');
    expect(get.body).toMatchObject({ schemas: [ERROR], status: '405' });
    expect(await userNames(tenantId)).toEqual([]);
  });

  it("fails each Bulk operation naming tenant B's user or group from tenant A's token, linking nothing and leaving B unchanged", async () => {
    const a = await tenant();
    const b = await tenant();
    const bUser = (await b.c.post('/Users', newUser('bee@globex.test')).expect(201)).body.id as string;
    const bGroup = (
      await b.c
        .post('/Groups', { schemas: [GROUP_SCHEMA], displayName: 'B', members: [{ value: bUser }] })
        .expect(201)
    ).body.id as string;
    const aGroup = (await a.c.post('/Groups', { schemas: [GROUP_SCHEMA], displayName: 'A' }).expect(201)).body
      .id as string;
    const bBefore = await directoryDigest(t, b.id);
    const res = await a.c
      .post(
        '/Bulk',
        bulk([
          {
            method: 'PATCH',
            path: `/Users/${bUser}`,
            data: patchOp({ op: 'replace', path: 'active', value: false }),
          },
          { method: 'PUT', path: `/Users/${bUser}`, data: newUser('mine@acme.test') },
          { method: 'DELETE', path: `/Users/${bUser}` },
          { method: 'DELETE', path: `/Groups/${bGroup}` },
          {
            method: 'PATCH',
            path: `/Groups/${aGroup}`,
            data: patchOp({ op: 'add', path: 'members', value: [{ value: bUser }] }),
          },
          postGroup('stolen', 'Stolen', [bUser]),
        ]),
      )
      .expect(200);
    expect(entries(res.body).map((e) => e.status)).toEqual(['404', '404', '404', '404', '400', '400']);
    expect(JSON.stringify(res.body)).not.toContain('bee@globex.test');
    expect(await directoryDigest(t, b.id)).toEqual(bBefore);
    expect(await members(a.id, aGroup)).toEqual([]);
    expect((await query(a.id, 'SELECT display_name FROM groups')).length).toBe(1);
  });
});

describe('SCIM /Bulk limits', () => {
  it('answers 413 tooMany past maxOperations and 413 tooLarge past maxPayloadSize, running nothing, and advertises both', async () => {
    const limited = await startNode(t, {
      env: { GATEHOUSE_SCIM_BULK_MAX_OPERATIONS: '3', GATEHOUSE_SCIM_BULK_MAX_PAYLOAD: '2048' },
      listen: false,
    });
    try {
      const { id: tenantId, c } = await tenant(limited);
      const config = await c.get('/ServiceProviderConfig').expect(200);
      expect(config.body.bulk).toEqual({ supported: true, maxOperations: 3, maxPayloadSize: 2048 });
      const many = await c.post('/Bulk', bulk([1, 2, 3, 4].map((i) => postUser(`u${i}`, `u${i}@acme.test`))));
      expect(many.status).toBe(413);
      expect(many.body).toEqual({
        schemas: [ERROR],
        status: '413',
        scimType: 'tooMany',
        detail: expect.stringContaining('maxOperations (3)'),
      });
      const large = await c.post(
        '/Bulk',
        bulk([postUser('u', 'big@acme.test', { title: 'x'.repeat(3000) })]),
      );
      expect(large.status).toBe(413);
      expect(large.body).toEqual({
        schemas: [ERROR],
        status: '413',
        scimType: 'tooLarge',
        detail: expect.stringContaining('maxPayloadSize (2048)'),
      });
      expect(await userNames(tenantId)).toEqual([]);
      // Within both limits the same node runs them; GATEHOUSE_BODY_LIMIT still governs single requests.
      await c.post('/Bulk', bulk([postUser('u', 'fits@acme.test')])).expect(200);
      await c
        .post('/Users', newUser('single@acme.test', { title: 'x'.repeat(2000), nickName: 'y'.repeat(2000) }))
        .expect(201);
      expect(await userNames(tenantId)).toEqual(['fits@acme.test', 'single@acme.test']);
    } finally {
      await limited.close();
    }
  });

  it('counts every operation against the tenant rate limit, and refuses a Bulk that does not fit before running it', async () => {
    const limited = await startNode(t, { env: { GATEHOUSE_SCIM_RATE_LIMIT: '5' }, listen: false });
    try {
      const { id: tenantId, c } = await tenant(limited);
      const other = await tenant(limited);
      const first = await c
        .post('/Bulk', bulk([1, 2, 3].map((i) => postUser(`u${i}`, `u${i}@acme.test`))))
        .expect(200);
      expect(entries(first.body).map((e) => e.status)).toEqual(['201', '201', '201']);
      expect(first.headers.ratelimit).toMatch(/remaining=2\b/);
      // 3 used; this request is the 4th hit and its 3 operations would need 2 more: 429, nothing runs.
      const refused = await c.post('/Bulk', bulk([4, 5, 6].map((i) => postUser(`u${i}`, `u${i}@acme.test`))));
      expect(refused.status).toBe(429);
      expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);
      expect(refused.body).toEqual({ schemas: [ERROR], status: '429', detail: expect.any(String) });
      expect(await userNames(tenantId)).toHaveLength(3);
      await c.get('/Users').expect(200); // the 5th hit
      expect((await c.get('/Users')).status).toBe(429);
      // Another tenant's budget is its own.
      await other.c.post('/Bulk', bulk([postUser('x', 'x@acme.test')])).expect(200);
    } finally {
      await limited.close();
    }
  });
});

describe('SCIM /Bulk property', () => {
  const RUNS = fuzzRuns(15);
  const SEED = fuzzSeed(0xb01c);

  type Kind =
    | 'post'
    | 'postTaken'
    | 'postInvalid'
    | 'patchRef'
    | 'deleteRef'
    | 'deleteUnknown'
    | 'badMethod'
    | 'groupOfRefs';
  const kinds: Kind[] = [
    'post',
    'postTaken',
    'postInvalid',
    'patchRef',
    'deleteRef',
    'deleteUnknown',
    'badMethod',
    'groupOfRefs',
  ];

  it('answers one entry per operation in order, never 5xx; every 2xx effect is in the database and no 4xx one is', async () => {
    const { id: tenantId, c } = await tenant();
    await c.post('/Users', newUser('taken@acme.test')).expect(201);
    let run = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(fc.constantFrom(...kinds), fc.nat(20)), { minLength: 1, maxLength: 12 }),
        fc.option(fc.integer({ min: 1, max: 4 }), { nil: undefined }),
        async (plan, failOnErrors) => {
          run++;
          const ops = plan.map(([kind, n], i) => {
            const name = `r${run}-${i}@acme.test`;
            const ref = `bulkId:p${n % (i + 1)}`;
            switch (kind) {
              case 'post':
                return postUser(`p${i}`, name);
              case 'postTaken':
                return postUser(`p${i}`, 'taken@acme.test');
              case 'postInvalid':
                return { ...postUser(`p${i}`, name), data: { ...newUser(name), emails: 'not-a-list' } };
              case 'patchRef':
                return {
                  method: 'PATCH',
                  path: `/Users/${ref}`,
                  data: patchOp({ op: 'replace', path: 'title', value: `t${i}` }),
                };
              case 'deleteRef':
                return { method: 'DELETE', path: `/Users/${ref}` };
              case 'deleteUnknown':
                return { method: 'DELETE', path: `/Users/${randomUUID()}` };
              case 'badMethod':
                return { method: 'HEAD', path: '/Users' };
              case 'groupOfRefs':
                return postGroup(`p${i}`, `G ${run}-${i}`, [ref]);
            }
          });
          const res = await c.post('/Bulk', bulk(ops, failOnErrors === undefined ? {} : { failOnErrors }));
          expect(res.status).toBe(200);
          const got = entries(res.body);
          const failures = got.filter((e) => Number(e.status) >= 400).length;
          if (failOnErrors === undefined || failures < failOnErrors) expect(got).toHaveLength(ops.length);
          else expect(failures).toBe(failOnErrors);
          for (const e of got) expect(Number(e.status)).toBeLessThan(500);
          // In request order: every entry matches an operation, positions increasing.
          let at = -1;
          for (const e of got) {
            const next = ops.findIndex(
              (op, i) =>
                i > at &&
                op.method.toUpperCase() === e.method &&
                ('bulkId' in op ? op.bulkId : undefined) === e.bulkId,
            );
            expect(next).toBeGreaterThan(at);
            at = next;
          }
          for (const e of got.filter((x) => x.method === 'POST')) {
            const op = ops.find((o) => 'bulkId' in o && o.bulkId === e.bulkId) as {
              path: string;
              data: { userName?: string; displayName?: string };
            };
            if (Number(e.status) < 300) {
              expect(idOf(e)).toMatch(UUID);
              const table = op.path === '/Users' ? 'users' : 'groups';
              expect(await query(tenantId, `SELECT id FROM ${table} WHERE id = $1`, [idOf(e)])).toHaveLength(
                1,
              );
            } else if (op.path === '/Users' && op.data.userName !== 'taken@acme.test') {
              expect(
                await query(tenantId, 'SELECT id FROM users WHERE user_name = $1', [op.data.userName]),
              ).toEqual([]);
            } else if (op.path === '/Groups') {
              expect(
                await query(tenantId, 'SELECT id FROM groups WHERE display_name = $1', [op.data.displayName]),
              ).toEqual([]);
            }
          }
          for (const e of got.filter((x) => x.method === 'PATCH' && x.status === '200')) {
            const [row] = await query<{ status: string; attributes: { title?: string } }>(
              tenantId,
              'SELECT status, attributes FROM users WHERE id = $1',
              [idOf(e)],
            );
            // Patched, unless a later operation of the same request deleted the user.
            expect(row?.status === 'deleted' || row?.attributes.title !== undefined).toBe(true);
          }
          for (const e of got.filter((x) => x.method === 'DELETE' && x.status === '204')) {
            const [row] = await query<{ status: string }>(
              tenantId,
              'SELECT status FROM users WHERE id = $1',
              [idOf(e)],
            );
            expect(row?.status).toBe('deleted');
          }
        },
      ),
      { numRuns: RUNS, seed: SEED },
    );
  });
});
