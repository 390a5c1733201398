import pg from 'pg';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { testEnv } from '../support/test-env.js';
import {
  createTenant,
  issueToken,
  revokeToken,
  scimClient,
  startNode,
  waitUntil,
  type ScimNode,
} from '../scim/support.js';

/**
 * A node whose LISTEN connection drops misses the notifications sent while it
 * was away (issue 11, "Caches stay correct across a missed notification";
 * docs/operations.md): every cache fed by them is dropped at reconnect, so a
 * revocation made on another node during the gap is never honoured late.
 */
let t: TestDatabase;
let one: ScimNode;
let two: ScimNode;

beforeAll(async () => {
  t = await createTestDatabase();
  one = await startNode(t, { ownPool: true });
  two = await startNode(t, { ownPool: true });
});
afterAll(async () => {
  await one.close();
  await two.close();
  await t.close();
});

async function cutListenConnections(): Promise<void> {
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
}

it('a SCIM token revoked on node 1 while node 2 was not listening is refused by node 2 at its first request after reconnecting', async () => {
  const tenantId = await createTenant(t);
  const issued = await issueToken(t.db, tenantId);
  const onTwo = scimClient(two.app, tenantId, issued.token);
  // Node 2 verifies the token once and keeps the verdict (it trusts its cache while listening).
  await onTwo.get('/Users').expect(200);
  const bus = two.notifications;
  if (!bus) throw new Error('node 2 has no notification bus');

  await cutListenConnections();
  await waitUntil(() => !bus.listening, 'node 2 to notice the lost LISTEN connection');
  // The revocation as the admin API performs it, NOTIFY included — which node 2 cannot hear now.
  await revokeToken(one.db, tenantId, issued.id, true);
  expect(bus.listening).toBe(false);

  await waitUntil(() => bus.listening, 'node 2 to reconnect');
  // The notification was lost; the cache was dropped at reconnect, so the database decides.
  await onTwo.get('/Users').expect(401);
});
