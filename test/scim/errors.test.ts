import request from 'supertest';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import {
  createTenant,
  ENTERPRISE,
  ERROR,
  GROUP_SCHEMA,
  issueToken,
  newUser,
  PATCH_OP,
  patchOp,
  scimClient,
  startNode,
  USER_SCHEMA,
  type ScimClient,
  type ScimNode,
} from './support.js';

let t: TestDatabase;
let node: ScimNode;
let tenantId: string;
let token: string;
let c: ScimClient;
let userId: string;

beforeAll(async () => {
  t = await createTestDatabase();
  node = await startNode(t, { env: { GATEHOUSE_SCIM_MAX_PAGE_SIZE: '50' } });
  tenantId = await createTenant(t);
  token = (await issueToken(t.db, tenantId)).token;
  c = scimClient(node.app, tenantId, token);
  userId = (await c.post('/Users', newUser('kept@acme.test')).expect(201)).body.id;
});
afterAll(async () => {
  await node.close();
  await t.close();
});

const state = () =>
  t.db.withTenant(tenantId, (em) =>
    em.query(
      `SELECT (SELECT count(*)::int FROM users) AS users, (SELECT count(*)::int FROM groups) AS groups,
              (SELECT max(version) FROM users) AS version, (SELECT count(*)::int FROM audit_events) AS audit`,
    ),
  );

describe('SCIM bad input', () => {
  const badWrites: [string, () => request.Test, number, string | undefined][] = [
    [
      'malformed JSON',
      () =>
        request(node.app)
          .post(`/scim/v2/${tenantId}/Users`)
          .set('Authorization', `Bearer ${token}`)
          .set('Content-Type', 'application/scim+json')
          .send('{"userName": '),
      400,
      'invalidSyntax',
    ],
    ['an array body', () => c.post('/Users', [newUser('x@acme.test')]), 400, 'invalidSyntax'],
    [
      'another resource schema',
      () => c.post('/Users', { schemas: [GROUP_SCHEMA], userName: 'x@acme.test' }),
      400,
      'invalidSyntax',
    ],
    [
      'data under an unknown schema extension',
      () =>
        c.post(
          '/Users',
          newUser('x@acme.test', { 'urn:example:params:scim:schemas:extension:custom:2.0:User': { tag: 1 } }),
        ),
      400,
      'invalidSyntax',
    ],
    [
      'no userName',
      () => c.post('/Users', { schemas: [USER_SCHEMA], displayName: 'x' }),
      400,
      'invalidValue',
    ],
    [
      'a userName that is not a string',
      () => c.post('/Users', { schemas: [USER_SCHEMA], userName: 7 }),
      400,
      'invalidValue',
    ],
    [
      'a boolean that is not one',
      () => c.post('/Users', newUser('x@acme.test', { active: 'maybe' })),
      400,
      'invalidValue',
    ],
    [
      'a PatchOp without its schema',
      () => c.patch(`/Users/${userId}`, { Operations: [{ op: 'add', path: 'title', value: 'x' }] }),
      400,
      'invalidSyntax',
    ],
    [
      'an unknown operation',
      () => c.patch(`/Users/${userId}`, patchOp({ op: 'merge', path: 'title', value: 'x' })),
      400,
      'invalidSyntax',
    ],
    [
      'no operations',
      () => c.patch(`/Users/${userId}`, { schemas: [PATCH_OP], Operations: [] }),
      400,
      'invalidValue',
    ],
    [
      'a path the schema does not have',
      () => c.patch(`/Users/${userId}`, patchOp({ op: 'replace', path: 'shoeSize', value: 9 })),
      400,
      'invalidPath',
    ],
    [
      'a remove without a path',
      () => c.patch(`/Users/${userId}`, patchOp({ op: 'remove' })),
      400,
      'noTarget',
    ],
    [
      'a later failing operation after a good one',
      () =>
        c.patch(
          `/Users/${userId}`,
          patchOp(
            { op: 'replace', path: 'title', value: 'CEO' },
            { op: 'replace', path: 'userName', value: 42 },
          ),
        ),
      400,
      'invalidValue',
    ],
    [
      'removing the required userName',
      () => c.patch(`/Users/${userId}`, patchOp({ op: 'remove', path: 'userName' })),
      400,
      'invalidValue',
    ],
    [
      'a group without displayName',
      () => c.post('/Groups', { schemas: [GROUP_SCHEMA], members: [] }),
      400,
      'invalidValue',
    ],
  ];

  it.each(badWrites)(
    'refuses %s with an RFC 7644 error, writing nothing',
    async (_what, send, status, scimType) => {
      const before = await state();
      const res = await send();
      expect(res.status).toBe(status);
      expect(res.headers['content-type']).toMatch(/^application\/scim\+json/);
      expect(res.body).toEqual({
        schemas: [ERROR],
        status: String(status),
        ...(scimType ? { scimType } : {}),
        detail: expect.any(String),
      });
      expect(await state()).toEqual(before);
    },
  );

  it.each([
    ['count=-1', 'invalidValue'],
    ['count=ten', 'invalidValue'],
    ['startIndex=first', 'invalidValue'],
    ['filter=userName%20eq%20%22a%22&filter=userName%20eq%20%22b%22', 'invalidValue'],
    ['attributes=user%20name', 'invalidValue'],
    ['filter=', 'invalidFilter'],
  ])('refuses a list with %s (400 %s)', async (query, scimType) => {
    const res = await c.get(`/Users?${query}`);
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ schemas: [ERROR], status: '400', scimType });
  });

  it('caps a count above the maximum page size (RFC 7644 §3.4.2.4)', async () => {
    for (let i = 0; i < 55; i++) await c.post('/Users', newUser(`bulk${i}@acme.test`)).expect(201);
    const res = await c.get('/Users?count=1000').expect(200);
    expect(res.body).toMatchObject({ itemsPerPage: 50, totalResults: 56 });
  });

  it('accepts booleans as "True"/"False" strings (Entra ID)', async () => {
    const res = await c.post(
      '/Users',
      newUser('entra@acme.test', { active: 'False', [ENTERPRISE]: { manager: 'm-7' } }),
    );
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ active: false, [ENTERPRISE]: { manager: { value: 'm-7' } } });
  });

  it('answers unknown ids 404 and unknown or unsupported endpoints with SCIM errors', async () => {
    expect((await c.get('/Users/not-a-uuid')).status).toBe(404);
    expect((await c.get('/Users/6b1f1c8e-0000-4000-8000-000000000000')).body).toMatchObject({
      status: '404',
    });
    expect(
      (
        await c.patch(
          '/Groups/6b1f1c8e-0000-4000-8000-000000000000',
          patchOp({ op: 'remove', path: 'members' }),
        )
      ).status,
    ).toBe(404);
    const unknown = await c.get('/Nothing');
    expect(unknown.status).toBe(404);
    expect(unknown.body).toMatchObject({ schemas: [ERROR], status: '404' });
    const bulk = await c.post('/Bulk', {
      schemas: ['urn:ietf:params:scim:api:messages:2.0:BulkRequest'],
      Operations: [],
    });
    expect(bulk.status).toBe(200); // issue 10: /Bulk is served (test/scim/bulk.test.ts)
  });

  it('refuses a body over the size limit with 413', async () => {
    const res = await c.post('/Users', newUser('big@acme.test', { title: 'x'.repeat(1_100_000) }));
    expect(res.status).toBe(413);
    expect(res.body).toMatchObject({ schemas: [ERROR], status: '413' });
  });
});

describe('SCIM rate limit', () => {
  it("answers 429 with Retry-After past a tenant's limit, and keeps serving other tenants", async () => {
    const limited = await startNode(t, { env: { GATEHOUSE_SCIM_RATE_LIMIT: '3' }, listen: false });
    try {
      const a = await createTenant(t);
      const b = await createTenant(t);
      const ca = scimClient(limited.app, a, (await issueToken(t.db, a)).token);
      const cb = scimClient(limited.app, b, (await issueToken(t.db, b)).token);
      for (let i = 0; i < 3; i++) await ca.get('/Users').expect(200);
      const res = await ca.post('/Users', newUser('flood@acme.test'));
      expect(res.status).toBe(429);
      expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
      expect(res.headers['content-type']).toMatch(/^application\/scim\+json/);
      expect(res.body).toEqual({ schemas: [ERROR], status: '429', detail: expect.any(String) });
      expect(await t.db.withTenant(a, (em) => em.query('SELECT 1 FROM users'))).toEqual([]);
      await cb.get('/Users').expect(200);
    } finally {
      await limited.close();
    }
  });
});
