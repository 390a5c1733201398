import { rolesForUser } from '../../src/directory/roles.service.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import {
  createTenant,
  GROUP_SCHEMA,
  issueToken,
  newUser,
  patchOp,
  scimClient,
  startNode,
  type ScimClient,
  type ScimNode,
} from './support.js';

let t: TestDatabase;
let node: ScimNode;
let tenantId: string;
let c: ScimClient;
const users: string[] = [];

beforeAll(async () => {
  t = await createTestDatabase();
  node = await startNode(t);
  tenantId = await createTenant(t);
  c = scimClient(node.app, tenantId, (await issueToken(t.db, tenantId)).token);
  for (const name of ['ann', 'ben', 'cat', 'dan']) {
    users.push((await c.post('/Users', newUser(`${name}@acme.test`)).expect(201)).body.id);
  }
});
afterAll(async () => {
  await node.close();
  await t.close();
});

const user = (i: number) => users[i] as string;
const ann = () => user(0);
const ben = () => user(1);
const cat = () => user(2);
const dan = () => user(3);
const group = (displayName: string, extra: Record<string, unknown> = {}) => ({
  schemas: [GROUP_SCHEMA],
  displayName,
  ...extra,
});
const memberIds = async (groupId: string) =>
  ((await c.get(`/Groups/${groupId}`).expect(200)).body.members ?? [])
    .map((m: { value: string }) => m.value)
    .sort();

describe('SCIM /Groups', () => {
  it('creates a group with members and reads it, members included or excluded', async () => {
    const res = await c.post(
      '/Groups',
      group('Engineering', { externalId: 'g-eng', members: [{ value: ann() }] }),
    );
    expect(res.status).toBe(201);
    expect(res.headers.etag).toBe('W/"1"');
    expect(res.body).toMatchObject({
      displayName: 'Engineering',
      externalId: 'g-eng',
      members: [{ value: ann(), display: 'ann@acme.test', type: 'User' }],
    });
    const slim = await c.get(`/Groups/${res.body.id}?excludedAttributes=members`).expect(200);
    expect(slim.body).not.toHaveProperty('members');
    expect(slim.body).toMatchObject({ id: res.body.id, displayName: 'Engineering' });
  });

  it('lists and filters groups by displayName, externalId and member', async () => {
    const ops = (await c.post('/Groups', group('Ops', { externalId: 'g-ops', members: [{ value: ben() }] })))
      .body;
    const byName = await c.get(
      `/Groups?filter=${encodeURIComponent('displayName eq "ops"')}&excludedAttributes=members`,
    );
    expect(byName.body.Resources.map((g: { id: string }) => g.id)).toEqual([ops.id]);
    const byExternal = await c.get(`/Groups?filter=${encodeURIComponent('externalId eq "g-ops"')}`);
    expect(byExternal.body.totalResults).toBe(1);
    const byMember = await c.get(
      `/Groups?filter=${encodeURIComponent(`id eq "${ops.id}" and members[value eq "${ben()}"]`)}&excludedAttributes=members`,
    );
    expect(byMember.body.totalResults).toBe(1);
    const notMember = await c.get(`/Groups?filter=${encodeURIComponent(`members[value eq "${cat()}"]`)}`);
    expect(notMember.body.totalResults).toBe(0);
  });

  it('refuses a second group with the same displayName (409 uniqueness)', async () => {
    await c.post('/Groups', group('Finance')).expect(201);
    const res = await c.post('/Groups', group('FINANCE'));
    expect(res.status).toBe(409);
    expect(res.body).toMatchObject({ scimType: 'uniqueness' });
  });

  it('adds and removes members with PATCH: filtered paths, value arrays and a full replace', async () => {
    const { id } = (await c.post('/Groups', group('Sales')).expect(201)).body;
    // Okta: remove by filter, add with a list.
    await c
      .patch(
        `/Groups/${id}`,
        patchOp(
          { op: 'add', path: 'members', value: [{ value: ann(), display: 'ann' }, { value: ben() }] },
          { op: 'remove', path: `members[value eq "${ann()}"]` },
          { op: 'add', path: 'members', value: [{ value: cat() }] },
        ),
      )
      .expect(204);
    expect(await memberIds(id)).toEqual([ben(), cat()].sort());
    // Entra: capitalised ops, remove with a value array carrying a null $ref (ssoready#182).
    const removed = await c.patch(
      `/Groups/${id}`,
      patchOp({ op: 'Remove', path: 'members', value: [{ $ref: null, value: ben() }] }),
    );
    expect(removed.status).toBe(204);
    expect(removed.headers.etag).toBe('W/"3"');
    expect(await memberIds(id)).toEqual([cat()]);
    // Okta push: replace the whole membership.
    await c
      .patch(
        `/Groups/${id}`,
        patchOp({ op: 'replace', path: 'members', value: [{ value: dan() }, { value: ann() }] }),
      )
      .expect(204);
    expect(await memberIds(id)).toEqual([ann(), dan()].sort());
    // Adding a member twice changes nothing and bumps no version.
    const again = await c.patch(
      `/Groups/${id}`,
      patchOp({ op: 'add', path: 'members', value: [{ value: dan() }] }),
    );
    expect(again.headers.etag).toBe('W/"4"');
    await c.patch(`/Groups/${id}`, patchOp({ op: 'remove', path: 'members' })).expect(204);
    expect(await memberIds(id)).toEqual([]);
  });

  it('renames with a path-less replace that repeats the id (Okta)', async () => {
    const { id } = (await c.post('/Groups', group('Old name')).expect(201)).body;
    await c
      .patch(`/Groups/${id}`, patchOp({ op: 'replace', value: { id, displayName: 'New name' } }))
      .expect(204);
    expect((await c.get(`/Groups/${id}`)).body.displayName).toBe('New name');
    const other = await c.patch(
      `/Groups/${id}`,
      patchOp({ op: 'replace', value: { id: users[0], displayName: 'x' } }),
    );
    expect(other.status).toBe(400);
    expect(other.body.scimType).toBe('mutability');
  });

  it('replaces a group and its members with PUT (Okta), and deletes it', async () => {
    const { id } = (await c.post('/Groups', group('Support', { members: [{ value: ann() }] })).expect(201))
      .body;
    const put = await c
      .put(`/Groups/${id}`, group('Support team', { id, members: [{ value: ben() }, { value: cat() }] }))
      .expect(200);
    expect(put.body.displayName).toBe('Support team');
    expect(await memberIds(id)).toEqual([ben(), cat()].sort());
    await c.delete(`/Groups/${id}`).expect(204);
    await c.get(`/Groups/${id}`).expect(404);
  });

  it('refuses members that are not users of this tenant, writing nothing', async () => {
    const { id } = (await c.post('/Groups', group('Closed', { members: [{ value: ann() }] })).expect(201))
      .body;
    const res = await c.patch(
      `/Groups/${id}`,
      patchOp(
        { op: 'add', path: 'members', value: [{ value: ben() }] },
        { op: 'add', path: 'members', value: [{ value: '00000000-0000-4000-8000-000000000000' }] },
      ),
    );
    expect(res.status).toBe(400);
    expect(res.body.scimType).toBe('invalidValue');
    expect(await memberIds(id)).toEqual([ann()]);
    const create = await c.post('/Groups', group('Bad', { members: [{ value: 'not-a-user' }] }));
    expect(create.status).toBe(400);
    expect(
      (await c.get(`/Groups?filter=${encodeURIComponent('displayName eq "Bad"')}`)).body.totalResults,
    ).toBe(0);
  });

  it("changes a user's roles for the next token when their groups change", async () => {
    await t.db.withTenant(tenantId, (em) =>
      em.query(
        `INSERT INTO role_mappings (tenant_id, group_attribute, group_value, role) VALUES ($1, 'display_name', 'Admins', 'admin')`,
        [tenantId],
      ),
    );
    const roles = () => t.db.withTenant(tenantId, (em) => rolesForUser(em, dan(), 'member'));
    expect(await roles()).toEqual(['member']);
    const { id } = (await c.post('/Groups', group('Admins')).expect(201)).body;
    await c
      .patch(`/Groups/${id}`, patchOp({ op: 'add', path: 'members', value: [{ value: dan() }] }))
      .expect(204);
    expect(await roles()).toEqual(['admin']);
    await c
      .patch(`/Groups/${id}`, patchOp({ op: 'remove', path: `members[value eq "${dan()}"]` }))
      .expect(204);
    expect(await roles()).toEqual(['member']);
  });

  it("shows a user's groups on the user, and drops a deleted user's memberships", async () => {
    const { body: user } = await c.post('/Users', newUser('eve@acme.test')).expect(201);
    const { id } = (await c.post('/Groups', group('Design', { members: [{ value: user.id }] })).expect(201))
      .body;
    expect((await c.get(`/Users/${user.id}`)).body.groups).toEqual([
      {
        value: id,
        display: 'Design',
        $ref: expect.stringMatching(new RegExp(`/Groups/${id}$`)),
        type: 'direct',
      },
    ]);
    await c.delete(`/Users/${user.id}`).expect(204);
    expect(await memberIds(id)).toEqual([]);
  });
});
