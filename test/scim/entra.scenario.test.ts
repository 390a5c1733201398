import { randomUUID } from 'node:crypto';
import request from 'supertest';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { createTenant, ENTERPRISE, issueToken, LIST, startNode, type ScimNode } from './support.js';

/**
 * Microsoft Entra ID's provisioning requests (learn.microsoft.com, "Tutorial:
 * Develop and plan provisioning for a SCIM endpoint" and "Known issues with
 * SCIM 2.0 protocol compliance"), replayed in order: both the default
 * requests ("True"/"False", capitalised ops, remove with a value array) and the
 * ones sent with the aadOptscim062020 compliance flag.
 */
let t: TestDatabase;
let node: ScimNode;
let base: string;
let token: string;
const state: { userId?: string; managerId?: string; groupId?: string } = {};

const entra = {
  get: (path: string) =>
    request(node.app)
      .get(`${base}${path}`)
      .set('Authorization', `Bearer ${token}`)
      .set('Accept', 'application/scim+json'),
  delete: (path: string) =>
    request(node.app).delete(`${base}${path}`).set('Authorization', `Bearer ${token}`),
  send: (method: 'post' | 'patch', path: string, body: unknown) =>
    call(method, `${base}${path}`)
      .set('Authorization', `Bearer ${token}`)
      .set('Content-Type', 'application/scim+json')
      .send(JSON.stringify(body)),
};
const call = (method: 'post' | 'put' | 'patch', url: string) => request(node.app)[method](url);
const q = (filter: string) => encodeURIComponent(filter);
const patch = (...Operations: unknown[]) => ({
  schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'],
  Operations,
});
const userId = () => state.userId as string;
const groupId = () => state.groupId as string;

beforeAll(async () => {
  t = await createTestDatabase();
  node = await startNode(t);
  const tenantId = await createTenant(t);
  token = (await issueToken(t.db, tenantId)).token;
  base = `/scim/v2/${tenantId}`;
});
afterAll(async () => {
  await node.close();
  await t.close();
});

function noNulls(value: unknown, path = '$'): string[] {
  if (value === null) return [path];
  if (Array.isArray(value)) return value.flatMap((v, i) => noNulls(v, `${path}[${i}]`));
  if (typeof value === 'object') return Object.entries(value).flatMap(([k, v]) => noNulls(v, `${path}.${k}`));
  return [];
}

describe('Microsoft Entra ID provisioning, in order', () => {
  it('1. Test Connection: a random GUID userName and group name match nothing', async () => {
    const users = await entra.get(`/Users?filter=${q(`userName eq "${randomUUID()}"`)}`);
    expect(users.status).toBe(200);
    expect(users.body).toMatchObject({ schemas: [LIST], totalResults: 0, Resources: [] });
    const groups = await entra.get(
      `/Groups?excludedAttributes=members&filter=${q(`displayName eq "${randomUUID()}"`)}`,
    );
    expect(groups.body.totalResults).toBe(0);
  });

  it('2. discovers /Schemas: a ListResponse of User, Group and EnterpriseUser, camelCase, no nulls', async () => {
    const res = await entra.get('/Schemas').expect(200);
    expect(res.body.schemas).toEqual([LIST]);
    expect(res.body.Resources.map((s: { id: string }) => s.id).sort()).toEqual(
      [
        'urn:ietf:params:scim:schemas:core:2.0:Group',
        'urn:ietf:params:scim:schemas:core:2.0:User',
        ENTERPRISE,
      ].sort(),
    );
    expect(noNulls(res.body)).toEqual([]);
    const userName = res.body.Resources.find((s: { name: string }) => s.name === 'User').attributes[0];
    expect(userName).toMatchObject({
      name: 'userName',
      mutability: 'readWrite',
      returned: 'default',
      uniqueness: 'server',
    });
  });

  it('3. matches on externalId, then userName, before creating: nothing yet', async () => {
    for (const filter of [
      'externalId eq "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef"',
      'userName eq "Test_User_ab6490ee-1e48-479e-a20b-2d77186b5dd1"',
    ]) {
      expect((await entra.get(`/Users?filter=${q(filter)}`)).body.totalResults).toBe(0);
    }
  });

  it('4. creates the user (enterprise schema listed, meta and roles: [] sent) → 201', async () => {
    state.managerId = (
      await entra.send('post', '/Users', {
        schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'],
        externalId: 'manager-1',
        userName: 'Manager_1@testuser.com',
        active: true,
      })
    ).body.id;
    const res = await entra.send('post', '/Users', {
      schemas: [
        'urn:ietf:params:scim:schemas:core:2.0:User',
        'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User',
      ],
      externalId: '0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef',
      userName: 'Test_User_ab6490ee-1e48-479e-a20b-2d77186b5dd1',
      active: true,
      emails: [
        { primary: true, type: 'work', value: 'Test_User_fd0ea19b-0777-472c-9f96-4f70d2226f2e@testuser.com' },
      ],
      meta: { resourceType: 'User' },
      name: { formatted: 'givenName familyName', familyName: 'familyName', givenName: 'givenName' },
      roles: [],
    });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({
      id: expect.any(String),
      externalId: '0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef',
      userName: 'Test_User_ab6490ee-1e48-479e-a20b-2d77186b5dd1',
      active: true,
      meta: { resourceType: 'User', created: expect.any(String), lastModified: expect.any(String) },
    });
    state.userId = res.body.id;
  });

  it('5. finds the user by id, userName, externalId and emails[type eq "work"].value', async () => {
    await entra.get(`/Users/${userId()}`).expect(200);
    for (const filter of [
      'userName eq "Test_User_ab6490ee-1e48-479e-a20b-2d77186b5dd1"',
      'externalId eq "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef"',
      'emails[type eq "work"].value eq "Test_User_fd0ea19b-0777-472c-9f96-4f70d2226f2e@testuser.com"',
    ]) {
      const res = await entra.get(`/Users?filter=${q(filter)}`);
      expect({ filter, ids: res.body.Resources.map((r: { id: string }) => r.id) }).toEqual({
        filter,
        ids: [userId()],
      });
    }
  });

  it('6. updates multi-valued and single-valued attributes with capitalised Replace ops', async () => {
    const multi = await entra.send(
      'patch',
      `/Users/${userId()}`,
      patch(
        { op: 'Replace', path: 'emails[type eq "work"].value', value: 'updatedEmail@microsoft.com' },
        { op: 'Replace', path: 'name.familyName', value: 'updatedFamilyName' },
      ),
    );
    expect(multi.status).toBe(200);
    expect(multi.body).toMatchObject({
      name: { familyName: 'updatedFamilyName', givenName: 'givenName' },
      emails: [{ value: 'updatedEmail@microsoft.com', type: 'work', primary: true }],
    });
    const single = await entra.send(
      'patch',
      `/Users/${userId()}`,
      patch({ op: 'Replace', path: 'userName', value: '5b50642d-79fc-4410-9e90-4c077cdd1a59@testuser.com' }),
    );
    expect(single.body.userName).toBe('5b50642d-79fc-4410-9e90-4c077cdd1a59@testuser.com');
  });

  it('7. adds attributes: Add of a single value, a path-less replace keyed by paths, the manager as a bare id', async () => {
    await entra
      .send('patch', `/Users/${userId()}`, patch({ op: 'Add', path: 'nickName', value: 'Babs' }))
      .expect(200);
    const res = await entra.send(
      'patch',
      `/Users/${userId()}`,
      patch(
        { op: 'replace', path: 'emails[type eq "other"].value', value: 'proxy@testuser.com' },
        {
          op: 'replace',
          value: {
            displayName: 'Bjfe',
            'name.givenName': 'Kkom',
            'name.familyName': 'Unua',
            [`${ENTERPRISE}:employeeNumber`]: 'Aklq',
          },
        },
        { op: 'Add', path: `${ENTERPRISE}:manager`, value: state.managerId },
        { op: 'Replace', path: `${ENTERPRISE}:department`, value: 'Sales' },
      ),
    );
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      nickName: 'Babs',
      displayName: 'Bjfe',
      name: { givenName: 'Kkom', familyName: 'Unua' },
      emails: expect.arrayContaining([{ type: 'other', value: 'proxy@testuser.com' }]),
      [ENTERPRISE]: { employeeNumber: 'Aklq', department: 'Sales', manager: { value: state.managerId } },
    });
  });

  it('8. disables the user with "False" (default) and false (compliance flag)', async () => {
    const off = await entra.send(
      'patch',
      `/Users/${userId()}`,
      patch({ op: 'Replace', path: 'active', value: 'False' }),
    );
    expect(off.status).toBe(200);
    expect(off.body.active).toBe(false);
    await entra
      .send('patch', `/Users/${userId()}`, patch({ op: 'Replace', path: 'active', value: 'True' }))
      .expect(200);
    const flag = await entra.send(
      'patch',
      `/Users/${userId()}`,
      patch({ op: 'replace', path: 'active', value: false }),
    );
    expect(flag.body.active).toBe(false);
    // Soft-deleted users are still returned (Entra restores them with active=true).
    expect((await entra.get(`/Users/${userId()}`)).body.active).toBe(false);
    await entra
      .send('patch', `/Users/${userId()}`, patch({ op: 'replace', path: 'active', value: true }))
      .expect(200);
  });

  it('9. creates a group without members, listing a Microsoft schema URN it sends no data for → 201', async () => {
    const res = await entra.send('post', '/Groups', {
      schemas: [
        'urn:ietf:params:scim:schemas:core:2.0:Group',
        'http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group',
      ],
      externalId: '8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159',
      displayName: 'displayName',
      meta: { resourceType: 'Group' },
    });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({
      schemas: ['urn:ietf:params:scim:schemas:core:2.0:Group'],
      externalId: '8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159',
      displayName: 'displayName',
      members: [],
    });
    state.groupId = res.body.id;
  });

  it('10. reads the group and finds it by displayName, both with excludedAttributes=members', async () => {
    const one = await entra.get(`/Groups/${groupId()}?excludedAttributes=members`).expect(200);
    expect(one.body).not.toHaveProperty('members');
    const found = await entra.get(
      `/Groups?excludedAttributes=members&filter=${q('displayName eq "displayName"')}`,
    );
    expect(found.body).toMatchObject({ totalResults: 1, Resources: [{ id: groupId() }] });
    expect(found.body.Resources[0]).not.toHaveProperty('members');
  });

  it('11. updates the displayName → 204', async () => {
    const res = await entra.send(
      'patch',
      `/Groups/${groupId()}`,
      patch({
        op: 'Replace',
        path: 'displayName',
        value: '1879db59-3bdf-4490-ad68-ab880a269474updatedDisplayName',
      }),
    );
    expect(res.status).toBe(204);
  });

  it('12. adds a member → 204, and answers the membership query', async () => {
    const res = await entra.send(
      'patch',
      `/Groups/${groupId()}`,
      patch({ op: 'Add', path: 'members', value: [{ $ref: null, value: userId() }] }),
    );
    expect(res.status).toBe(204);
    const check = await entra.get(
      `/Groups?excludedAttributes=members&filter=${q(`id eq "${groupId()}" and members[value eq "${userId()}"]`)}`,
    );
    expect(check.body.totalResults).toBe(1);
  });

  it('13. removes the member with a value array (default) and with a filter path (compliance flag) → 204', async () => {
    const res = await entra.send(
      'patch',
      `/Groups/${groupId()}`,
      patch({ op: 'Remove', path: 'members', value: [{ value: userId() }] }),
    );
    expect(res.status).toBe(204);
    expect((await entra.get(`/Groups/${groupId()}`)).body.members).toEqual([]);
    await entra
      .send(
        'patch',
        `/Groups/${groupId()}`,
        patch({ op: 'Add', path: 'members', value: [{ value: userId() }] }),
      )
      .expect(204);
    await entra
      .send('patch', `/Groups/${groupId()}`, patch({ op: 'remove', path: `members[value eq "${userId()}"]` }))
      .expect(204);
    expect((await entra.get(`/Groups/${groupId()}`)).body.members).toEqual([]);
  });

  it('14. deletes the group and the user → 204, then 404', async () => {
    await entra.delete(`/Groups/${groupId()}`).expect(204);
    await entra.delete(`/Users/${userId()}`).expect(204);
    const gone = await entra.get(`/Users/${userId()}`);
    expect(gone.status).toBe(404);
    expect(gone.body).toMatchObject({
      schemas: ['urn:ietf:params:scim:api:messages:2.0:Error'],
      status: '404',
    });
  });
});
