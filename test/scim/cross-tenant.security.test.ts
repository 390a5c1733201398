import request from 'supertest';
import { CHANNELS } from '../../src/db/notification-bus.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import {
  createTenant,
  ERROR,
  GROUP_SCHEMA,
  issueToken,
  newUser,
  nextNotification,
  patchOp,
  revokeToken,
  scimClient,
  startNode,
  type ScimClient,
  type ScimNode,
} from './support.js';

let t: TestDatabase;
let node: ScimNode;
let a: { id: string; token: string; tokenId: string; c: ScimClient };
let b: { id: string; token: string; tokenId: string; c: ScimClient };
let bUser: string;
let bGroup: string;

async function tenant() {
  const id = await createTenant(t);
  const issued = await issueToken(t.db, id);
  return { id, token: issued.token, tokenId: issued.id, c: scimClient(node.app, id, issued.token) };
}

beforeAll(async () => {
  t = await createTestDatabase();
  node = await startNode(t);
  a = await tenant();
  b = await tenant();
  bUser = (await b.c.post('/Users', newUser('secret@b.test', { externalId: 'b-ext' })).expect(201)).body.id;
  bGroup = (
    await b.c.post('/Groups', { schemas: [GROUP_SCHEMA], displayName: 'B team', members: [{ value: bUser }] })
  ).body.id;
});
afterAll(async () => {
  await node.close();
  await t.close();
});

const bState = () =>
  t.db.withTenant(b.id, (em) =>
    em.query(`SELECT (SELECT json_agg(u ORDER BY id) FROM users u) AS users,
                     (SELECT json_agg(g ORDER BY id) FROM groups g) AS groups,
                     (SELECT count(*)::int FROM group_members) AS members`),
  );

const unauthorized = (res: request.Response) => {
  expect(res.status).toBe(401);
  expect(res.headers['www-authenticate']).toMatch(/^Bearer /);
  expect(res.body).toEqual({ schemas: [ERROR], status: '401', detail: 'Missing or invalid bearer token' });
};

describe('SCIM tenant isolation', () => {
  it("refuses tenant A's token on tenant B's path with the same 401 as an invalid token", async () => {
    await a.c.get('/Users').expect(200); // now verified and cached for A
    const onB = scimClient(node.app, b.id, a.token);
    unauthorized(await onB.get('/Users'));
    unauthorized(await onB.get('/ServiceProviderConfig'));
    unauthorized(await onB.post('/Users', newUser('intruder@a.test')));
    unauthorized(await scimClient(node.app, b.id, `${b.token.slice(0, -4)}AAAA`).get('/Users'));
    unauthorized(await scimClient(node.app, b.id, 'gh_scim_nonsense').get('/Users'));
    unauthorized(await request(node.app).get(`/scim/v2/${b.id}/Users`));
    unauthorized(await scimClient(node.app, 'not-a-tenant', a.token).get('/Users'));
  });

  it("answers 404 for B's user and group ids through A's token, and changes nothing of B", async () => {
    const before = await bState();
    expect((await a.c.get(`/Users/${bUser}`)).status).toBe(404);
    expect((await a.c.put(`/Users/${bUser}`, newUser('secret@b.test', { displayName: 'x' }))).status).toBe(
      404,
    );
    expect(
      (await a.c.patch(`/Users/${bUser}`, patchOp({ op: 'replace', path: 'active', value: false }))).status,
    ).toBe(404);
    expect((await a.c.delete(`/Users/${bUser}`)).status).toBe(404);
    expect((await a.c.get(`/Groups/${bGroup}`)).status).toBe(404);
    expect((await a.c.patch(`/Groups/${bGroup}`, patchOp({ op: 'remove', path: 'members' }))).status).toBe(
      404,
    );
    expect((await a.c.put(`/Groups/${bGroup}`, { schemas: [GROUP_SCHEMA], displayName: 'x' })).status).toBe(
      404,
    );
    expect((await a.c.delete(`/Groups/${bGroup}`)).status).toBe(404);
    expect(await bState()).toEqual(before);
  });

  it("cannot make B's user a member of A's group, nor find B's users by filter", async () => {
    const group = await a.c.post('/Groups', { schemas: [GROUP_SCHEMA], displayName: 'A team' }).expect(201);
    const add = await a.c.patch(
      `/Groups/${group.body.id}`,
      patchOp({ op: 'add', path: 'members', value: [{ value: bUser }] }),
    );
    expect(add.status).toBe(400);
    const create = await a.c.post('/Groups', {
      schemas: [GROUP_SCHEMA],
      displayName: 'A2',
      members: [{ value: bUser }],
    });
    expect(create.status).toBe(400);
    for (const filter of [
      'userName eq "secret@b.test"',
      'externalId eq "b-ext"',
      `id eq "${bUser}"`,
      'displayName eq "B team"',
    ]) {
      const path = filter.startsWith('displayName') ? '/Groups' : '/Users';
      const res = await a.c.get(`${path}?filter=${encodeURIComponent(filter)}`).expect(200);
      expect({ filter, total: res.body.totalResults }).toEqual({ filter, total: 0 });
    }
  });

  it('names only the requesting tenant in every location, even under concurrent requests of two tenants', async () => {
    const results = await Promise.all(
      Array.from({ length: 30 }, (_, i) => (i % 2 === 0 ? a : b)).map(async (who, i) => {
        const res = await who.c.post('/Users', newUser(`loc${i}@x.test`)).expect(201);
        const list = await who.c.get('/ResourceTypes').expect(200);
        return {
          who: who.id,
          locations: [res.body.meta.location, res.headers.location, list.body.Resources[0].meta.location],
        };
      }),
    );
    for (const { who, locations } of results) {
      for (const location of locations) expect(location).toContain(`/scim/v2/${who}/`);
    }
  });

  it('refuses a revoked token and the token of a suspended tenant', async () => {
    const c = await tenant();
    await c.c.get('/Users').expect(200);
    const heard = nextNotification(node.notifications, CHANNELS.scimTokenRevoked, (id) => id === c.tokenId);
    await revokeToken(t.db, c.id, c.tokenId);
    await heard;
    unauthorized(await c.c.get('/Users'));

    const d = await tenant();
    await t.db.withPlatform((em) =>
      em.query(`UPDATE tenants SET status = 'suspended' WHERE id = $1`, [d.id]),
    );
    unauthorized(await d.c.get('/Users'));
  });

  it('never writes a token to the logs', async () => {
    expect(node.logs()).not.toContain(a.token);
    expect(node.logs()).not.toContain(b.token);
    expect(node.logs()).not.toMatch(/gh_scim_[0-9a-f]{32}_/);
  });
});
