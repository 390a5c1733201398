import type request from 'supertest';
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
} from '../scim/support.js';
import { tenantSnapshot } from '../support/tenant-admin-token.js';
import { mountedRoutes } from './cross-tenant-registry.js';

/**
 * SCIM across tenants, completing test/scim/cross-tenant.security.test.ts:
 * every mounted SCIM route (the /.search endpoints, /Bulk, /Me and the
 * discovery documents included) refuses tenant A's token on tenant B's path,
 * and a search with A's token on A's own path never returns B's resources.
 */
const SEARCH = 'urn:ietf:params:scim:api:messages:2.0:SearchRequest';
const BULK = 'urn:ietf:params:scim:api:messages:2.0:BulkRequest';

let t: TestDatabase;
let node: ScimNode;
let a: { id: string; c: ScimClient; token: string };
let b: { id: string; c: ScimClient; token: string };
let bUser: string;
let bGroup: string;
/** What must never appear in an answer to A. */
let bSecrets: string[];

async function tenant() {
  const id = await createTenant(t);
  const { token } = await issueToken(t.db, id);
  return { id, token, c: scimClient(node.app, id, token) };
}

beforeAll(async () => {
  t = await createTestDatabase();
  // Every refusal below is a 401; the per-address limiter must not turn them into 429s.
  node = await startNode(t, { env: { GATEHOUSE_SCIM_AUTH_FAILURE_LIMIT: '10000' } });
  a = await tenant();
  b = await tenant();
  await a.c.post('/Users', newUser('alice@a.test')).expect(201);
  bUser = (await b.c.post('/Users', newUser('secret@b.test', { externalId: 'b-ext-7' })).expect(201)).body
    .id as string;
  bGroup = (
    await b.c
      .post('/Groups', { schemas: [GROUP_SCHEMA], displayName: 'B covert team', members: [{ value: bUser }] })
      .expect(201)
  ).body.id as string;
  bSecrets = [bUser, bGroup, 'secret@b.test', 'b-ext-7', 'B covert team'];
});
afterAll(async () => {
  await node.close();
  await t.close();
});

function refusedWithoutB(res: request.Response, call: string) {
  expect({ call, status: res.status }).toEqual({ call, status: 401 });
  expect(res.body).toEqual({ schemas: [ERROR], status: '401', detail: 'Missing or invalid bearer token' });
  for (const secret of [...bSecrets, b.id]) expect(res.text).not.toContain(secret);
}

type Call = [method: 'get' | 'post' | 'put' | 'patch' | 'delete', path: string, body?: unknown];

const searchBody = (filter?: string) => ({
  schemas: [SEARCH],
  ...(filter ? { filter } : {}),
  startIndex: 1,
  count: 100,
});

describe('SCIM across tenants', () => {
  it("refuses tenant A's token on every SCIM route of tenant B with 401 and no B data", async () => {
    await a.c.get('/Users').expect(200); // A's token is valid (and cached) for A
    const onB = scimClient(node.app, b.id, a.token);
    const user = newUser('intruder@a.test');
    const group = { schemas: [GROUP_SCHEMA], displayName: 'Intruders' };
    const calls: Call[] = [
      ['get', '/Users'],
      ['post', '/Users', user],
      ['get', `/Users/${bUser}`],
      ['put', `/Users/${bUser}`, user],
      ['patch', `/Users/${bUser}`, patchOp({ op: 'replace', path: 'active', value: false })],
      ['delete', `/Users/${bUser}`],
      ['post', '/Users/.search', searchBody('userName eq "secret@b.test"')],
      ['get', '/Groups'],
      ['post', '/Groups', group],
      ['get', `/Groups/${bGroup}`],
      ['put', `/Groups/${bGroup}`, group],
      ['patch', `/Groups/${bGroup}`, patchOp({ op: 'remove', path: 'members' })],
      ['delete', `/Groups/${bGroup}`],
      ['post', '/Groups/.search', searchBody('displayName eq "B covert team"')],
      ['post', '/.search', searchBody()],
      ['post', '/Bulk', { schemas: [BULK], Operations: [{ method: 'DELETE', path: `/Users/${bUser}` }] }],
      ['get', '/Me'],
      ['get', '/ServiceProviderConfig'],
      ['get', '/Schemas'],
      ['get', '/Schemas/urn:ietf:params:scim:schemas:core:2.0:User'],
      ['get', '/ResourceTypes'],
      ['get', '/ResourceTypes/User'],
    ];
    // The table is every SCIM route the app mounts: a new one must be added here.
    const templates = calls.map(
      ([method, path]) =>
        `${method.toUpperCase()} /scim/v2/:tenantId${path
          .replace(/\/(Users|Groups)\/[0-9a-f-]{36}$/, '/$1/:id')
          .replace(/\/(Schemas|ResourceTypes)\/[^/]+$/, '/$1/:id')}`,
    );
    const mounted = mountedRoutes(node.app).filter((r) => r.includes(' /scim/v2/'));
    expect([...new Set(templates)].sort()).toEqual(mounted);

    const before = await tenantSnapshot(t, b.id);
    for (const [method, path, body] of calls) {
      const res =
        body === undefined ? await onB[method as 'get'](path) : await onB[method as 'post'](path, body);
      refusedWithoutB(res, `${method.toUpperCase()} ${path}`);
    }
    expect(await tenantSnapshot(t, b.id)).toEqual(before);
  });

  it("refuses A's token on B's /.search endpoints with 401 and nothing of B in the body", async () => {
    const onB = scimClient(node.app, b.id, a.token);
    const before = await tenantSnapshot(t, b.id);
    for (const path of ['/.search', '/Users/.search', '/Groups/.search'])
      for (const body of [searchBody(), searchBody(`id eq "${bUser}"`), { schemas: [SEARCH] }])
        refusedWithoutB(await onB.post(path, body), `POST ${path}`);
    // B's own token sees its user there (control: the requests above were well-formed).
    const own = await b.c.post('/Users/.search', searchBody('userName eq "secret@b.test"')).expect(200);
    expect(own.body.totalResults).toBe(1);
    expect(await tenantSnapshot(t, b.id)).toEqual(before);
  });

  it("finds none of B's users or groups through /.search with A's token on A's path", async () => {
    const filters: [path: string, filter: string | undefined][] = [
      ['/Users/.search', 'userName eq "secret@b.test"'],
      ['/Users/.search', 'externalId eq "b-ext-7"'],
      ['/Users/.search', `id eq "${bUser}"`],
      ['/Users/.search', 'userName sw "secret"'],
      ['/Users/.search', undefined],
      ['/Groups/.search', 'displayName eq "B covert team"'],
      ['/Groups/.search', `members.value eq "${bUser}"`],
      ['/Groups/.search', undefined],
      ['/.search', 'userName eq "secret@b.test"'],
      ['/.search', undefined],
    ];
    for (const [path, filter] of filters) {
      const res = await a.c.post(path, searchBody(filter));
      // A root /.search may be refused (RFC 7644 §3.4.3 lets a provider decline it); never with B's data.
      expect({ path, filter, status: res.status < 500 }).toEqual({ path, filter, status: true });
      for (const secret of bSecrets) expect(res.text).not.toContain(secret);
      if (res.status === 200 && filter !== undefined)
        expect({ path, filter, total: res.body.totalResults }).toEqual({ path, filter, total: 0 });
    }
    // Unfiltered: A sees exactly its own user.
    const all = await a.c.post('/Users/.search', searchBody()).expect(200);
    expect((all.body.Resources as { userName: string }[]).map((r) => r.userName)).toEqual(['alice@a.test']);
  });
});
