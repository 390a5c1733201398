import { randomBytes, randomUUID } from 'node:crypto';
import type { Database } from '../../src/db/database.js';
import { CHANNELS } from '../../src/db/notification-bus.js';
import {
  startOutboxWorker,
  type OutboxOutcome,
  type OutboxRow,
  type OutboxWorker,
} from '../../src/db/outbox-worker.js';
import { tenantsWithDueWebhooks } from '../../src/db/resolvers.js';
import { startWebhookDelivery } from '../../src/webhooks/webhook-delivery.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { createTenant } from '../support/factories.js';
import { registerWebhookApp, startWebhookReceiver, type WebhookReceiver } from '../webhooks/support.js';

/**
 * The generic outbox worker (src/db/outbox-worker.ts) on a real database, with
 * the webhook outbox as its table: leases, several workers sharing one
 * database, giving up, and the backoff it stores.
 */
let t: TestDatabase;
let appId: string;
const masterKey = randomBytes(32);
const workers: OutboxWorker[] = [];
const receivers: WebhookReceiver[] = [];

beforeAll(async () => {
  t = await createTestDatabase();
  appId = (await registerWebhookApp(t.db, masterKey, 'https://app.test/webhooks')).appId;
});
afterEach(async () => {
  for (const w of workers.splice(0)) await w.stop();
  for (const r of receivers.splice(0)) await r.close();
});
afterAll(() => t.close());

type Send = (row: OutboxRow) => Promise<OutboxOutcome>;

/** A worker over webhook_outbox whose attempts are `send` (small lease and poll, no NOTIFY). */
function worker(send: Send, options: { leaseMs?: number; retryBaseMs?: number; retryMaxMs?: number } = {}) {
  const w = startOutboxWorker<OutboxRow, null>({
    db: t.db,
    pollIntervalMs: 50,
    leaseMs: 300,
    maxAttempts: 10,
    ...options,
    table: 'webhook_outbox',
    columns: [],
    claimOrder: 'next_attempt_at, created_at',
    channel: CHANNELS.webhookOutbox,
    dueTenants: tenantsWithDueWebhooks,
    loadTargets: () => Promise.resolve(new Map()),
    send: (row) => send(row),
    messages: { delivered: 'delivered', givenUp: 'given up', retrying: 'retrying', crashed: 'crashed' },
  });
  workers.push(w);
  return w;
}

async function queue(db: Database, tenantId: string, forApp = appId, attempts = 0): Promise<string> {
  const [row] = await db.withTenant(tenantId, (em) =>
    em.query<{ id: string }[]>(
      `INSERT INTO webhook_outbox (tenant_id, event_id, event_type, app_id, payload, attempts)
       VALUES ($1, $2, 'user.updated', $3, $4, $5) RETURNING id`,
      [tenantId, randomUUID(), forApp, { type: 'user.updated' }, attempts],
    ),
  );
  if (!row) throw new Error('no outbox row');
  return row.id;
}

interface StoredRow {
  id: string;
  status: string;
  attempts: number;
  last_error: string | null;
  /** next_attempt_at - now(), seconds. */
  due_in: number;
}

async function stored(tenantId: string, id: string): Promise<StoredRow> {
  const [row] = await t.db.withTenant(tenantId, (em) =>
    em.query<StoredRow[]>(
      `SELECT id, status, attempts, last_error,
              EXTRACT(EPOCH FROM next_attempt_at - now())::float8 AS due_in
         FROM webhook_outbox WHERE id = $1`,
      [id],
    ),
  );
  if (!row) throw new Error(`no outbox row ${id}`);
  return row;
}

/** Polls (bounded) until `check` holds. */
async function until(what: string, check: () => Promise<boolean> | boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('the outbox worker', () => {
  it('lets another worker deliver a row whose claim outlived its lease, and ignores the late outcome', async () => {
    const tenantId = await createTenant(t.db);
    const id = await queue(t.db, tenantId);
    // Worker A claims the row and never finishes (as if its node died mid-delivery)…
    let release: (outcome: OutboxOutcome) => void = () => undefined;
    const stuck = new Promise<OutboxOutcome>((resolve) => (release = resolve));
    const claimedByA: string[] = [];
    worker((row) => {
      claimedByA.push(row.id);
      return stuck;
    });
    await until('worker A claims the row', () => claimedByA.length === 1);

    // …so worker B gets it once the lease has run out.
    const deliveredByB: OutboxRow[] = [];
    worker((row) => {
      deliveredByB.push(row);
      return Promise.resolve({ ok: true });
    });
    await until('worker B delivers it', async () => (await stored(tenantId, id)).status === 'delivered');
    expect(deliveredByB).toEqual([expect.objectContaining({ id, attempts: 2 })]);

    // Worker A comes back with a failure: B's delivery stands.
    release({ ok: false, error: 'late failure', permanent: true });
    await workers.splice(0, 1)[0]?.stop();
    expect(await stored(tenantId, id)).toMatchObject({ status: 'delivered', attempts: 2, last_error: null });
    expect(claimedByA).toEqual([id]);
  });

  it('delivers every webhook exactly once with two workers on one database', async () => {
    const receiver = await startWebhookReceiver();
    receivers.push(receiver);
    const app = await registerWebhookApp(t.db, masterKey, receiver.url);
    receiver.secret = app.secret;
    const tenants = [await createTenant(t.db), await createTenant(t.db)];
    const queued: string[] = [];
    for (let i = 0; i < 20; i++) queued.push(await queue(t.db, tenants[i % 2] ?? '', app.appId));

    for (let n = 0; n < 2; n++) {
      workers.push(startWebhookDelivery({ db: t.db, masterKey, pollIntervalMs: 50, batchSize: 3 }));
    }
    await receiver.waitFor(queued.length);
    for (const tenantId of tenants) {
      await until('every row is delivered', async () =>
        (
          await t.db.withTenant(tenantId, (em) =>
            em.query<{ status: string }[]>('SELECT status FROM webhook_outbox WHERE app_id = $1', [
              app.appId,
            ]),
          )
        ).every((r) => r.status === 'delivered'),
      );
    }
    await Promise.all(workers.splice(0).map((w) => w.stop()));

    const eventIds = receiver.received.map((w) => w.eventId);
    expect(eventIds).toHaveLength(queued.length);
    expect(new Set(eventIds).size).toBe(queued.length);
    expect(receiver.received.every((w) => w.verified)).toBe(true);
    for (const id of queued) {
      const tenantId = tenants[queued.indexOf(id) % 2] ?? '';
      expect(await stored(tenantId, id)).toMatchObject({ status: 'delivered', attempts: 1 });
    }
  });

  it('gives a row up at the first permanent error, whatever attempts are left', async () => {
    const tenantId = await createTenant(t.db);
    const id = await queue(t.db, tenantId);
    let calls = 0;
    worker(() => {
      calls++;
      return Promise.resolve({ ok: false, error: 'app deleted', permanent: true });
    });
    await until('the row is given up', async () => (await stored(tenantId, id)).status === 'failed');
    expect(await stored(tenantId, id)).toMatchObject({
      status: 'failed',
      attempts: 1,
      last_error: 'app deleted',
    });
    expect(calls).toBe(1);
  });

  it('stores the next attempt after the backoff: doubling per attempt from the base, capped at the maximum', async () => {
    const tenantId = await createTenant(t.db);
    // Attempts already made before this one: the delay is base * 2^(attempt - 1), at most the cap.
    const first = await queue(t.db, tenantId, appId, 0);
    const fourth = await queue(t.db, tenantId, appId, 3);
    const late = await queue(t.db, tenantId, appId, 8);
    const tried = new Set<string>();
    worker(
      (row) => {
        tried.add(row.id);
        return Promise.resolve({ ok: false, error: 'HTTP 503', permanent: false });
      },
      { retryBaseMs: 60_000, retryMaxMs: 3600_000 },
    );
    const retried = (id: string) => async () => {
      const row = await stored(tenantId, id);
      return row.last_error === 'HTTP 503';
    };
    for (const id of [first, fourth, late]) await until('the attempt is recorded', retried(id));

    // next_attempt_at = the recording transaction's now() + delay; read a moment later, so at most delay.
    const expectDueIn = async (id: string, attempts: number, delaySeconds: number) => {
      const row = await stored(tenantId, id);
      expect(row).toMatchObject({ status: 'pending', attempts });
      expect(row.due_in).toBeLessThanOrEqual(delaySeconds);
      expect(row.due_in).toBeGreaterThan(delaySeconds - 30);
    };
    await expectDueIn(first, 1, 60);
    await expectDueIn(fourth, 4, 8 * 60);
    await expectDueIn(late, 9, 3600);
    expect([...tried].sort()).toEqual([first, fourth, late].sort());
  });
});
