import {
  addGroupMembers,
  createGroup,
  GroupNameTakenError,
  groupMembers,
  removeGroupMembers,
  replaceGroupMembers,
  UnknownMembersError,
} from '../../src/directory/groups.service.js';
import {
  createUser,
  findUser,
  findUserByUserName,
  setUserStatus,
  StaleVersionError,
  updateUser,
  UserNameTakenError,
  type UserFields,
} from '../../src/directory/users.service.js';
import { findActiveSession } from '../../src/sessions/sessions.service.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { createTenant } from '../support/factories.js';
import { signIn } from '../sessions/support.js';

let t: TestDatabase;
let tenantId: string;
beforeAll(async () => {
  t = await createTestDatabase();
  tenantId = await createTenant(t.db);
  await t.db.withTenant(tenantId, (em) =>
    em.query(
      `INSERT INTO domains (tenant_id, domain, verification_token, verified_at, verification_method)
       VALUES ($1, 'verified.test', 'x', now(), 'manual')`,
      [tenantId],
    ),
  );
});
afterAll(() => t.close());

const fields = (userName: string, extra: Partial<UserFields> = {}): UserFields => ({
  userName,
  email: userName,
  givenName: null,
  familyName: null,
  displayName: null,
  externalId: null,
  attributes: {},
  ...extra,
});
const inTenant = <T>(fn: Parameters<typeof t.db.withTenant<T>>[1]) => t.db.withTenant(tenantId, fn);

describe('directory users', () => {
  it('keeps userName unique per tenant case-insensitively, also between concurrent creators', async () => {
    await inTenant((em) => createUser(em, tenantId, fields('Dup@verified.test')));
    await expect(
      inTenant((em) => createUser(em, tenantId, fields('dup@VERIFIED.test'))),
    ).rejects.toBeInstanceOf(UserNameTakenError);
    const results = await Promise.allSettled(
      [1, 2, 3].map(() => inTenant((em) => createUser(em, tenantId, fields('race@verified.test')))),
    );
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    for (const r of results) if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(UserNameTakenError);
    // Another tenant may have the same name.
    const other = await createTenant(t.db);
    await t.db.withTenant(other, (em) => createUser(em, other, fields('dup@verified.test')));
  });

  it('marks an email verified only in a verified domain of the tenant, and rechecks it when it changes', async () => {
    const user = await inTenant((em) => createUser(em, tenantId, fields('v@verified.test')));
    expect(user.emailVerified).toBe(true);
    const moved = await inTenant((em) => updateUser(em, user, { email: 'v@elsewhere.test' }));
    expect(moved).toMatchObject({ emailVerified: false, version: 2 });
  });

  it('reads the email domain as domains are stored: IDNA and upper case match, URL look-alikes do not', async () => {
    await inTenant((em) =>
      em.query(
        `INSERT INTO domains (tenant_id, domain, verification_token, verified_at, verification_method)
         VALUES ($1, 'xn--bcher-kva.example', 'x', now(), 'manual')`,
        [tenantId],
      ),
    );
    const verified = async (email: string) =>
      (await inTenant((em) => createUser(em, tenantId, fields(email)))).emailVerified;
    expect(await verified('ana@BÜCHER.example')).toBe(true);
    expect(await verified('"ana@home"@Verified.TEST')).toBe(true);
    // domainToASCII reads these as verified.test: they are not addresses in it.
    expect(await verified('eve@verified.test/x')).toBe(false);
    expect(await verified('eve@verified.test?x')).toBe(false);
  });

  it('refuses an update based on an older version', async () => {
    const user = await inTenant((em) => createUser(em, tenantId, fields('stale@verified.test')));
    await inTenant((em) => updateUser(em, user, { displayName: 'first' }));
    await expect(inTenant((em) => updateUser(em, user, { displayName: 'second' }))).rejects.toBeInstanceOf(
      StaleVersionError,
    );
    const current = await inTenant((em) => findUser(em, user.id));
    await expect(
      inTenant((em) => updateUser(em, current!, { displayName: 'x' }, { expectedVersion: 1 })),
    ).rejects.toBeInstanceOf(StaleVersionError);
    expect((await inTenant((em) => findUser(em, user.id)))?.displayName).toBe('first');
  });

  it('suspending revokes sessions; deleting also ends memberships and frees the userName', async () => {
    const user = await inTenant((em) => createUser(em, tenantId, fields('gone@verified.test')));
    const session = await signIn(t.db, tenantId, user.id, null);
    const group = await inTenant((em) =>
      createGroup(em, tenantId, { displayName: 'G1', externalId: null }, { source: 'scim' }),
    );
    await inTenant((em) => addGroupMembers(em, tenantId, group.id, [user.id]));

    const suspended = await inTenant((em) => setUserStatus(em, user, 'suspended', 'test'));
    expect(suspended.revokedSessionIds).toEqual([session]);
    expect(await inTenant((em) => findActiveSession(em, session, new Date()))).toBeNull();
    expect(await inTenant((em) => groupMembers(em, group.id))).toHaveLength(1);

    const deleted = await inTenant((em) => setUserStatus(em, suspended.user, 'deleted', 'test'));
    expect(deleted.user.status).toBe('deleted');
    expect(await inTenant((em) => groupMembers(em, group.id))).toEqual([]);
    expect(await inTenant((em) => findUser(em, user.id))).toBeNull();
    expect(await inTenant((em) => findUserByUserName(em, 'gone@verified.test'))).toBeNull();
    await expect(inTenant((em) => setUserStatus(em, deleted.user, 'active', 'test'))).rejects.toThrow(
      'deleted',
    );
  });
});

describe('directory groups', () => {
  it('adds, removes and replaces members as sets, counting only real changes', async () => {
    const [a, b, c] = await Promise.all(
      ['ga', 'gb', 'gc'].map((n) => inTenant((em) => createUser(em, tenantId, fields(`${n}@verified.test`)))),
    );
    const group = await inTenant((em) =>
      createGroup(em, tenantId, { displayName: 'Set', externalId: 'x' }, { source: 'scim' }),
    );
    expect(await inTenant((em) => addGroupMembers(em, tenantId, group.id, [a!.id, b!.id, a!.id]))).toBe(2);
    expect(await inTenant((em) => addGroupMembers(em, tenantId, group.id, [a!.id]))).toBe(0);
    expect(await inTenant((em) => removeGroupMembers(em, group.id, [b!.id, c!.id, 'junk']))).toBe(1);
    expect(await inTenant((em) => replaceGroupMembers(em, tenantId, group.id, [c!.id]))).toBe(true);
    expect(await inTenant((em) => replaceGroupMembers(em, tenantId, group.id, [c!.id]))).toBe(false);
    expect((await inTenant((em) => groupMembers(em, group.id))).map((m) => m.userId)).toEqual([c!.id]);
  });

  it("refuses members that are deleted users or another tenant's users", async () => {
    const other = await createTenant(t.db);
    const stranger = await t.db.withTenant(other, (em) => createUser(em, other, fields('stranger@x.test')));
    const user = await inTenant((em) => createUser(em, tenantId, fields('dead@verified.test')));
    await inTenant((em) => setUserStatus(em, user, 'deleted', 'test'));
    const group = await inTenant((em) =>
      createGroup(em, tenantId, { displayName: 'Strict', externalId: null }, { source: 'scim' }),
    );
    for (const id of [stranger.id, user.id]) {
      await expect(inTenant((em) => addGroupMembers(em, tenantId, group.id, [id]))).rejects.toBeInstanceOf(
        UnknownMembersError,
      );
    }
  });

  it('keeps SCIM group names unique, leaving IdP-asserted groups out of it', async () => {
    await inTenant((em) =>
      createGroup(em, tenantId, { displayName: 'Admins', externalId: null }, { source: 'scim' }),
    );
    await expect(
      inTenant((em) =>
        createGroup(em, tenantId, { displayName: 'ADMINS', externalId: null }, { source: 'scim' }),
      ),
    ).rejects.toBeInstanceOf(GroupNameTakenError);
    await inTenant((em) =>
      createGroup(em, tenantId, { displayName: 'Admins', externalId: 'Admins' }, { source: 'idp' }),
    );
  });
});
