import { randomBytes } from 'node:crypto';
import { createDataSource } from '../../src/db/data-source.js';
import { Database } from '../../src/db/database.js';
import { ENTITIES } from '../../src/entities.js';
import { createUser } from '../../src/directory/users.service.js';
import { startWebhookDelivery, type WebhookDelivery } from '../../src/webhooks/webhook-delivery.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { createTenant } from '../support/factories.js';
import { outboxRows, registerWebhookApp, startWebhookReceiver, type WebhookReceiver } from './support.js';

/** The outbox's delivery guarantees: retries with backoff, giving up, surviving a restart. */
let t: TestDatabase;
const masterKey = randomBytes(32);
const workers: WebhookDelivery[] = [];
const receivers: WebhookReceiver[] = [];

beforeAll(async () => {
  t = await createTestDatabase();
});
afterEach(async () => {
  for (const w of workers.splice(0)) await w.stop();
  for (const r of receivers.splice(0)) await r.close();
  // Each test registers its own app; earlier apps stop receiving.
  await t.db.withPlatform((em) => em.query('UPDATE apps SET webhook_url = NULL'));
});
afterAll(() => t.close());

function worker(options: Partial<Parameters<typeof startWebhookDelivery>[0]> = {}): WebhookDelivery {
  const w = startWebhookDelivery({ db: t.db, masterKey, pollIntervalMs: 50, retryBaseMs: 20, ...options });
  workers.push(w);
  return w;
}

async function receiverApp(statuses: number[] = []) {
  const r = await startWebhookReceiver(statuses);
  receivers.push(r);
  const app = await registerWebhookApp(t.db, masterKey, r.url);
  r.secret = app.secret;
  return { receiver: r, appId: app.appId };
}

const userFields = (userName: string) => ({
  userName,
  email: userName,
  givenName: null,
  familyName: null,
  displayName: null,
  externalId: null,
  attributes: {},
});

async function provision(db: Database, tenantId: string, userName: string): Promise<string> {
  return (await db.withTenant(tenantId, (em) => createUser(em, tenantId, userFields(userName)))).id;
}

async function waitForStatus(tenantId: string, status: string) {
  const until = Date.now() + 5000;
  while (!(await outboxRows(t.db, tenantId)).every((r) => r.status === status)) {
    if (Date.now() > until) throw new Error(`outbox rows not ${status}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('webhook delivery', () => {
  it('retries after a 500 with backoff and delivers the same event, signed anew', async () => {
    const { receiver } = await receiverApp([500, 500]);
    const tenantId = await createTenant(t.db);
    const userId = await provision(t.db, tenantId, 'retry@acme.test');
    worker();
    await receiver.waitFor(1);
    await waitForStatus(tenantId, 'delivered');
    expect(receiver.attempts).toBe(3);
    expect(receiver.received[0]?.event).toMatchObject({ type: 'user.created', data: { id: userId } });
    expect(receiver.received[0]?.verified).toBe(true);
    expect(await outboxRows(t.db, tenantId)).toEqual([
      expect.objectContaining({ status: 'delivered', attempts: 3 }),
    ]);
  });

  it('gives an event up after the maximum attempts, keeping the last error', async () => {
    const { receiver } = await receiverApp([503, 503, 503]);
    const tenantId = await createTenant(t.db);
    await provision(t.db, tenantId, 'down@acme.test');
    worker({ maxAttempts: 2 });
    await waitForStatus(tenantId, 'failed');
    expect(receiver.attempts).toBe(2);
    const rows = await t.db.withTenant(tenantId, (em) =>
      em.query<{ last_error: string }[]>('SELECT last_error FROM webhook_outbox'),
    );
    expect(rows).toEqual([{ last_error: 'HTTP 503' }]);
  });

  it('delivers what was queued while no worker ran, once a new worker starts on the same database', async () => {
    const { receiver } = await receiverApp();
    const tenantId = await createTenant(t.db);
    const first = worker({ pollIntervalMs: 600_000 });
    await first.stop();
    const ids = [
      await provision(t.db, tenantId, 'p1@acme.test'),
      await provision(t.db, tenantId, 'p2@acme.test'),
    ];
    expect((await outboxRows(t.db, tenantId)).map((r) => r.status)).toEqual(['pending', 'pending']);
    expect(receiver.attempts).toBe(0);

    // The restarted node: its own pool, its startup sweep finds the pending rows.
    const restarted = await createTestPool(t);
    try {
      worker({ db: restarted.db, pollIntervalMs: 600_000 });
      await receiver.waitFor(2);
      expect(receiver.received.map((w) => w.event.data.id).sort()).toEqual([...ids].sort());
      await waitForStatus(tenantId, 'delivered');
    } finally {
      for (const w of workers.splice(0)) await w.stop();
      await restarted.close();
    }
  });

  it('gives up at once on events of an app deleted or without a webhook URL since', async () => {
    const { receiver, appId } = await receiverApp();
    const tenantId = await createTenant(t.db);
    await provision(t.db, tenantId, 'orphan@acme.test');
    await t.db.withPlatform((em) => em.query('UPDATE apps SET deleted_at = now() WHERE id = $1', [appId]));
    worker();
    await waitForStatus(tenantId, 'failed');
    expect(receiver.attempts).toBe(0);
  });

  it('queues one row per app with a webhook URL, and none when no app has one', async () => {
    const tenantId = await createTenant(t.db);
    await provision(t.db, tenantId, 'nobody-listens@acme.test');
    expect(await outboxRows(t.db, tenantId)).toEqual([]);
    const a = await receiverApp();
    const b = await receiverApp();
    await provision(t.db, tenantId, 'two-apps@acme.test');
    const rows = await outboxRows(t.db, tenantId);
    expect(rows.map((r) => r.app_id).sort()).toEqual([a.appId, b.appId].sort());
    worker();
    await a.receiver.waitFor(1);
    await b.receiver.waitFor(1);
    expect(a.receiver.received[0]?.eventId).toBe(b.receiver.received[0]?.eventId);
    expect(a.receiver.received[0]?.verified && b.receiver.received[0]?.verified).toBe(true);
    // Each app's secret is its own: b's signature does not verify with a's secret.
    expect(b.receiver.received[0]?.signature).not.toBe(a.receiver.received[0]?.signature);
  });
});

/** A second pool on the test database, as a restarted node has. */
async function createTestPool(td: TestDatabase) {
  const ds = createDataSource({ url: td.appUrl, entities: ENTITIES, poolSize: 2 });
  await ds.initialize();
  const db = new Database(ds);
  return { db, close: () => db.close() };
}
