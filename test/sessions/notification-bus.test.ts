import pg from 'pg';
import { CHANNELS, NotificationBus, notifyInTransaction } from '../../src/db/notification-bus.js';
import { parseSessionsRevoked } from '../../src/sessions/session-events.js';
import { revokeUserSessions } from '../../src/sessions/sessions.service.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { createTenant, createUser } from '../support/factories.js';
import { testEnv } from '../support/test-env.js';
import { signIn } from './support.js';

let t: TestDatabase;
const buses: NotificationBus[] = [];
beforeAll(async () => {
  t = await createTestDatabase();
});
afterEach(async () => {
  for (const b of buses.splice(0)) await b.close();
});
afterAll(() => t.close());

/** A node's bus, subscribed before it starts listening. */
async function bus(subscribe: (b: NotificationBus) => void): Promise<NotificationBus> {
  const b = new NotificationBus({ url: t.appUrl, reconnectDelayMs: 20 });
  buses.push(b);
  subscribe(b);
  await b.start();
  return b;
}

const until = async (predicate: () => boolean, what: string) => {
  const deadline = Date.now() + 5000;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
};

describe('notification bus', () => {
  it('tells every listening node at commit, and nothing when the transaction rolls back', async () => {
    const seenA: string[] = [];
    const seenB: string[] = [];
    await bus((a) => a.on(CHANNELS.logoutOutbox, (p) => seenA.push(p)));
    await bus((b) => b.on(CHANNELS.logoutOutbox, (p) => seenB.push(p)));

    await expect(
      t.db.withPlatform(async (em) => {
        await notifyInTransaction(em, CHANNELS.logoutOutbox, 'rolled-back');
        throw new Error('abort');
      }),
    ).rejects.toThrow('abort');
    await t.db.withPlatform((em) => notifyInTransaction(em, CHANNELS.logoutOutbox, 'committed'));
    await until(() => seenA.length > 0 && seenB.length > 0, 'both nodes');
    expect(seenA).toEqual(['committed']);
    expect(seenB).toEqual(['committed']);
  });

  it("announces a user's revoked sessions with their tenant", async () => {
    const events: ReturnType<typeof parseSessionsRevoked>[] = [];
    await bus((node) => node.on(CHANNELS.sessionsRevoked, (p) => events.push(parseSessionsRevoked(p))));
    const tenantId = await createTenant(t.db);
    const userId = await createUser(t.db, tenantId, 'bob@acme.test');
    const s1 = await signIn(t.db, tenantId, userId, null);
    const s2 = await signIn(t.db, tenantId, userId, null);

    await t.db.withTenant(tenantId, (em) => revokeUserSessions(em, userId, 'test'));
    await until(() => events.length > 0, 'the revocation event');
    expect(events).toEqual([
      {
        tenant_id: tenantId,
        user_id: userId,
        session_ids: expect.arrayContaining([s1, s2]),
        truncated: false,
      },
    ]);
  });

  it('reconnects after losing its connection, and says so to its subscribers', async () => {
    let reconnects = 0;
    const seen: string[] = [];
    const node = await bus((b) => {
      b.onReconnect(() => reconnects++);
      b.on(CHANNELS.scimTokenRevoked, (p) => seen.push(p));
    });
    expect(node.listening).toBe(true);

    const admin = new pg.Client({ connectionString: testEnv('adminUrl') });
    await admin.connect();
    try {
      await admin.query(
        `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
          WHERE datname = $1 AND application_name = 'gatehouse-listen'`,
        [t.name],
      );
    } finally {
      await admin.end();
    }
    await until(() => !node.listening, 'the bus to notice');
    await until(() => node.listening && reconnects === 1, 'the reconnection');

    await t.db.withPlatform((em) => notifyInTransaction(em, CHANNELS.scimTokenRevoked, 'after-reconnect'));
    await until(() => seen.length > 0, 'a notification after reconnecting');
    expect(seen).toEqual(['after-reconnect']);
  });
});
