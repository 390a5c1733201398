import request from 'supertest';
import { LIMITS } from '../../src/directory/limits.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { directoryDigest, inheritedEnumerableKeys, prototypeSnapshot } from './hardening-support.js';
import {
  createTenant,
  ENTERPRISE,
  ERROR,
  GROUP_SCHEMA,
  issueToken,
  newUser,
  patchOp,
  PATCH_OP,
  SCIM,
  scimClient,
  startNode,
  USER_SCHEMA,
  type ScimClient,
  type ScimNode,
} from './support.js';

/**
 * Issue 8, defect 2: one authenticated SCIM request naming `__proto__` (or
 * `constructor.prototype`) as an attribute made scimmy write onto
 * Object.prototype, and the node died after answering. Each vector below is
 * the real request; each must be a 400 with the RFC 7644 §3.12 body, leave
 * every built-in prototype and the tenant's rows as they were, and the node
 * must answer the next ordinary request.
 */

let t: TestDatabase;
let node: ScimNode;
let tenantId: string;
let token: string;
let c: ScimClient;
let userId: string;
let groupId: string;

beforeAll(async () => {
  t = await createTestDatabase();
  node = await startNode(t);
  tenantId = await createTenant(t);
  token = (await issueToken(t.db, tenantId)).token;
  c = scimClient(node.app, tenantId, token);
  userId = (await c.post('/Users', newUser('ada@acme.test')).expect(201)).body.id as string;
  groupId = (
    await c
      .post('/Groups', { schemas: [GROUP_SCHEMA], displayName: 'Engineering', members: [{ value: userId }] })
      .expect(201)
  ).body.id as string;
});
afterAll(async () => {
  await node.close();
  await t.close();
});

/** A request whose JSON body is sent byte for byte (an object literal `{ __proto__: … }` would set a prototype, not a key). */
const raw = (method: 'post' | 'put' | 'patch', path: string, json: string) => {
  const agent = request(node.app);
  return agent[method](`/scim/v2/${tenantId}${path}`)
    .set('Authorization', `Bearer ${token}`)
    .set('Accept', SCIM)
    .set('Content-Type', SCIM)
    .send(json);
};

const q = (path: string, params: Record<string, string>) => c.get(`${path}?${new URLSearchParams(params)}`);

type Vector = [string, () => request.Test, string];

const vectors: Vector[] = [
  ['filter __proto__.polluted', () => q('/Users', { filter: '__proto__.polluted eq "x"' }), 'invalidFilter'],
  [
    'filter constructor.prototype.polluted',
    () => q('/Users', { filter: 'constructor.prototype.polluted eq "x"' }),
    'invalidFilter',
  ],
  ['filter in upper case', () => q('/Users', { filter: '__PROTO__.polluted pr' }), 'invalidFilter'],
  [
    'filter Constructor (scimmy lower-cases the first letter)',
    () => q('/Groups', { filter: 'Constructor.Prototype.polluted pr' }),
    'invalidFilter',
  ],
  [
    'filter inside a value filter',
    () => q('/Users', { filter: 'emails[__proto__.polluted eq "y"]' }),
    'invalidFilter',
  ],
  [
    'filter inside a group',
    () => q('/Users', { filter: 'userName eq "a" or (__proto__.polluted eq "y")' }),
    'invalidFilter',
  ],
  [
    'filter with a URN-prefixed path',
    () => q('/Users', { filter: `${USER_SCHEMA}:__proto__.polluted eq "x"` }),
    'invalidFilter',
  ],
  [
    'filter hidden after a quote scimmy ends early',
    () => q('/Users', { filter: 'userName eq "a\\" or __proto__.polluted eq "y"' }),
    'invalidFilter',
  ],
  ['attributes=__proto__.polluted', () => q('/Users', { attributes: '__proto__.polluted' }), 'invalidPath'],
  [
    'attributes on one user',
    () => q(`/Users/${userId}`, { attributes: 'userName,__proto__.polluted' }),
    'invalidPath',
  ],
  [
    'excludedAttributes=constructor.prototype.polluted',
    () => q('/Users', { excludedAttributes: 'constructor.prototype.polluted' }),
    'invalidPath',
  ],
  ['sortBy=__proto__.polluted', () => q('/Groups', { sortBy: '__proto__.polluted' }), 'invalidPath'],
  [
    'PATCH path emails[__proto__.x eq "y"].value',
    () =>
      c.patch(
        `/Users/${userId}`,
        patchOp({ op: 'replace', path: 'emails[__proto__.x eq "y"].value', value: 'a@acme.test' }),
      ),
    'invalidPath',
  ],
  [
    'PATCH path __proto__.polluted',
    () => c.patch(`/Users/${userId}`, patchOp({ op: 'add', path: '__proto__.polluted', value: 'x' })),
    'invalidPath',
  ],
  [
    'PATCH path under the enterprise URN',
    () =>
      c.patch(`/Users/${userId}`, patchOp({ op: 'add', path: `${ENTERPRISE}:__proto__`, value: { a: 1 } })),
    'invalidPath',
  ],
  [
    'PATCH without a path, value key __proto__',
    () =>
      raw(
        'patch',
        `/Users/${userId}`,
        `{"schemas":["${PATCH_OP}"],"Operations":[{"op":"add","value":{"__proto__":{"polluted":"x"}}}]}`,
      ),
    'invalidPath',
  ],
  [
    'PATCH without a path, value key constructor.prototype.polluted',
    () =>
      c.patch(
        `/Users/${userId}`,
        patchOp({ op: 'replace', value: { 'constructor.prototype.polluted': 'x' } }),
      ),
    'invalidPath',
  ],
  [
    'PATCH a group member filter',
    () => c.patch(`/Groups/${groupId}`, patchOp({ op: 'remove', path: 'members[__proto__.x eq "y"]' })),
    'invalidPath',
  ],
  [
    'POST /Users/.search with a polluting filter',
    () => c.post('/Users/.search', { schemas: [SEARCH], filter: '__proto__.polluted eq "x"' }),
    'invalidFilter',
  ],
  [
    'POST /Groups/.search with polluting attributes',
    () => c.post('/Groups/.search', { schemas: [SEARCH], attributes: ['displayName', '__proto__.polluted'] }),
    'invalidPath',
  ],
  [
    'POST /.search with polluting excludedAttributes',
    () => c.post('/.search', { schemas: [SEARCH], excludedAttributes: ['constructor.prototype.polluted'] }),
    'invalidPath',
  ],
  [
    'POST /Users/.search with a polluting sortBy',
    () => c.post('/Users/.search', { schemas: [SEARCH], sortBy: '__proto__.polluted' }),
    'invalidPath',
  ],
  [
    'POST /Users with a body key __proto__',
    () =>
      raw(
        'post',
        '/Users',
        `{"schemas":["${USER_SCHEMA}"],"userName":"eve@acme.test","__proto__":{"polluted":"x"}}`,
      ),
    'invalidSyntax',
  ],
  [
    'PUT /Users with a nested key __proto__',
    () =>
      raw(
        'put',
        `/Users/${userId}`,
        `{"schemas":["${USER_SCHEMA}"],"userName":"ada@acme.test","name":{"__proto__":{"polluted":"x"}}}`,
      ),
    'invalidSyntax',
  ],
  [
    'POST /Groups with a key constructor',
    () =>
      raw(
        'post',
        '/Groups',
        `{"schemas":["${GROUP_SCHEMA}"],"displayName":"Eve","constructor":{"prototype":{"polluted":"x"}}}`,
      ),
    'invalidSyntax',
  ],
];

const SEARCH = 'urn:ietf:params:scim:api:messages:2.0:SearchRequest';

describe('a prototype key anywhere a SCIM client names an attribute', () => {
  test.each(vectors)('refuses %s with 400 and changes nothing', async (_name, make, scimType) => {
    const prototypes = prototypeSnapshot();
    const before = await directoryDigest(t, tenantId);

    const res = await make();

    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ schemas: [ERROR], status: '400', scimType });
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(inheritedEnumerableKeys()).toEqual([]);
    expect(prototypeSnapshot()).toEqual(prototypes);
    expect(await directoryDigest(t, tenantId)).toEqual(before);
    const next = await c.get('/Users').expect(200);
    expect(next.body.totalResults).toBe(before.users);
  });

  it('still serves values that merely contain those words', async () => {
    const prototypes = prototypeSnapshot();
    const created = await c.post('/Users', newUser('constructor@acme.test', { displayName: '__proto__' }));
    expect(created.status).toBe(201);
    const found = await q('/Users', { filter: 'userName eq "constructor@acme.test"' }).expect(200);
    expect(found.body.totalResults).toBe(1);
    const byName = await q('/Users', { filter: 'displayName eq "__proto__"' }).expect(200);
    expect(byName.body.Resources[0].id).toBe(created.body.id);
    expect(prototypeSnapshot()).toEqual(prototypes);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    await c.delete(`/Users/${created.body.id as string}`).expect(204);
  });
});

const long = (n: number) => 'a'.repeat(n);
/** n UTF-8 bytes in 4-byte characters: within the limit in UTF-16 code units, over it in bytes. */
const emoji = (bytes: number) => '😀'.repeat(Math.ceil(bytes / 4));

type LongCase = [string, () => request.Test];

const longCases: LongCase[] = [
  ['POST userName of 2,800 characters', () => c.post('/Users', newUser(long(2800)))],
  [
    'POST userName over the limit in UTF-8 bytes only',
    () => c.post('/Users', newUser(emoji(LIMITS.userName + 4))),
  ],
  ['POST displayName', () => c.post('/Users', newUser('l1@acme.test', { displayName: long(2800) }))],
  [
    'POST externalId',
    () => c.post('/Users', newUser('l2@acme.test', { externalId: long(LIMITS.externalId + 1) })),
  ],
  [
    'POST name.givenName',
    () => c.post('/Users', newUser('l3@acme.test', { name: { givenName: long(3000), familyName: 'F' } })),
  ],
  [
    'POST name.familyName',
    () => c.post('/Users', newUser('l4@acme.test', { name: { givenName: 'G', familyName: emoji(3000) } })),
  ],
  [
    'POST primary email',
    () =>
      c.post(
        '/Users',
        newUser('l5@acme.test', { emails: [{ value: `${long(250)}@a.test`, primary: true }] }),
      ),
  ],
  [
    'POST a secondary email',
    () =>
      c.post(
        '/Users',
        newUser('l6@acme.test', {
          emails: [
            { value: 'l6@acme.test', primary: true },
            { value: `${long(2800)}@a.test`, type: 'home' },
          ],
        }),
      ),
  ],
  ['POST title', () => c.post('/Users', newUser('l7@acme.test', { title: long(LIMITS.attributeText + 1) }))],
  [
    'POST 101 phone numbers',
    () =>
      c.post(
        '/Users',
        newUser('l8@acme.test', {
          phoneNumbers: Array.from({ length: LIMITS.multiValued + 1 }, (_, i) => ({ value: `+1555${i}` })),
        }),
      ),
  ],
  [
    'POST enterprise department',
    () =>
      c.post(
        '/Users',
        newUser('l9@acme.test', { [ENTERPRISE]: { department: long(LIMITS.attributeText + 1) } }),
      ),
  ],
  ['POST userName with NUL', () => c.post('/Users', newUser('nul\u0000@acme.test'))],
  [
    'POST displayName with a lone surrogate',
    () => c.post('/Users', newUser('ls@acme.test', { displayName: 'x\ud800y' })),
  ],
  ['PUT displayName', () => c.put(`/Users/${userId}`, newUser('ada@acme.test', { displayName: long(2800) }))],
  ['PUT userName', () => c.put(`/Users/${userId}`, newUser(long(2800)))],
  [
    'PATCH replace displayName',
    () => c.patch(`/Users/${userId}`, patchOp({ op: 'replace', path: 'displayName', value: long(2800) })),
  ],
  [
    'PATCH add an email',
    () =>
      c.patch(
        `/Users/${userId}`,
        patchOp({ op: 'add', path: 'emails', value: [{ value: `${long(2800)}@a.test`, type: 'home' }] }),
      ),
  ],
  [
    'PATCH without path, externalId',
    () => c.patch(`/Users/${userId}`, patchOp({ op: 'replace', value: { externalId: long(2800) } })),
  ],
  [
    'PATCH typed email (Entra)',
    () =>
      c.patch(
        `/Users/${userId}`,
        patchOp({ op: 'replace', path: 'emails[type eq "work"].value', value: `${long(2800)}@a.test` }),
      ),
  ],
  ['POST group displayName', () => c.post('/Groups', { schemas: [GROUP_SCHEMA], displayName: long(2800) })],
  [
    'POST group externalId',
    () =>
      c.post('/Groups', {
        schemas: [GROUP_SCHEMA],
        displayName: 'G1',
        externalId: emoji(LIMITS.externalId + 4),
      }),
  ],
  [
    'PUT group displayName',
    () => c.put(`/Groups/${groupId}`, { schemas: [GROUP_SCHEMA], displayName: long(2800) }),
  ],
  [
    'PATCH group displayName',
    () => c.patch(`/Groups/${groupId}`, patchOp({ op: 'replace', path: 'displayName', value: long(2800) })),
  ],
  [
    'PATCH group without path, displayName with NUL',
    () => c.patch(`/Groups/${groupId}`, patchOp({ op: 'replace', value: { displayName: 'G\u0000' } })),
  ],
];

describe('limits on every stored string', () => {
  test.each(longCases)('refuses %s with 400 invalidValue, writing nothing', async (_name, make) => {
    const before = await directoryDigest(t, tenantId);
    const res = await make();
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ schemas: [ERROR], status: '400', scimType: 'invalidValue' });
    expect(await directoryDigest(t, tenantId)).toEqual(before);
  });

  it('accepts values exactly at the limits and reads them back', async () => {
    const userName = `${'u'.repeat(LIMITS.userName - '@acme.test'.length)}@acme.test`;
    const email = `${'e'.repeat(LIMITS.email - '@acme.test'.length)}@acme.test`;
    const res = await c.post(
      '/Users',
      newUser(userName, {
        emails: [{ value: email, primary: true }],
        displayName: '😀'.repeat(LIMITS.displayName / 4),
        externalId: long(LIMITS.externalId),
      }),
    );
    expect(res.status).toBe(201);
    const read = await c.get(`/Users/${res.body.id as string}`).expect(200);
    expect(read.body).toMatchObject({
      userName,
      externalId: long(LIMITS.externalId),
      emails: [{ value: email }],
    });
    await c.delete(`/Users/${res.body.id as string}`).expect(204);
  });
});
