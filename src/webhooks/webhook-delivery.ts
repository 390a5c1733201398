import type { EntityManager } from 'typeorm';
import type { Database } from '../db/database.js';
import { CHANNELS, type NotificationBus } from '../db/notification-bus.js';
import { openWebhookSecrets, signatureHeader } from './webhook-secrets.js';
import { tenantsWithDueWebhooks } from '../db/resolvers.js';

export interface WebhookLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface WebhookDeliveryOptions {
  db: Database;
  /** Opens the apps' sealed webhook secrets. */
  masterKey: Buffer;
  /** Wakes the worker when any node queues an event; without it the worker only polls. */
  notifications?: NotificationBus;
  logger?: WebhookLogger;
  /** Sweep for due rows (retries, missed notifications). */
  pollIntervalMs?: number;
  /** Attempts before a row is given up (status failed). */
  maxAttempts?: number;
  /** Delay after the first failure; doubles per attempt up to retryMaxMs. */
  retryBaseMs?: number;
  retryMaxMs?: number;
  /** A claimed row becomes due again after this, should its node die mid-delivery. */
  leaseMs?: number;
  timeoutMs?: number;
  batchSize?: number;
  /** Delivered rows are deleted after this many days. */
  retentionDays?: number;
  fetch?: typeof fetch;
  /** The clock for the signature's `t` (tests). */
  now?: () => Date;
}

export interface WebhookDelivery {
  /** Look for due rows now: of one tenant, or of all tenants. */
  wake(tenantId?: string): void;
  /** Stops timers and waits for the delivery in flight. */
  stop(): Promise<void>;
}

interface Claimed {
  id: string;
  event_id: string;
  app_id: string;
  payload: Record<string, unknown>;
  attempts: number;
}

interface AppTarget {
  id: string;
  webhook_url: string | null;
  deleted_at: Date | null;
  secrets: string[];
  /** Set when the sealed secrets would not open (another master key): retried, not given up. */
  secretsError?: string;
}

type Outcome = { ok: true } | { ok: false; error: string; permanent: boolean };

const RETENTION_SWEEP_MS = 3600_000;

/**
 * The delivery side of the webhook outbox, built like back-channel logout
 * (src/sessions/backchannel-logout.ts): claims due rows per tenant (FOR UPDATE
 * SKIP LOCKED, so several nodes share the work and each row goes to one),
 * POSTs each event signed with the app's live secrets, then records delivered /
 * retry with exponential backoff / given up. Rows of a batch go out in
 * parallel and retries overtake nothing in order: per-app ordering is NOT
 * guaranteed (apps order by `data.version` / `created_at`, dedupe by event id).
 */
export function startWebhookDelivery(options: WebhookDeliveryOptions): WebhookDelivery {
  const o = {
    pollIntervalMs: 5000,
    maxAttempts: 15,
    retryBaseMs: 2000,
    retryMaxMs: 3600_000,
    leaseMs: 60_000,
    timeoutMs: 10_000,
    batchSize: 50,
    retentionDays: 7,
    fetch: globalThis.fetch,
    now: () => new Date(),
    ...options,
  };
  const woken = new Set<string>();
  const retryTimers = new Set<NodeJS.Timeout>();
  const lastPurge = new Map<string, number>();
  let sweep = true;
  let stopped = false;
  let rerun = false;
  let running: Promise<void> | null = null;

  const kick = () => {
    if (stopped) return;
    if (running) {
      rerun = true;
      return;
    }
    running = loop()
      .catch((error: unknown) => o.logger?.error({ err: error }, 'webhook delivery failed'))
      .finally(() => {
        running = null;
        if (rerun) {
          rerun = false;
          kick();
        }
      });
  };

  const wake = (tenantId?: string) => {
    if (tenantId) woken.add(tenantId);
    else sweep = true;
    kick();
  };

  async function loop(): Promise<void> {
    const tenants = new Set(woken);
    woken.clear();
    if (sweep) {
      sweep = false;
      for (const tenantId of await tenantsWithDueWebhooks(o.db, 1000)) tenants.add(tenantId);
    }
    for (const tenantId of tenants) {
      if (stopped) return;
      while (!stopped && (await deliverBatch(tenantId)) === o.batchSize);
    }
  }

  async function deliverBatch(tenantId: string): Promise<number> {
    const { rows, apps } = await o.db.withTenant(tenantId, async (em) => {
      const [claimed] = await em.query<[Claimed[], number]>(
        `UPDATE webhook_outbox o
            SET attempts = o.attempts + 1, next_attempt_at = now() + make_interval(secs => $1)
          WHERE (o.tenant_id, o.id) IN (
                SELECT tenant_id, id FROM webhook_outbox
                 WHERE status = 'pending' AND next_attempt_at <= now()
                 ORDER BY next_attempt_at, created_at LIMIT $2 FOR UPDATE SKIP LOCKED)
          RETURNING o.id, o.event_id, o.app_id, o.payload, o.attempts`,
        [o.leaseMs / 1000, o.batchSize],
      );
      const targets = claimed.length === 0 ? [] : await loadApps(em, claimed);
      return { rows: claimed, apps: new Map(targets.map((a) => [a.id, a])) };
    });
    if (rows.length === 0) return 0;
    const outcomes = await Promise.all(rows.map((row) => deliver(row, apps.get(row.app_id))));
    await o.db.withTenant(tenantId, async (em) => {
      for (const [i, row] of rows.entries()) {
        const outcome = outcomes[i] ?? { ok: false, error: 'no outcome', permanent: false };
        await record(em, tenantId, row, outcome);
      }
      await purgeDelivered(em, tenantId);
    });
    return rows.length;
  }

  async function loadApps(em: EntityManager, claimed: Claimed[]): Promise<AppTarget[]> {
    const rows = await em.query<Pick<AppTarget, 'id' | 'webhook_url' | 'deleted_at'>[]>(
      `SELECT id, webhook_url, deleted_at FROM apps WHERE id = ANY($1::uuid[])`,
      [[...new Set(claimed.map((c) => c.app_id))]],
    );
    const targets: AppTarget[] = [];
    for (const app of rows) {
      try {
        targets.push({ ...app, secrets: await openWebhookSecrets(em, o.masterKey, app.id, o.now()) });
      } catch {
        targets.push({ ...app, secrets: [], secretsError: 'webhook secret cannot be opened' });
      }
    }
    return targets;
  }

  async function record(em: EntityManager, tenantId: string, row: Claimed, outcome: Outcome) {
    const context = {
      tenant_id: tenantId,
      outbox_id: row.id,
      event_id: row.event_id,
      app_id: row.app_id,
      attempts: row.attempts,
    };
    if (outcome.ok) {
      await em.query(
        `UPDATE webhook_outbox SET status = 'delivered', delivered_at = now(), last_error = NULL WHERE id = $1`,
        [row.id],
      );
      o.logger?.info(context, 'webhook delivered');
    } else if (outcome.permanent || row.attempts >= o.maxAttempts) {
      await em.query(`UPDATE webhook_outbox SET status = 'failed', last_error = $2 WHERE id = $1`, [
        row.id,
        outcome.error,
      ]);
      o.logger?.warn({ ...context, error: outcome.error }, 'webhook given up');
    } else {
      const delay = Math.min(o.retryMaxMs, o.retryBaseMs * 2 ** (row.attempts - 1));
      await em.query(
        `UPDATE webhook_outbox SET next_attempt_at = now() + make_interval(secs => $2), last_error = $3
          WHERE id = $1`,
        [row.id, delay / 1000, outcome.error],
      );
      o.logger?.warn({ ...context, error: outcome.error, retry_in_ms: delay }, 'webhook delivery failed');
      scheduleRetry(tenantId, delay);
    }
  }

  async function purgeDelivered(em: EntityManager, tenantId: string): Promise<void> {
    const last = lastPurge.get(tenantId) ?? 0;
    if (Date.now() - last < RETENTION_SWEEP_MS) return;
    lastPurge.set(tenantId, Date.now());
    await em.query(
      `DELETE FROM webhook_outbox
        WHERE status = 'delivered' AND delivered_at < now() - make_interval(days => $1)`,
      [o.retentionDays],
    );
  }

  async function deliver(row: Claimed, app: AppTarget | undefined): Promise<Outcome> {
    if (!app || app.deleted_at) return { ok: false, error: 'app deleted', permanent: true };
    if (!app.webhook_url) return { ok: false, error: 'app has no webhook URL', permanent: true };
    if (app.secretsError) return { ok: false, error: app.secretsError, permanent: false };
    if (app.secrets.length === 0) return { ok: false, error: 'app has no webhook secret', permanent: true };
    try {
      const body = JSON.stringify(row.payload);
      const timestamp = Math.floor(o.now().getTime() / 1000);
      const response = await o.fetch(app.webhook_url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'user-agent': 'Gatehouse-Webhooks/1',
          'gatehouse-event-id': row.event_id,
          'gatehouse-signature': signatureHeader(app.secrets, body, timestamp),
        },
        body,
        redirect: 'manual',
        signal: AbortSignal.timeout(o.timeoutMs),
      });
      await response.body?.cancel().catch(() => undefined);
      if (response.status >= 200 && response.status < 300) return { ok: true };
      return { ok: false, error: `HTTP ${response.status}`, permanent: false };
    } catch (error) {
      // Never the secret or the body: only what went wrong.
      const message = error instanceof Error ? `${error.name}: ${error.message}` : 'delivery error';
      return { ok: false, error: message.slice(0, 300), permanent: false };
    }
  }

  function scheduleRetry(tenantId: string, delay: number): void {
    if (stopped) return;
    const timer = setTimeout(() => {
      retryTimers.delete(timer);
      wake(tenantId);
    }, delay);
    timer.unref();
    retryTimers.add(timer);
  }

  const unsubscribe = [
    o.notifications?.on(CHANNELS.webhookOutbox, (tenantId) => wake(tenantId)),
    o.notifications?.onReconnect(() => wake()),
  ];
  const poll = setInterval(() => wake(), o.pollIntervalMs);
  poll.unref();
  kick();

  return {
    wake,
    async stop() {
      stopped = true;
      clearInterval(poll);
      for (const timer of retryTimers) clearTimeout(timer);
      retryTimers.clear();
      for (const off of unsubscribe) off?.();
      await running;
    },
  };
}
