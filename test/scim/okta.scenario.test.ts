import { randomUUID } from 'node:crypto';
import request from 'supertest';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { createTenant, ERROR, issueToken, LIST, startNode, type ScimNode } from './support.js';

/**
 * Okta's documented SCIM 2.0 request sequence (developer.okta.com, "Okta and
 * SCIM Version 2.0"; the OIN Runscope spec tests), replayed in order with
 * Okta's bodies and headers, asserting what Okta requires of the answers.
 */
let t: TestDatabase;
let node: ScimNode;
let base: string;
let token: string;
let tenantId: string;
const state: { userId?: string; otherUserId?: string; groupId?: string } = {};

const OKTA_HEADERS = {
  'Content-Type': 'application/scim+json; charset=utf-8',
  Accept: 'application/scim+json',
  'User-Agent': 'Okta SCIM Client 1.0.0',
};

const call = (method: 'post' | 'put' | 'patch', url: string) => request(node.app)[method](url);

const okta = {
  get: (path: string) =>
    request(node.app).get(`${base}${path}`).set(OKTA_HEADERS).set('Authorization', `Bearer ${token}`),
  delete: (path: string) =>
    request(node.app).delete(`${base}${path}`).set(OKTA_HEADERS).set('Authorization', `Bearer ${token}`),
  send: (method: 'post' | 'put' | 'patch', path: string, body: unknown) =>
    call(method, `${base}${path}`)
      .set(OKTA_HEADERS)
      .set('Authorization', `Bearer ${token}`)
      .send(JSON.stringify(body)),
};

const userId = () => state.userId as string;
const groupId = () => state.groupId as string;

beforeAll(async () => {
  t = await createTestDatabase();
  node = await startNode(t);
  tenantId = await createTenant(t);
  token = (await issueToken(t.db, tenantId)).token;
  base = `/scim/v2/${tenantId}`;
});
afterAll(async () => {
  await node.close();
  await t.close();
});

const oktaUser = {
  schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'],
  userName: 'test.user@okta.local',
  name: { givenName: 'Test', familyName: 'User' },
  emails: [{ primary: true, value: 'test.user@okta.local', type: 'work' }],
  displayName: 'Test User',
  locale: 'en-US',
  externalId: '00ujl29u0le5T6Aj10h7',
  groups: [],
  password: '1mz050nq',
  active: true,
};

describe('Okta provisioning, in order', () => {
  it('1. connection test: a random userName filter finds nothing, as an empty ListResponse with integers', async () => {
    const res = await okta.get(
      `/Users?filter=userName%20eq%20%22${randomUUID()}%40okta.local%22&startIndex=1&count=1`,
    );
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/scim\+json/);
    expect(res.body).toEqual({
      schemas: [LIST],
      totalResults: 0,
      startIndex: 1,
      itemsPerPage: 0,
      Resources: [],
    });
    await okta.get('/Users?count=1&startIndex=1').expect(200);
  });

  it('2. looks the user up by userName with startIndex=1&count=100: not there yet', async () => {
    const res = await okta.get(
      '/Users?filter=userName%20eq%20%22test.user%40okta.local%22&startIndex=1&count=100',
    );
    expect(res.status).toBe(200);
    expect(res.body.totalResults).toBe(0);
  });

  it('3. creates the user with a placeholder password and groups: [] → 201 with the user (password never returned)', async () => {
    const res = await okta.send('post', '/Users', oktaUser);
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({
      schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'],
      id: expect.any(String),
      userName: 'test.user@okta.local',
      name: { givenName: 'Test', familyName: 'User' },
      emails: [{ primary: true, value: 'test.user@okta.local', type: 'work' }],
      displayName: 'Test User',
      locale: 'en-US',
      externalId: '00ujl29u0le5T6Aj10h7',
      active: true,
      groups: [],
      meta: { resourceType: 'User' },
    });
    expect(JSON.stringify(res.body)).not.toContain('1mz050nq');
    state.userId = res.body.id;
    const stored = await t.db.withTenant(tenantId, (em) =>
      em.query(`SELECT u.attributes, (SELECT json_agg(a) FROM audit_events a) AS audit FROM users u`),
    );
    expect(JSON.stringify(stored)).not.toContain('1mz050nq');
  });

  it('4. a second create of the same user answers 409 with the error schema (stops the job)', async () => {
    const res = await okta.send('post', '/Users', oktaUser);
    expect(res.status).toBe(409);
    expect(res.body).toMatchObject({ schemas: [ERROR], status: '409', scimType: 'uniqueness' });
  });

  it('5. the lookup now finds it; the import lists users page by page', async () => {
    const found = await okta.get(
      '/Users?filter=userName%20eq%20%22test.user%40okta.local%22&startIndex=1&count=100',
    );
    expect(found.body).toMatchObject({
      totalResults: 1,
      startIndex: 1,
      itemsPerPage: 1,
      Resources: [{ id: userId() }],
    });
    const all = await okta.get('/Users?startIndex=1&count=100').expect(200);
    expect(Number.isInteger(all.body.totalResults) && Number.isInteger(all.body.itemsPerPage)).toBe(true);
  });

  it('6. GET then full PUT of the user (profile update)', async () => {
    const current = await okta.get(`/Users/${userId()}`).expect(200);
    const res = await okta.send('put', `/Users/${userId()}`, {
      schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'],
      id: userId(),
      userName: 'test.user@okta.local',
      name: { givenName: 'Another', middleName: 'Excited', familyName: 'User' },
      emails: [
        { primary: true, value: 'test.user@okta.local', type: 'work', display: 'test.user@okta.local' },
      ],
      active: true,
      groups: current.body.groups,
      meta: { resourceType: 'User' },
    });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      id: userId(),
      name: { givenName: 'Another', middleName: 'Excited', familyName: 'User' },
    });
  });

  it('7. deactivates by PATCH {"op":"replace","value":{"active":false}} → 200 with the user', async () => {
    const res = await okta.send('patch', `/Users/${userId()}`, {
      schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'],
      Operations: [{ op: 'replace', value: { active: false } }],
    });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ id: userId(), active: false });
  });

  it('8. syncs a password and reactivates by PATCH', async () => {
    await okta
      .send('patch', `/Users/${userId()}`, {
        schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'],
        Operations: [{ op: 'replace', value: { password: 't1meMa$heen' } }],
      })
      .expect(200);
    const res = await okta.send('patch', `/Users/${userId()}`, {
      schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'],
      Operations: [{ op: 'replace', value: { active: true } }],
    });
    expect(res.body.active).toBe(true);
  });

  it('9. a wizard (AIW) app deactivates by PUT with active: false', async () => {
    const res = await okta.send('put', `/Users/${userId()}`, {
      schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'],
      id: userId(),
      userName: 'test.user@okta.local',
      name: { givenName: 'Another', familyName: 'User' },
      emails: [{ primary: true, value: 'test.user@okta.local', type: 'work' }],
      active: false,
      groups: [],
      meta: { resourceType: 'User' },
    });
    expect(res.status).toBe(200);
    expect(res.body.active).toBe(false);
    await okta
      .send('patch', `/Users/${userId()}`, {
        schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'],
        Operations: [{ op: 'replace', value: { active: true } }],
      })
      .expect(200);
    state.otherUserId = (
      await okta.send('post', '/Users', { ...oktaUser, userName: 'second@okta.local', externalId: '00u2' })
    ).body.id;
  });

  it('10. group push: creates the group with members: [] → 201', async () => {
    const res = await okta.send('post', '/Groups', {
      schemas: ['urn:ietf:params:scim:schemas:core:2.0:Group'],
      displayName: 'Test SCIMv2',
      members: [],
    });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({
      id: expect.any(String),
      displayName: 'Test SCIMv2',
      members: [],
      meta: { resourceType: 'Group' },
    });
    state.groupId = res.body.id;
    await okta.get(`/Groups/${groupId()}`).expect(200);
  });

  it('11. renames by PATCH replace with the id in the value', async () => {
    const res = await okta.send('patch', `/Groups/${groupId()}`, {
      schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'],
      Operations: [{ op: 'replace', value: { id: groupId(), displayName: 'Test SCIMv20' } }],
    });
    expect([200, 204]).toContain(res.status);
    expect((await okta.get(`/Groups/${groupId()}`)).body.displayName).toBe('Test SCIMv20');
  });

  it('12. pushes membership: remove by filter, add with a list', async () => {
    const res = await okta.send('patch', `/Groups/${groupId()}`, {
      schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'],
      Operations: [
        { op: 'remove', path: 'members[value eq "89bb1940-b905-4575-9e7f-6f887cfb368e"]' },
        { op: 'add', path: 'members', value: [{ value: userId(), display: 'test.user@okta.local' }] },
      ],
    });
    expect([200, 204]).toContain(res.status);
    expect((await okta.get(`/Groups/${groupId()}`)).body.members).toEqual([
      expect.objectContaining({ value: userId() }),
    ]);
  });

  it('13. replaces the whole membership with PATCH replace, and with PUT (AIW)', async () => {
    await okta
      .send('patch', `/Groups/${groupId()}`, {
        schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'],
        Operations: [
          {
            op: 'replace',
            path: 'members',
            value: [
              { value: userId(), display: 'test.user@okta.local' },
              { value: state.otherUserId, display: 'second@okta.local' },
            ],
          },
        ],
      })
      .expect(204);
    expect((await okta.get(`/Groups/${groupId()}`)).body.members).toHaveLength(2);
    const put = await okta.send('put', `/Groups/${groupId()}`, {
      schemas: ['urn:ietf:params:scim:schemas:core:2.0:Group'],
      id: groupId(),
      displayName: 'Test SCIMv20',
      members: [{ value: state.otherUserId, display: 'second@okta.local' }],
    });
    expect(put.status).toBe(200);
    expect(put.body.members).toEqual([expect.objectContaining({ value: state.otherUserId })]);
  });

  it('14. imports groups page by page, then unlinks the pushed group with DELETE → 204', async () => {
    const list = await okta.get('/Groups?startIndex=1&count=100').expect(200);
    expect(list.body).toMatchObject({ schemas: [LIST], totalResults: 1, startIndex: 1 });
    await okta.delete(`/Groups/${groupId()}`).expect(204);
    await okta.get(`/Groups/${groupId()}`).expect(404);
  });
});
