import { CHANNELS } from '../../src/db/notification-bus.js';
import { startLogoutDelivery, type LogoutDelivery } from '../../src/sessions/backchannel-logout.js';
import { parseSessionsRevoked } from '../../src/sessions/session-events.js';
import { findActiveSession } from '../../src/sessions/sessions.service.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import {
  createApp,
  ISSUER,
  joseSigner,
  outboxRows,
  signIn,
  startLogoutReceiver,
  type LogoutReceiver,
} from '../sessions/support.js';
import {
  createTenant,
  issueToken,
  newUser,
  nextNotification,
  patchOp,
  revokeToken,
  scimClient,
  startNode,
  waitUntil,
  type ScimNode,
} from './support.js';

/**
 * Two service nodes (two pools, two LISTEN connections, two express apps) on
 * one database: what happens through node 1 reaches node 2 through Postgres
 * LISTEN/NOTIFY, not by polling.
 */
let t: TestDatabase;
let one: ScimNode;
let two: ScimNode;
let receiver: LogoutReceiver;
const workers: LogoutDelivery[] = [];

beforeAll(async () => {
  t = await createTestDatabase();
  one = await startNode(t, { ownPool: true });
  two = await startNode(t, { ownPool: true });
  receiver = await startLogoutReceiver();
  const { signer } = await joseSigner();
  // Each node runs its own delivery worker, woken only by notifications.
  for (const node of [one, two]) {
    workers.push(
      startLogoutDelivery({
        db: node.db,
        signer,
        issuer: ISSUER,
        notifications: node.notifications,
        pollIntervalMs: 600_000,
      }),
    );
  }
});
afterAll(async () => {
  for (const w of workers) await w.stop();
  await receiver.close();
  await one.close();
  await two.close();
  await t.close();
});

describe('two nodes', () => {
  it('a deprovisioning through node 1 is announced to node 2, which sees the sessions ended, and the app gets one logout each', async () => {
    const tenantId = await createTenant(t);
    const token = (await issueToken(t.db, tenantId)).token;
    const appId = await createApp(t.db, receiver.url);
    const userId = (
      await scimClient(one.app, tenantId, token).post('/Users', newUser('moving@acme.test')).expect(201)
    ).body.id;
    const sessions = [
      await signIn(one.db, tenantId, userId, appId),
      await signIn(one.db, tenantId, userId, appId),
    ];

    const heard = nextNotification(
      two.notifications,
      CHANNELS.sessionsRevoked,
      (p) => parseSessionsRevoked(p)?.user_id === userId,
    );
    await scimClient(one.app, tenantId, token)
      .patch(`/Users/${userId}`, patchOp({ op: 'replace', path: 'active', value: false }))
      .expect(200);
    const event = parseSessionsRevoked(await heard);
    expect(event).toEqual({
      tenant_id: tenantId,
      user_id: userId,
      session_ids: expect.arrayContaining(sessions),
      truncated: false,
    });
    for (const s of sessions) {
      expect(await two.db.withTenant(tenantId, (em) => findActiveSession(em, s, new Date()))).toBeNull();
    }
    await receiver.waitFor(2);
    // Once every row is recorded delivered no worker will send again: two logouts, not four.
    await waitUntil(
      async () => (await outboxRows(t.db, tenantId)).every((r) => r.status === 'delivered'),
      'deliveries',
    );
    expect(receiver.tokens).toHaveLength(2);
    expect((await outboxRows(t.db, tenantId)).map((r) => r.attempts)).toEqual([1, 1]);
  });

  it("node 2 keeps a verified SCIM token cached, and drops it the moment node 1's revocation is notified", async () => {
    const tenantId = await createTenant(t);
    const issued = await issueToken(t.db, tenantId);
    const onTwo = scimClient(two.app, tenantId, issued.token);
    await onTwo.get('/Users').expect(200);

    // Revoked in the database without telling anyone: node 2 still trusts its cache,
    // so it cannot be polling the database for revocations.
    await revokeToken(one.db, tenantId, issued.id, false);
    await onTwo.get('/Users').expect(200);

    // The revocation as the admin API performs it: the NOTIFY commits with it.
    const heard = nextNotification(two.notifications, CHANNELS.scimTokenRevoked, (id) => id === issued.id);
    await revokeToken(one.db, tenantId, issued.id, true);
    await heard;
    const res = await onTwo.get('/Users');
    expect(res.status).toBe(401);
    await scimClient(one.app, tenantId, issued.token).get('/Users').expect(401);
  });
});
