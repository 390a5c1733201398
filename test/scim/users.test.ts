import { createTestDatabase, type TestDatabase } from '../support/database.js';
import {
  BASE_URL,
  createTenant,
  ENTERPRISE,
  ERROR,
  issueToken,
  LIST,
  newUser,
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

const row = async (id: string) =>
  (await t.db.withTenant(tenantId, (em) => em.query('SELECT * FROM users WHERE id = $1', [id])))[0];

describe('SCIM /Users', () => {
  it('creates a user: 201, Location, ETag, and the directory row', async () => {
    await t.db.withTenant(tenantId, (em) =>
      em.query(
        `INSERT INTO domains (tenant_id, domain, verification_token, verified_at, verification_method)
         VALUES ($1, 'acme.test', 'x', now(), 'manual')`,
        [tenantId],
      ),
    );
    const res = await c.post(
      '/Users',
      newUser('Alice@acme.test', {
        externalId: 'ext-alice',
        displayName: 'Alice A',
        title: 'Engineer',
        [ENTERPRISE]: { employeeNumber: '42', department: 'R&D', manager: { value: 'boss' } },
      }),
    );
    expect(res.status).toBe(201);
    expect(res.headers['content-type']).toMatch(/^application\/scim\+json/);
    const location = `${BASE_URL}/scim/v2/${tenantId}/Users/${res.body.id}`;
    expect(res.headers.location).toBe(location);
    expect(res.headers.etag).toBe('W/"1"');
    expect(res.body).toMatchObject({
      schemas: [USER_SCHEMA, ENTERPRISE],
      userName: 'Alice@acme.test',
      externalId: 'ext-alice',
      active: true,
      groups: [],
      title: 'Engineer',
      [ENTERPRISE]: { employeeNumber: '42', department: 'R&D', manager: { value: 'boss' } },
      meta: { resourceType: 'User', location, version: 'W/"1"' },
    });
    expect(await row(res.body.id)).toMatchObject({
      user_name: 'Alice@acme.test',
      email: 'Alice@acme.test',
      email_verified: true,
      given_name: 'Given',
      family_name: 'Family',
      display_name: 'Alice A',
      external_id: 'ext-alice',
      status: 'active',
    });
  });

  it('refuses a second live user with the same userName in any case (409 uniqueness), writing nothing', async () => {
    await c.post('/Users', newUser('bob@acme.test')).expect(201);
    const before = await t.db.withTenant(tenantId, (em) => em.query('SELECT count(*)::int AS n FROM users'));
    const res = await c.post('/Users', newUser('BOB@ACME.TEST'));
    expect(res.status).toBe(409);
    expect(res.body).toEqual({
      schemas: [ERROR],
      status: '409',
      scimType: 'uniqueness',
      detail: expect.any(String),
    });
    expect(await t.db.withTenant(tenantId, (em) => em.query('SELECT count(*)::int AS n FROM users'))).toEqual(
      before,
    );
  });

  it('frees the userName of a deleted user', async () => {
    const first = await c.post('/Users', newUser('carol@acme.test')).expect(201);
    await c.delete(`/Users/${first.body.id}`).expect(204);
    await c.get(`/Users/${first.body.id}`).expect(404);
    await c.delete(`/Users/${first.body.id}`).expect(404);
    const again = await c.post('/Users', newUser('carol@acme.test')).expect(201);
    expect(again.body.id).not.toBe(first.body.id);
    expect((await row(first.body.id)).status).toBe('deleted');
  });

  it('reads a user with its ETag, and honours attributes and excludedAttributes', async () => {
    const { body } = await c.post('/Users', newUser('dave@acme.test', { nickName: 'D' })).expect(201);
    const res = await c.get(`/Users/${body.id}`).expect(200);
    expect(res.headers.etag).toBe('W/"1"');
    expect(res.body).toMatchObject({ id: body.id, userName: 'dave@acme.test', nickName: 'D' });

    const only = await c.get(`/Users/${body.id}?attributes=userName`).expect(200);
    expect(Object.keys(only.body).sort()).toEqual(['id', 'schemas', 'userName']);
    const without = await c.get(`/Users/${body.id}?excludedAttributes=emails,name`).expect(200);
    expect(without.body).not.toHaveProperty('emails');
    expect(without.body).not.toHaveProperty('name');
    expect(without.body).toHaveProperty('userName', 'dave@acme.test');
  });

  it('replaces a user with PUT: what is not sent is cleared, read-only attributes echoed back are ignored', async () => {
    const { body } = await c
      .post('/Users', newUser('erin@acme.test', { nickName: 'E', title: 'CTO' }))
      .expect(201);
    const res = await c
      .put(`/Users/${body.id}`, {
        ...newUser('erin@acme.test', { displayName: 'Erin' }),
        id: body.id,
        groups: [{ value: 'ignored' }],
        meta: { resourceType: 'User' },
      })
      .expect(200);
    expect(res.body).toMatchObject({ displayName: 'Erin', meta: { version: 'W/"2"' }, groups: [] });
    expect(res.body).not.toHaveProperty('nickName');
    expect(res.body).not.toHaveProperty('title');
    expect(res.headers.etag).toBe('W/"2"');
  });

  it('answers 412 when If-Match names an older version, and writes nothing', async () => {
    const { body } = await c.post('/Users', newUser('frank@acme.test')).expect(201);
    await c
      .patch(`/Users/${body.id}`, patchOp({ op: 'replace', path: 'displayName', value: 'F1' }))
      .expect(200);
    const stale = await c
      .put(`/Users/${body.id}`, newUser('frank@acme.test', { displayName: 'F2' }))
      .set('If-Match', 'W/"1"');
    expect(stale.status).toBe(412);
    expect(stale.body).toMatchObject({ schemas: [ERROR], status: '412' });
    const patch = await c
      .patch(`/Users/${body.id}`, patchOp({ op: 'replace', path: 'displayName', value: 'F3' }))
      .set('If-Match', '"1"');
    expect(patch.status).toBe(412);
    await c.delete(`/Users/${body.id}`).set('If-Match', 'W/"1"').expect(412);
    expect((await row(body.id)).display_name).toBe('F1');
    await c
      .patch(`/Users/${body.id}`, patchOp({ op: 'replace', path: 'displayName', value: 'F4' }))
      .set('If-Match', 'W/"2"')
      .expect(200);
  });

  it('patches with and without paths, filtered paths and namespaced enterprise attributes', async () => {
    const { body } = await c
      .post('/Users', newUser('gina@acme.test', { phoneNumbers: [{ value: '+1 555', type: 'work' }] }))
      .expect(201);
    const res = await c
      .patch(
        `/Users/${body.id}`,
        patchOp(
          { op: 'add', path: 'nickName', value: 'G' },
          { op: 'replace', path: 'emails[type eq "work"].value', value: 'gina.new@acme.test' },
          { op: 'remove', path: 'phoneNumbers[type eq "work"]' },
          { op: 'replace', value: { title: 'VP', 'name.givenName': 'Georgina' } },
          { op: 'add', path: `${ENTERPRISE}:department`, value: 'Sales' },
        ),
      )
      .expect(200);
    expect(res.body).toMatchObject({
      nickName: 'G',
      title: 'VP',
      name: { givenName: 'Georgina', familyName: 'Family' },
      emails: [{ value: 'gina.new@acme.test', type: 'work', primary: true }],
      [ENTERPRISE]: { department: 'Sales' },
    });
    expect(res.body).not.toHaveProperty('phoneNumbers');
    expect(await row(body.id)).toMatchObject({ email: 'gina.new@acme.test', given_name: 'Georgina' });
  });

  it('refuses a PATCH of read-only attributes with 400 mutability', async () => {
    const { body } = await c.post('/Users', newUser('hank@acme.test')).expect(201);
    for (const op of [
      { op: 'add', path: 'groups', value: [{ value: 'x' }] },
      { op: 'replace', path: 'meta.created', value: '2020-01-01T00:00:00Z' },
      { op: 'replace', path: 'id', value: 'another' },
      { op: 'replace', value: { groups: [] } },
    ]) {
      const res = await c.patch(`/Users/${body.id}`, patchOp(op));
      expect({ op, status: res.status, scimType: res.body.scimType }).toEqual({
        op,
        status: 400,
        scimType: 'mutability',
      });
    }
    expect((await row(body.id)).version).toBe(1);
  });

  it('lists with startIndex/count pages, a capped count and a count of 0', async () => {
    const other = await createTenant(t);
    const list = scimClient(node.app, other, (await issueToken(t.db, other)).token);
    for (let i = 0; i < 7; i++) await list.post('/Users', newUser(`p${i}@page.test`)).expect(201);
    const page1 = await list.get('/Users?startIndex=1&count=3').expect(200);
    const page3 = await list.get('/Users?startIndex=7&count=3').expect(200);
    expect(page1.body).toMatchObject({ schemas: [LIST], totalResults: 7, startIndex: 1, itemsPerPage: 3 });
    expect(page3.body).toMatchObject({ totalResults: 7, startIndex: 7, itemsPerPage: 1 });
    const all = await list.get('/Users?count=5000').expect(200);
    expect(all.body.Resources).toHaveLength(7);
    const seen = new Set(
      [
        ...page1.body.Resources,
        ...(await list.get('/Users?startIndex=4&count=3')).body.Resources,
        ...page3.body.Resources,
      ].map((r: { id: string }) => r.id),
    );
    expect(seen.size).toBe(7);
    const none = await list.get('/Users?count=0').expect(200);
    expect(none.body).toMatchObject({ totalResults: 7, itemsPerPage: 0, Resources: [] });
  });

  it('deactivates with active=false and reactivates with active=true', async () => {
    const { body } = await c.post('/Users', newUser('ivy@acme.test')).expect(201);
    const off = await c
      .patch(`/Users/${body.id}`, patchOp({ op: 'replace', value: { active: false } }))
      .expect(200);
    expect(off.body.active).toBe(false);
    expect((await row(body.id)).status).toBe('suspended');
    // Suspended users stay visible to the IdP (Entra expects it).
    await c.get(`/Users/${body.id}`).expect(200);
    const on = await c
      .patch(`/Users/${body.id}`, patchOp({ op: 'replace', path: 'active', value: true }))
      .expect(200);
    expect(on.body.active).toBe(true);
    expect((await row(body.id)).status).toBe('active');
  });

  it('answers a POST /.search like the equivalent GET (RFC 7644 §3.4.3)', async () => {
    await c.post('/Users', newUser('search@acme.test')).expect(201);
    const res = await c
      .post('/Users/.search', {
        schemas: ['urn:ietf:params:scim:api:messages:2.0:SearchRequest'],
        filter: 'userName eq "search@acme.test"',
        attributes: ['userName'],
        startIndex: 1,
        count: 10,
      })
      .expect(200);
    expect(res.body).toMatchObject({
      schemas: [LIST],
      totalResults: 1,
      Resources: [{ userName: 'search@acme.test' }],
    });
    const bad = await c.post('/Users/.search', {
      schemas: ['urn:ietf:params:scim:api:messages:2.0:SearchRequest'],
      filter: 'userName eq',
    });
    expect(bad.status).toBe(400);
  });

  it('records every change in the tenant audit trail as the SCIM token', async () => {
    const { body } = await c.post('/Users', newUser('jack@acme.test')).expect(201);
    await c.patch(`/Users/${body.id}`, patchOp({ op: 'replace', path: 'active', value: false })).expect(200);
    await c.delete(`/Users/${body.id}`).expect(204);
    const events = await t.db.withTenant(tenantId, (em) =>
      em.query<{ action: string; actor_type: string }[]>(
        'SELECT action, actor_type FROM audit_events WHERE target_id = $1 ORDER BY seq',
        [body.id],
      ),
    );
    expect(events).toEqual([
      { action: 'scim.user.created', actor_type: 'scim' },
      { action: 'scim.user.suspended', actor_type: 'scim' },
      { action: 'scim.user.deleted', actor_type: 'scim' },
    ]);
  });
});
