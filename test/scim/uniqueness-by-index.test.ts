import { createTestDatabase, type TestDatabase } from '../support/database.js';
import {
  createTenant,
  ERROR,
  GROUP_SCHEMA,
  issueToken,
  newUser,
  patchOp,
  scimClient,
  startNode,
  type ScimClient,
  type ScimNode,
} from './support.js';

/**
 * Issue 13: the unique indexes on the stored lookup keys are the only check of
 * a free userName or SCIM group name (no read before the write), and lists
 * count only when the page cannot tell the total. What a client sees must not
 * change: the same RFC 7644 §3.12 409 body, nothing written by a refused
 * request, and an exact totalResults (§3.4.2).
 */

let t: TestDatabase;
let node: ScimNode;
let tenantId: string;
let c: ScimClient;

beforeAll(async () => {
  t = await createTestDatabase();
  node = await startNode(t);
  tenantId = await createTenant(t);
  c = scimClient(node.app, tenantId, (await issueToken(t.db, tenantId)).token);
});
afterAll(async () => {
  await node.close();
  await t.close();
});

const UNIQUENESS = { schemas: [ERROR], status: '409', scimType: 'uniqueness', detail: expect.any(String) };

/** Everything a refused write could have touched, for a before/after comparison. */
const snapshot = () =>
  t.db.withTenant(tenantId, async (em) => ({
    users: await em.query('SELECT id, user_name, version, status FROM users ORDER BY id'),
    groups: await em.query('SELECT id, display_name, version FROM groups ORDER BY id'),
    members: await em.query('SELECT group_id, user_id FROM group_members ORDER BY group_id, user_id'),
    audit: await em.query('SELECT count(*)::int AS n FROM audit_events'),
  }));

describe('uniqueness answered by the unique index', () => {
  it('refuses a PUT or PATCH onto a taken userName (any case) with 409 uniqueness, changing nothing', async () => {
    await c.post('/Users', newUser('taken@acme.test')).expect(201);
    const { id } = (await c.post('/Users', newUser('mover@acme.test')).expect(201)).body as { id: string };
    const before = await snapshot();
    const put = await c.put(`/Users/${id}`, newUser('TAKEN@acme.test'));
    expect([put.status, put.body]).toEqual([409, UNIQUENESS]);
    const patch = await c.patch(
      `/Users/${id}`,
      patchOp({ op: 'replace', path: 'userName', value: 'Taken@Acme.Test' }),
    );
    expect([patch.status, patch.body]).toEqual([409, UNIQUENESS]);
    expect(await snapshot()).toEqual(before);
    // The refused requests held no lock and left no aborted state: the user is still writable.
    await c
      .patch(`/Users/${id}`, patchOp({ op: 'replace', path: 'displayName', value: 'Mover' }))
      .expect(200);
  });

  it('lets exactly one of concurrent creators of one userName through; the others get 409 uniqueness', async () => {
    const results = await Promise.all(
      ['Race@acme.test', 'race@ACME.test', 'RACE@acme.test'].map((name) => c.post('/Users', newUser(name))),
    );
    expect(results.map((r) => r.status).sort()).toEqual([201, 409, 409]);
    for (const r of results.filter((x) => x.status === 409)) expect(r.body).toEqual(UNIQUENESS);
  });

  it('refuses a group create or PUT onto a taken displayName, keeping the members the PUT would replace', async () => {
    const user = (await c.post('/Users', newUser('member@acme.test')).expect(201)).body as { id: string };
    const group = (name: string, members: string[] = []) => ({
      schemas: [GROUP_SCHEMA],
      displayName: name,
      members: members.map((value) => ({ value })),
    });
    await c.post('/Groups', group('Finance')).expect(201);
    const { id } = (await c.post('/Groups', group('Sales', [user.id])).expect(201)).body as { id: string };
    const before = await snapshot();
    const create = await c.post('/Groups', group('FINANCE'));
    expect([create.status, create.body]).toEqual([409, UNIQUENESS]);
    const put = await c.put(`/Groups/${id}`, group('finance', []));
    expect([put.status, put.body]).toEqual([409, UNIQUENESS]);
    expect(await snapshot()).toEqual(before);
  });
});

describe('totalResults without a window count', () => {
  beforeAll(async () => {
    for (const n of [1, 2, 3, 4, 5]) await c.post('/Users', newUser(`page${n}@list.test`)).expect(201);
  });

  const page = async (startIndex: number, count: number) => {
    const filter = encodeURIComponent('userName sw "PAGE"');
    const res = await c.get(`/Users?filter=${filter}&startIndex=${startIndex}&count=${count}`).expect(200);
    return { total: res.body.totalResults as number, items: (res.body.Resources ?? []).length as number };
  };

  it.each([
    ['a full first page (counted)', 1, 2, 2],
    ['a middle page (counted)', 3, 2, 2],
    ['the last, short page (told by the page)', 5, 2, 1],
    ['past the end (counted)', 9, 2, 0],
    ['count=0 (counted)', 1, 0, 0],
    ['one page holding all (told by the page)', 1, 100, 5],
  ])('answers the exact total on %s', async (_, startIndex, count, items) => {
    expect(await page(startIndex, count)).toEqual({ total: 5, items });
  });
});
