import { randomBytes } from 'node:crypto';
import { createGroup, groupsOfUsers } from '../../src/directory/groups.service.js';
import { provisionFromLogin, type LoginProfile } from '../../src/directory/jit.service.js';
import type { WebhookEvent } from '../../src/webhooks/webhook-events.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { createTenantWithConnection } from '../support/oauth-fixtures.js';
import { registerWebhookApp } from './support.js';

/** Sign-ins land in the same directory functions as SCIM, so JIT changes queue the same events. */
let t: TestDatabase;
let tenantId: string;
let connectionId: string;

beforeAll(async () => {
  t = await createTestDatabase();
  await registerWebhookApp(t.db, randomBytes(32), 'https://app.example.com/webhooks');
  ({ tenantId, connectionId } = await createTenantWithConnection(t.db, 'jit-hooks'));
});
afterAll(() => t.close());

const profile = (over: Partial<LoginProfile> = {}): LoginProfile => ({
  connectionId,
  subject: 'idp-subject-1',
  email: 'jay@jit.test',
  emailAssertedByIdp: true,
  givenName: 'Jay',
  familyName: 'Doe',
  displayName: null,
  groups: ['Sales', 'Everyone'],
  ...over,
});

/** Events queued by one login, in the login's transaction. */
async function login(p: LoginProfile): Promise<WebhookEvent[]> {
  return t.db.withTenant(tenantId, async (em) => {
    const [{ n }] = await em.query<[{ n: string }]>('SELECT count(*) AS n FROM webhook_outbox');
    const outcome = await provisionFromLogin(
      em,
      tenantId,
      { jitEnabled: true, allowUnverifiedEmail: true },
      p,
      new Date(),
      {},
    );
    expect(outcome.ok).toBe(true);
    const rows = await em.query<{ payload: WebhookEvent }[]>(
      'SELECT payload FROM webhook_outbox ORDER BY created_at, id OFFSET $1',
      [Number(n)],
    );
    return rows.map((r) => r.payload);
  });
}

const summary = (events: WebhookEvent[]) =>
  events
    .map((e) => ({
      type: e.type,
      name: e.data.display_name ?? e.data.user_name,
      added: e.data.members_added,
      removed: e.data.members_removed,
    }))
    .sort((a, b) => `${a.type}${String(a.name)}`.localeCompare(`${b.type}${String(b.name)}`));

describe('webhook events from just-in-time provisioning', () => {
  it('queues user.created and group.created for the IdP groups of a first login', async () => {
    const events = await login(profile());
    const userId = events.find((e) => e.type === 'user.created')?.data.id;
    expect(userId).toEqual(expect.any(String));
    expect(summary(events)).toEqual([
      { type: 'group.created', name: 'Everyone', added: [userId], removed: [] },
      { type: 'group.created', name: 'Sales', added: [userId], removed: [] },
      { type: 'user.created', name: 'jay@jit.test', added: undefined, removed: undefined },
    ]);
    expect(events.every((e) => e.tenant_id === tenantId)).toBe(true);
  });

  it('queues user.updated and the group changes when a later login brings a new name and groups', async () => {
    const events = await login(profile({ givenName: 'Jayden', groups: ['Everyone', 'Support'] }));
    const user = events.find((e) => e.type === 'user.updated');
    expect(user?.data).toMatchObject({ given_name: 'Jayden', user_name: 'jay@jit.test' });
    expect(summary(events)).toEqual([
      { type: 'group.created', name: 'Support', added: [user?.data.id], removed: [] },
      { type: 'group.updated', name: 'Sales', added: [], removed: [user?.data.id] },
      { type: 'user.updated', name: 'jay@jit.test', added: undefined, removed: undefined },
    ]);
  });

  it('queues nothing for a login that changes nothing', async () => {
    expect(await login(profile({ givenName: 'Jayden', groups: ['Everyone', 'Support'] }))).toEqual([]);
  });

  it('keeps the person’s SCIM groups and drops IdP group names the directory cannot store', async () => {
    const kim = profile({ subject: 'idp-subject-kim', email: 'kim@jit.test', groups: ['Everyone'] });
    const userId = (await login(kim)).find((e) => e.type === 'user.created')?.data.id as string;
    await t.db.withTenant(tenantId, (em) =>
      createGroup(
        em,
        tenantId,
        { displayName: 'Scim-Team', externalId: null },
        { source: 'scim', members: [userId] },
      ),
    );
    // 600 bytes of UTF-8 (over the directory's displayName limit) and a NUL, which PostgreSQL refuses.
    const events = await login({ ...kim, groups: ['€'.repeat(200), 'nul\u0000name', 'Kept'] });
    expect(summary(events)).toEqual([
      { type: 'group.created', name: 'Kept', added: [userId], removed: [] },
      { type: 'group.updated', name: 'Everyone', added: [], removed: [userId] },
    ]);
    const groups = await t.db.withTenant(tenantId, (em) => groupsOfUsers(em, [userId]));
    expect(groups.get(userId)?.map((g) => g.displayName)).toEqual(['Kept', 'Scim-Team']);
  });
});
