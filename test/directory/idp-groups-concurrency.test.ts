import { randomBytes, randomUUID } from 'node:crypto';
import { provisionFromLogin, type LoginProfile } from '../../src/directory/jit.service.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { createUser } from '../support/factories.js';
import { createOidcConnection, createTenantWithDomains } from '../support/sso-factories.js';

/**
 * Sign-ins of one tenant do not queue behind each other for IdP groups (issue
 * 13): the per-tenant `idp-groups:` advisory lock is gone, a new group is
 * inserted if absent on its primary key. Real concurrency: two transactions on
 * two pool connections, the first held open before its COMMIT while the second
 * runs; `lock_timeout` turns a wait that should not happen into an error
 * rather than a hang. No timing is asserted. The people exist already (as
 * SCIM provisions them), so the sign-ins link them: a JIT-created person is
 * audited, and the audit chain's own per-tenant lock (audit:<tenant>, the
 * issue's separate audit-chain item) would serialise those sign-ins still.
 */

let t: TestDatabase;
let tenantId: string;
let connectionId: string;

beforeAll(async () => {
  t = await createTestDatabase();
  tenantId = await createTenantWithDomains(t.db, `g-${randomUUID().slice(0, 8)}`, ['acme.test']);
  const connection = await createOidcConnection(t.db, randomBytes(32), tenantId, {
    issuer: 'https://idp.acme.test',
    clientId: 'gatehouse',
    clientSecret: 'not-used',
  });
  connectionId = connection.id;
  for (const who of ['ann', 'bob', 'carol', 'dave', 'erin'])
    await createUser(t.db, tenantId, `${who}@acme.test`);
});
afterAll(() => t.close());

const profile = (who: string, groups: string[]): LoginProfile => ({
  connectionId,
  subject: `sub-${who}`,
  email: `${who}@acme.test`,
  emailAssertedByIdp: true,
  givenName: who,
  familyName: null,
  displayName: null,
  groups,
});

/** A sign-in's directory work in its own transaction, paused before COMMIT until `release` resolves. */
function signIn(who: string, groups: string[], release?: Promise<void>) {
  let reached!: () => void;
  const beforeCommit = new Promise<void>((resolve) => (reached = resolve));
  const done = t.db.withTenant(tenantId, async (em) => {
    // A wait on a lock another sign-in holds fails this one instead of hanging the test.
    await em.query(`SET LOCAL lock_timeout = '10s'`);
    const outcome = await provisionFromLogin(
      em,
      tenantId,
      { jitEnabled: true, allowUnverifiedEmail: false },
      profile(who, groups),
      new Date(),
      {},
    );
    reached();
    if (release) await release;
    return outcome;
  });
  return { beforeCommit, done };
}

async function groupsByName(): Promise<Map<string, number>> {
  const rows = await t.db.withTenant(tenantId, (em) =>
    em.query<{ external_id: string; n: string }[]>(
      `SELECT external_id, count(*) AS n FROM groups WHERE source = 'idp' GROUP BY external_id`,
    ),
  );
  return new Map(rows.map((r) => [r.external_id, Number(r.n)]));
}

async function membershipsOf(email: string): Promise<string[]> {
  const rows = await t.db.withTenant(tenantId, (em) =>
    em.query<{ external_id: string }[]>(
      `SELECT g.external_id FROM group_members gm JOIN groups g ON g.tenant_id = gm.tenant_id AND g.id = gm.group_id
        JOIN users u ON u.tenant_id = gm.tenant_id AND u.id = gm.user_id
       WHERE u.email = $1 ORDER BY g.external_id`,
      [email],
    ),
  );
  return rows.map((r) => r.external_id);
}

it('a sign-in with new groups completes while another sign-in of the tenant with other new groups is still open', async () => {
  let release!: () => void;
  const held = new Promise<void>((resolve) => (release = resolve));
  const first = signIn('ann', ['design', 'research'], held);
  await first.beforeCommit;
  // Before issue 13 this waited on the first sign-in's idp-groups:<tenant> lock until its COMMIT.
  const second = signIn('bob', ['support', 'sales']);
  await expect(second.done).resolves.toMatchObject({ ok: true, linked: true });
  release();
  await expect(first.done).resolves.toMatchObject({ ok: true, linked: true });
  expect(await membershipsOf('ann@acme.test')).toEqual(['design', 'research']);
  expect(await membershipsOf('bob@acme.test')).toEqual(['sales', 'support']);
});

it('two sign-ins naming the same new groups, in any order, both succeed and each group exists once', async () => {
  let release!: () => void;
  const held = new Promise<void>((resolve) => (release = resolve));
  const first = signIn('carol', ['eng', 'ops', 'platform'], held);
  await first.beforeCommit;
  // The second meets the first's uncommitted 'ops' and 'platform' rows: it waits on those rows only.
  const second = signIn('dave', ['platform', 'ops', 'qa']);
  // It is blocked (on the first's rows), not finished: observed in pg_locks, not by a clock.
  await waitForLockWait();
  release();
  await expect(first.done).resolves.toMatchObject({ ok: true });
  await expect(second.done).resolves.toMatchObject({ ok: true });
  const groups = await groupsByName();
  for (const name of ['eng', 'ops', 'platform', 'qa']) expect(groups.get(name)).toBe(1);
  expect(await membershipsOf('carol@acme.test')).toEqual(['eng', 'ops', 'platform']);
  expect(await membershipsOf('dave@acme.test')).toEqual(['ops', 'platform', 'qa']);
});

it('a later sign-in with only known groups takes no lock and joins the existing rows', async () => {
  const outcome = await signIn('erin', ['eng', 'qa']).done;
  expect(outcome).toMatchObject({ ok: true });
  const groups = await groupsByName();
  expect(groups.get('eng')).toBe(1);
  expect(groups.get('qa')).toBe(1);
  expect(await membershipsOf('erin@acme.test')).toEqual(['eng', 'qa']);
});

/** Until some backend of this database waits on a lock (the second sign-in behind the first's rows). */
async function waitForLockWait(): Promise<void> {
  for (;;) {
    const rows = await t.asOwner<{ n: string }>(
      // pg_locks, not pg_stat_activity's wait_event: the latter is hidden from roles without pg_read_all_stats.
      `SELECT count(*) AS n FROM pg_locks WHERE NOT granted
          AND pid IN (SELECT pid FROM pg_stat_activity WHERE datname = current_database())`,
    );
    if (Number(rows[0]?.n) > 0) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
