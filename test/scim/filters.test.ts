import { randomUUID } from 'node:crypto';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import {
  createTenant,
  ENTERPRISE,
  issueToken,
  newUser,
  scimClient,
  startNode,
  type ScimNode,
} from './support.js';

/**
 * RFC 7644 §3.4.2.2 filters, all translated to SQL: one table of filters and
 * the users each must find, run against the same directory.
 */
let t: TestDatabase;
let node: ScimNode;
let c: ReturnType<typeof scimClient>;
let aliceId: string;

beforeAll(async () => {
  t = await createTestDatabase();
  node = await startNode(t);
  const tenantId = await createTenant(t);
  c = scimClient(node.app, tenantId, (await issueToken(t.db, tenantId)).token);
  const alice = await c
    .post(
      '/Users',
      newUser('alice@acme.test', {
        externalId: 'ext-1',
        displayName: 'Alice Anders',
        name: { givenName: 'Alice', familyName: 'Anders' },
        title: 'Engineer',
        emails: [
          { value: 'alice@acme.test', type: 'work', primary: true },
          { value: 'alice@home.test', type: 'home' },
        ],
        phoneNumbers: [{ value: '+1 555 0100', type: 'mobile', primary: true }],
        [ENTERPRISE]: { employeeNumber: '100', department: 'R&D', manager: { value: 'm1' } },
      }),
    )
    .expect(201);
  aliceId = alice.body.id;
  await c
    .post(
      '/Users',
      newUser('bob@acme.test', {
        externalId: 'ext-2',
        displayName: 'Bob Brown',
        title: 'Manager',
        active: false,
        [ENTERPRISE]: { employeeNumber: '200', department: 'Sales' },
      }),
    )
    .expect(201);
  await c
    .post(
      '/Users',
      newUser('carol@other.test', {
        displayName: 'Carol',
        emails: [{ value: 'carol@home.test', type: 'home' }],
      }),
    )
    .expect(201);
  // A user created by a JIT login: columns only, no SCIM attributes.
  await t.db.withTenant(tenantId, (em) =>
    em.query(
      `INSERT INTO users (tenant_id, id, user_name, email) VALUES ($1, $2, 'dave@acme.test', 'dave@acme.test')`,
      [tenantId, randomUUID()],
    ),
  );
  // Same names in another tenant must never show up.
  const elsewhere = await createTenant(t);
  const other = scimClient(node.app, elsewhere, (await issueToken(t.db, elsewhere)).token);
  await other
    .post('/Users', newUser('alice@acme.test', { externalId: 'ext-1', title: 'Engineer' }))
    .expect(201);
});
afterAll(async () => {
  await node.close();
  await t.close();
});

const EXT = ENTERPRISE;
const cases: [string, string[]][] = [
  ['userName eq "ALICE@acme.test"', ['alice']],
  ['userName ne "alice@acme.test"', ['bob', 'carol', 'dave']],
  ['externalId eq "ext-2"', ['bob']],
  ['externalId eq "EXT-2"', []],
  ['externalId eq ext-1', ['alice']],
  ['displayName co "AN"', ['alice']],
  ['displayName sw "b"', ['bob']],
  ['userName ew "@acme.test"', ['alice', 'bob', 'dave']],
  ['userName gt "b"', ['bob', 'carol', 'dave']],
  ['emails.value eq "alice@home.test"', ['alice']],
  ['emails[type eq "work"].value eq "bob@acme.test"', ['bob']],
  ['emails[type eq "home" and value co "carol"]', ['carol']],
  ['emails eq "carol@home.test"', ['carol']],
  ['emails.value eq "DAVE@acme.test"', ['dave']],
  ['emails[type eq "work"].value eq "dave@acme.test"', ['dave']],
  ['active eq false', ['bob']],
  ['active eq "True"', ['alice', 'carol', 'dave']],
  ['title pr', ['alice', 'bob']],
  ['not (title pr)', ['carol', 'dave']],
  ['name.givenName eq "alice"', ['alice']],
  [`${EXT}:employeeNumber eq "200"`, ['bob']],
  [`${EXT}:department eq "r&d"`, ['alice']],
  [`${EXT}:manager.value eq "m1"`, ['alice']],
  ['userName sw "a" or userName sw "c"', ['alice', 'carol']],
  ['(userName sw "a" or userName sw "b") and active eq true', ['alice']],
  ['userName sw "a" and not (displayName eq "x")', ['alice']],
  ['phoneNumbers[type eq "mobile" and primary eq true]', ['alice']],
  ['meta.created gt "2000-01-01T00:00:00Z"', ['alice', 'bob', 'carol', 'dave']],
  ['meta.lastModified lt "2000-01-01T00:00:00Z"', []],
  ['id eq "not-a-uuid"', []],
];

describe('SCIM filters', () => {
  it.each(cases)('%s', async (filter, expected) => {
    const res = await c.get(`/Users?filter=${encodeURIComponent(filter)}&attributes=userName`).expect(200);
    const names = (res.body.Resources as { userName: string }[]).map((u) => u.userName.split('@')[0]).sort();
    expect({ filter, names, total: res.body.totalResults }).toEqual({
      filter,
      names: expected,
      total: expected.length,
    });
  });

  it('finds a user by id', async () => {
    const res = await c.get(`/Users?filter=${encodeURIComponent(`id eq "${aliceId}"`)}`).expect(200);
    expect(res.body.Resources.map((u: { id: string }) => u.id)).toEqual([aliceId]);
  });

  it.each([
    ['userName eq', 'a comparison without a value'],
    ['userName', 'an attribute alone'],
    ['foo eq "x"', 'an attribute the schema does not have'],
    ['name eq "x"', 'a complex attribute compared as a whole'],
    ['(userName eq "a"', 'an unclosed group'],
    ['userName xx "a"', 'an unknown operator'],
    ['active gt true', 'an ordering of booleans'],
    ['meta.created gt "yesterday"', 'a date that is not one'],
    ['userName eq "a" and', 'a dangling operator'],
  ])('refuses %s (%s) with 400 invalidFilter', async (filter) => {
    const res = await c.get(`/Users?filter=${encodeURIComponent(filter)}`);
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ status: '400', scimType: 'invalidFilter' });
  });
});
