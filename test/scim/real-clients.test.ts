import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import {
  createTenant,
  ENTERPRISE,
  ERROR,
  GROUP_SCHEMA,
  issueToken,
  newUser,
  patchOp,
  SCIM,
  scimClient,
  startNode,
  USER_SCHEMA,
  type ScimClient,
  type ScimNode,
} from './support.js';

/**
 * Issue 10, "fix what real clients trip on": ordered request sequences in the
 * shape Entra ID (aadOptscim062020), Okta's SCIM 2.0 spec test and
 * Microsoft's SCIM validator send, over real HTTP, each answer's status and
 * body checked. Covers `null` as unassigned (RFC 7643 §2.5) on POST, PUT and
 * PATCH; JSON under any JSON or no Content-Type, 415 otherwise; read-only
 * attributes ignored on POST/PUT (RFC 7644 §3.3); read-only discovery
 * endpoints (405, Allow: GET); `attributes=emails[type eq "work"]`.
 */

let t: TestDatabase;
let node: ScimNode;
let server: Server;
let base: string;
let tenantId: string;
let token: string;
let c: ScimClient;

beforeAll(async () => {
  t = await createTestDatabase();
  node = await startNode(t);
  tenantId = await createTenant(t);
  token = (await issueToken(t.db, tenantId)).token;
  c = scimClient(node.app, tenantId, token);
  server = node.app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/scim/v2/${tenantId}`;
});
afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
  await node.close();
  await t.close();
});

/** A request exactly as given: no header is added (fetch adds none for a byte body). */
async function raw(
  method: string,
  path: string,
  body: string | undefined,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: Headers; body: Record<string, unknown> }> {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { Authorization: `Bearer ${token}`, Accept: SCIM, ...headers },
    body: body === undefined ? undefined : new TextEncoder().encode(body),
  });
  const text = await res.text();
  return {
    status: res.status,
    headers: res.headers,
    body: text ? (JSON.parse(text) as Record<string, unknown>) : {},
  };
}

async function userCount(): Promise<number> {
  return (await c.get('/Users?count=0').expect(200)).body.totalResults as number;
}

const scimError = (status: number, scimType?: string) => ({
  schemas: [ERROR],
  status: String(status),
  ...(scimType ? { scimType } : {}),
  detail: expect.any(String),
});

describe('Entra ID (aadOptscim062020): null is unassigned', () => {
  let userId: string;
  let groupId: string;

  it('1. looks the user up by userName and finds nobody', async () => {
    const res = await c.get(`/Users?filter=${encodeURIComponent('userName eq "ada@entra.test"')}`);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ totalResults: 0, Resources: [] });
  });

  it('2. creates the user with null multi-valued, complex and extension attributes (201)', async () => {
    const res = await c.post('/Users', {
      schemas: [USER_SCHEMA, ENTERPRISE],
      externalId: 'ada-oid',
      userName: 'ada@entra.test',
      active: 'True',
      displayName: 'Ada',
      title: null,
      name: { givenName: 'Ada', familyName: 'Lovelace', formatted: null },
      emails: [{ primary: true, type: 'work', value: 'ada@entra.test', display: null }],
      phoneNumbers: null,
      addresses: null,
      roles: null,
      ims: null,
      photos: null,
      entitlements: null,
      x509Certificates: null,
      groups: null,
      [ENTERPRISE]: { employeeNumber: null, department: 'Analytics', manager: null },
    });
    expect(res.status).toBe(201);
    userId = res.body.id;
    expect(res.body).toMatchObject({
      userName: 'ada@entra.test',
      active: true,
      name: { givenName: 'Ada', familyName: 'Lovelace' },
      emails: [{ primary: true, type: 'work', value: 'ada@entra.test' }],
      [ENTERPRISE]: { department: 'Analytics' },
    });
    for (const absent of ['title', 'phoneNumbers', 'addresses', 'roles', 'ims', 'photos', 'entitlements'])
      expect(res.body).not.toHaveProperty(absent);
    expect(res.body[ENTERPRISE]).not.toHaveProperty('employeeNumber');
    expect(res.body.name).not.toHaveProperty('formatted');
  });

  it('3. PATCH Replace with a null value removes the attribute; Add of null changes nothing', async () => {
    await c.patch(`/Users/${userId}`, patchOp({ op: 'Add', path: 'title', value: 'Analyst' })).expect(200);
    const res = await c.patch(
      `/Users/${userId}`,
      patchOp(
        { op: 'Replace', path: 'title', value: null },
        { op: 'Add', path: 'phoneNumbers', value: null },
        { op: 'Replace', value: { displayName: 'Ada L.', nickName: null, 'name.givenName': null } },
        { op: 'Replace', path: `${ENTERPRISE}:department`, value: null },
      ),
    );
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ displayName: 'Ada L.', name: { familyName: 'Lovelace' } });
    expect(res.body).not.toHaveProperty('title');
    expect(res.body).not.toHaveProperty('phoneNumbers');
    expect(res.body.name).not.toHaveProperty('givenName');
    expect(res.body[ENTERPRISE] ?? {}).not.toHaveProperty('department');
    const read = await c.get(`/Users/${userId}`).expect(200);
    expect(read.body).not.toHaveProperty('title');
  });

  it('4. a PatchOp whose only operation adds null answers 200 and changes nothing', async () => {
    const before = (await c.get(`/Users/${userId}`).expect(200)).body;
    const res = await c.patch(`/Users/${userId}`, patchOp({ op: 'Add', path: 'nickName', value: null }));
    expect(res.status).toBe(200);
    expect(res.body.meta.version).toBe(before.meta.version);
  });

  it('5. PUT with null clears what it names', async () => {
    const res = await c.put(`/Users/${userId}`, {
      schemas: [USER_SCHEMA],
      userName: 'ada@entra.test',
      displayName: 'Ada',
      emails: null,
      name: null,
      phoneNumbers: [{ value: '+1 555 0100', type: 'work' }, null],
    });
    expect(res.status).toBe(200);
    expect(res.body).not.toHaveProperty('emails');
    expect(res.body).not.toHaveProperty('name');
    expect(res.body.phoneNumbers).toEqual([{ value: '+1 555 0100', type: 'work' }]);
  });

  it('6. creates a group with null members, adds the user, then Replace members null empties it', async () => {
    const created = await c.post('/Groups', {
      schemas: [GROUP_SCHEMA],
      displayName: 'Entra analysts',
      externalId: null,
      members: null,
    });
    expect(created.status).toBe(201);
    groupId = created.body.id;
    expect(created.body.members ?? []).toEqual([]);
    await c
      .patch(`/Groups/${groupId}`, patchOp({ op: 'Add', path: 'members', value: [{ value: userId }] }))
      .expect(204);
    expect((await c.get(`/Groups/${groupId}`).expect(200)).body.members).toHaveLength(1);
    await c.patch(`/Groups/${groupId}`, patchOp({ op: 'Replace', path: 'members', value: null })).expect(204);
    expect((await c.get(`/Groups/${groupId}`).expect(200)).body.members ?? []).toEqual([]);
  });

  it('7. PUT of a group with members null clears its members', async () => {
    await c
      .patch(`/Groups/${groupId}`, patchOp({ op: 'Add', path: 'members', value: [{ value: userId }] }))
      .expect(204);
    const res = await c.put(`/Groups/${groupId}`, {
      schemas: [GROUP_SCHEMA],
      displayName: 'Entra analysts',
      members: null,
    });
    expect(res.status).toBe(200);
    expect(res.body.members ?? []).toEqual([]);
  });
});

describe('content types', () => {
  const body = (userName: string) => JSON.stringify(newUser(userName));

  it.each([
    ['no Content-Type (Okta spec test: only Authorization and Accept)', undefined, 'okta-none@x.test'],
    ['application/scim+json', 'application/scim+json', 'scim@x.test'],
    ['application/scim+json; charset=utf-8', 'application/scim+json; charset=utf-8', 'scim-cs@x.test'],
    ['application/json', 'application/json', 'json@x.test'],
    ['application/json; charset=UTF-8', 'application/json; charset=UTF-8', 'json-cs@x.test'],
    ['text/json', 'text/json', 'text-json@x.test'],
  ])('parses a JSON body sent with %s (201)', async (_name, type, userName) => {
    const res = await raw('POST', '/Users', body(userName), type ? { 'Content-Type': type } : {});
    expect(res.status).toBe(201);
    expect(res.headers.get('content-type')).toMatch(/^application\/scim\+json/);
    expect(res.body).toMatchObject({ userName, schemas: [USER_SCHEMA] });
  });

  it.each([
    ['text/plain', 'text/plain'],
    ['a form', 'application/x-www-form-urlencoded'],
    ['XML', 'application/xml'],
  ])('answers 415 for a declared non-JSON type (%s), creating nothing', async (_name, type) => {
    const before = await userCount();
    const res = await raw('POST', '/Users', body(`refused-${type.length}@x.test`), { 'Content-Type': type });
    expect(res.status).toBe(415);
    expect(res.body).toEqual(scimError(415));
    expect(await userCount()).toBe(before);
  });

  it.each([
    ['application/scim+json', { 'Content-Type': SCIM }],
    ['no Content-Type', {}],
  ])('answers 400 invalidSyntax for invalid JSON with %s', async (_name, headers) => {
    const before = await userCount();
    const res = await raw('POST', '/Users', '{"schemas": [', headers);
    expect(res.status).toBe(400);
    expect(res.body).toEqual(scimError(400, 'invalidSyntax'));
    expect(await userCount()).toBe(before);
  });

  it('PATCH and PUT without a Content-Type work too', async () => {
    const { id } = (await raw('POST', '/Users', body('okta-patch@x.test'))).body as { id: string };
    const patched = await raw(
      'PATCH',
      `/Users/${id}`,
      JSON.stringify(patchOp({ op: 'replace', path: 'active', value: false })),
    );
    expect(patched.status).toBe(200);
    expect(patched.body.active).toBe(false);
    const put = await raw('PUT', `/Users/${id}`, body('okta-patch@x.test'));
    expect(put.status).toBe(200);
    expect(put.body.active).toBe(true);
  });
});

describe('read-only attributes (RFC 7644 §3.3)', () => {
  it('ignores a client id, meta and groups on POST and keeps the server values', async () => {
    const { id: groupId } = (
      await c.post('/Groups', { schemas: [GROUP_SCHEMA], displayName: 'RO' }).expect(201)
    ).body as { id: string };
    const res = await c.post(
      '/Users',
      newUser('ro@x.test', {
        id: 'client-chosen',
        meta: { created: '1999-01-01T00:00:00Z', resourceType: 'Group', version: 'W/"99"' },
        groups: [{ value: groupId }],
      }),
    );
    expect(res.status).toBe(201);
    expect(res.body.id).not.toBe('client-chosen');
    expect(res.body.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(res.body.meta.resourceType).toBe('User');
    expect(res.body.meta.created).not.toBe('1999-01-01T00:00:00Z');
    expect(res.body.meta.version).toBe('W/"1"');
    expect(res.body.groups ?? []).toEqual([]);
    expect((await c.get(`/Groups/${groupId}`).expect(200)).body.members ?? []).toEqual([]);
  });

  it('ignores another id and meta on PUT: the resource keeps its id', async () => {
    const { id } = (await c.post('/Users', newUser('ro-put@x.test')).expect(201)).body as { id: string };
    const res = await c.put(
      `/Users/${id}`,
      newUser('ro-put@x.test', {
        id: '00000000-0000-4000-8000-000000000000',
        meta: { version: 'x' },
        title: 'T',
      }),
    );
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ id, title: 'T', meta: { location: expect.stringContaining(id) } });
    await c.get('/Users/00000000-0000-4000-8000-000000000000').expect(404);
  });

  it('keeps 400 mutability for PATCH operations on read-only paths (RFC 7644 §3.5.2)', async () => {
    const { id } = (await c.post('/Users', newUser('ro-patch@x.test')).expect(201)).body as { id: string };
    for (const op of [
      { op: 'replace', path: 'meta.created', value: '2000-01-01T00:00:00Z' },
      { op: 'add', path: 'groups', value: [{ value: id }] },
    ]) {
      const res = await c.patch(`/Users/${id}`, patchOp(op));
      expect(res.status).toBe(400);
      expect(res.body).toEqual(scimError(400, 'mutability'));
    }
  });
});

describe('discovery endpoints are read-only', () => {
  const paths = [
    '/ServiceProviderConfig',
    '/Schemas',
    `/Schemas/${USER_SCHEMA}`,
    '/ResourceTypes',
    '/ResourceTypes/User',
  ];
  const cases = paths.flatMap((path) => ['POST', 'PUT', 'PATCH', 'DELETE'].map((method) => [method, path]));

  it.each(cases)(
    '%s %s → 405, Allow: GET, RFC 7644 body, even with an invalid JSON body',
    async (method, path) => {
      for (const body of ['{"schemas": [', '{}']) {
        const res = await raw(method, path, body, { 'Content-Type': SCIM });
        expect(res.status).toBe(405);
        expect(res.headers.get('allow')).toBe('GET');
        expect(res.headers.get('content-type')).toMatch(/^application\/scim\+json/);
        expect(res.body).toEqual(scimError(405));
      }
    },
  );

  it('GET still answers each of them', async () => {
    for (const path of paths) expect((await raw('GET', path, undefined)).status).toBe(200);
  });
});

describe("Microsoft's SCIM validator", () => {
  let userId: string;
  let otherId: string;
  let groupId: string;

  it('creates users (201) with the enterprise extension', async () => {
    const res = await c.post(
      '/Users',
      newUser('val-1@x.test', {
        externalId: 'val-1',
        emails: [
          { type: 'work', value: 'val-1@x.test', primary: true },
          { type: 'home', value: 'val-1@home.test' },
        ],
        [ENTERPRISE]: { employeeNumber: '11', department: 'QA' },
      }),
    );
    expect(res.status).toBe(201);
    userId = res.body.id;
    otherId = (await c.post('/Users', newUser('val-2@x.test')).expect(201)).body.id;
  });

  it('PATCH Replace with string booleans "False" and "True", in value objects and on paths', async () => {
    const off = await c.patch(
      `/Users/${userId}`,
      patchOp({ op: 'Replace', value: { active: 'False', displayName: 'Validator One' } }),
    );
    expect(off.status).toBe(200);
    expect(off.body).toMatchObject({ active: false, displayName: 'Validator One' });
    const on = await c.patch(`/Users/${userId}`, patchOp({ op: 'Replace', path: 'active', value: 'True' }));
    expect(on.status).toBe(200);
    expect(on.body.active).toBe(true);
    const primary = await c.patch(
      `/Users/${userId}`,
      patchOp({ op: 'Replace', path: 'emails[type eq "work"].primary', value: 'False' }),
    );
    expect(primary.status).toBe(200);
    expect(primary.body.emails.find((e: { type: string }) => e.type === 'work').primary).toBe(false);
  });

  it('projects attributes=emails[type eq "work"] as the whole emails attribute (200)', async () => {
    const one = await c.get(`/Users/${userId}?attributes=${encodeURIComponent('emails[type eq "work"]')}`);
    expect(one.status).toBe(200);
    expect(one.body).toEqual({
      schemas: expect.arrayContaining([USER_SCHEMA]),
      id: userId,
      emails: [
        { type: 'work', value: 'val-1@x.test', primary: false },
        { type: 'home', value: 'val-1@home.test' },
      ],
    });
    const list = await c.get(
      `/Users?filter=${encodeURIComponent('userName eq "val-1@x.test"')}&attributes=${encodeURIComponent(
        'userName,emails[type eq "work" and value co ","].value',
      )}`,
    );
    expect(list.status).toBe(200);
    expect(list.body.Resources).toEqual([
      {
        schemas: expect.arrayContaining([USER_SCHEMA]),
        id: userId,
        userName: 'val-1@x.test',
        emails: [{ value: 'val-1@x.test' }, { value: 'val-1@home.test' }],
      },
    ]);
    const excluded = await c.get(
      `/Users/${userId}?excludedAttributes=${encodeURIComponent('emails[type eq "home"]')}`,
    );
    expect(excluded.status).toBe(200);
    expect(excluded.body).not.toHaveProperty('emails');
    expect(excluded.body.userName).toBe('val-1@x.test');
  });

  it('creates a group, adds and removes members (204), and reads them back', async () => {
    const created = await c.post('/Groups', { schemas: [GROUP_SCHEMA], displayName: 'Validator group' });
    expect(created.status).toBe(201);
    groupId = created.body.id;
    const add = await c.patch(
      `/Groups/${groupId}`,
      patchOp({ op: 'Add', path: 'members', value: [{ value: userId }, { value: otherId }] }),
    );
    expect(add.status).toBe(204);
    const members = async () =>
      ((await c.get(`/Groups/${groupId}`).expect(200)).body.members as { value: string }[])
        .map((m) => m.value)
        .sort();
    expect(await members()).toEqual([userId, otherId].sort());
    const remove = await c.patch(
      `/Groups/${groupId}`,
      patchOp({ op: 'Remove', path: `members[value eq "${otherId}"]` }),
    );
    expect(remove.status).toBe(204);
    expect(await members()).toEqual([userId]);
    const byFilter = await c.get(
      `/Groups?filter=${encodeURIComponent(`members[value eq "${userId}"]`)}&excludedAttributes=members`,
    );
    expect(byFilter.status).toBe(200);
    expect(byFilter.body.Resources).toEqual([
      expect.objectContaining({ id: groupId, displayName: 'Validator group' }),
    ]);
  });
});

describe('another tenant', () => {
  it('never finds, patches or replaces this tenant’s users with the new input forms', async () => {
    const { id } = (await c.post('/Users', newUser('x"tenant@x.test')).expect(201)).body as { id: string };
    const elsewhere = await createTenant(t);
    const other = scimClient(node.app, elsewhere, (await issueToken(t.db, elsewhere)).token);
    const found = await other.get(`/Users?filter=${encodeURIComponent('userName eq "x\\"tenant@x.test"')}`);
    expect(found.status).toBe(200);
    expect(found.body.totalResults).toBe(0);
    const patched = await other.patch(`/Users/${id}`, patchOp({ op: 'replace', path: 'title', value: null }));
    expect(patched.status).toBe(404);
    const put = await other.put(`/Users/${id}`, newUser('x"tenant@x.test', { id, emails: null }));
    expect(put.status).toBe(404);
    const read = await c.get(`/Users/${id}`).expect(200);
    expect(read.body.emails).toEqual([{ value: 'x"tenant@x.test', type: 'work', primary: true }]);
  });
});
