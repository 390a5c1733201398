import type { EntityManager } from 'typeorm';
import type { Database } from './database.js';
import type { Channel, NotificationBus } from './notification-bus.js';
import { signals, type OutboxKind } from '../observability/signals.js';

/** The metric label of each outbox table. */
const OUTBOX_KIND: Record<'logout_outbox' | 'webhook_outbox', OutboxKind> = {
  logout_outbox: 'logout',
  webhook_outbox: 'webhook',
};

export interface OutboxLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/** What one delivery attempt came to: a permanent failure is given up at once. */
export type OutboxOutcome = { ok: true } | { ok: false; error: string; permanent: boolean };

/** The columns every outbox row is claimed with; a worker adds its own. */
export interface OutboxRow {
  id: string;
  app_id: string;
  attempts: number;
}

/** The settings both outbox workers share (the public options of each extend these). */
export interface OutboxWorkerSettings {
  db: Database;
  /** Wakes the worker when any node queues a row; without it the worker only polls. */
  notifications?: NotificationBus;
  logger?: OutboxLogger;
  /** Sweep for due rows (retries, missed notifications). */
  pollIntervalMs?: number;
  /** Attempts before a row is given up (status failed). */
  maxAttempts?: number;
  /** Delay after the first failure; doubles per attempt up to retryMaxMs. */
  retryBaseMs?: number;
  retryMaxMs?: number;
  /** A claimed row becomes due again after this, should its node die mid-delivery. */
  leaseMs?: number;
  batchSize?: number;
}

/** What differs between outboxes: the table, how to load targets and send one row, the wake-ups, the log lines. */
export interface OutboxWorkerOptions<Row extends OutboxRow, Target> extends OutboxWorkerSettings {
  /**
   * The tenant table: (tenant_id, id) key, status pending/delivered/failed,
   * attempts, next_attempt_at, last_error, delivered_at, created_at, app_id.
   */
  table: 'logout_outbox' | 'webhook_outbox';
  /** The row's own columns the claim returns, besides id, app_id and attempts. */
  columns: readonly string[];
  /** The claim's ORDER BY among due rows. */
  claimOrder: string;
  /** A queued row's NOTIFY channel (payload: tenant id). */
  channel: Channel;
  /** The pre-tenant lookup of tenants with due rows (db/resolvers.ts). */
  dueTenants(db: Database, limit: number): Promise<string[]>;
  /** Reads what the claimed rows go to (by app id), in the claiming transaction. */
  loadTargets(em: EntityManager, rows: Row[]): Promise<Map<string, Target>>;
  /** One delivery attempt; must not throw (see httpOutcome). */
  send(row: Row, target: Target | undefined): Promise<OutboxOutcome>;
  /** Log fields of a row besides tenant, outbox id, app and attempts. */
  logFields?(row: Row): object;
  messages: { delivered: string; givenUp: string; retrying: string; crashed: string };
}

export interface OutboxWorker {
  /** Look for due rows now: of one tenant, or of all tenants. */
  wake(tenantId?: string): void;
  /** Stops timers and waits for the delivery in flight. */
  stop(): Promise<void>;
}

const DUE_TENANTS_PER_SWEEP = 1000;

/**
 * The delivery side of a transactional outbox: claims due rows per tenant
 * (FOR UPDATE SKIP LOCKED, so several nodes share the work and each row goes
 * to one of them, under a lease), sends each row of a batch in parallel, then
 * records delivered / retry with exponential backoff / given up. Wakes on the
 * channel's NOTIFY, after a reconnection, on a periodic sweep and on its own
 * retry timers (all unref'd). Rows stay in Postgres throughout, so a restart
 * loses none (at-least-once delivery). Finished rows (delivered or given up)
 * are purged by the cleanup job (sessions/cleanup.ts) after the outbox
 * retention, not here.
 */
export function startOutboxWorker<Row extends OutboxRow, Target>(
  options: OutboxWorkerOptions<Row, Target>,
): OutboxWorker {
  const o = {
    pollIntervalMs: 5000,
    maxAttempts: 10,
    retryBaseMs: 2000,
    retryMaxMs: 3600_000,
    leaseMs: 60_000,
    batchSize: 50,
    ...options,
  };
  const claimSql = `UPDATE ${o.table} o
            SET attempts = o.attempts + 1, next_attempt_at = now() + make_interval(secs => $1)
          WHERE (o.tenant_id, o.id) IN (
                SELECT tenant_id, id FROM ${o.table}
                 WHERE status = 'pending' AND next_attempt_at <= now()
                 ORDER BY ${o.claimOrder} LIMIT $2 FOR UPDATE SKIP LOCKED)
          RETURNING ${['id', ...o.columns, 'app_id', 'attempts'].map((c) => `o.${c}`).join(', ')}`;
  const woken = new Set<string>();
  const retryTimers = new Set<NodeJS.Timeout>();
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
      .catch((error: unknown) => o.logger?.error({ err: error }, o.messages.crashed))
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
      for (const tenantId of await o.dueTenants(o.db, DUE_TENANTS_PER_SWEEP)) tenants.add(tenantId);
    }
    for (const tenantId of tenants) {
      if (stopped) return;
      while (!stopped && (await deliverBatch(tenantId)) === o.batchSize);
    }
  }

  async function deliverBatch(tenantId: string): Promise<number> {
    const { rows, targets } = await o.db.withTenant(tenantId, async (em) => {
      const [claimed] = await em.query<[Row[], number]>(claimSql, [o.leaseMs / 1000, o.batchSize]);
      return {
        rows: claimed,
        targets: claimed.length === 0 ? new Map<string, Target>() : await o.loadTargets(em, claimed),
      };
    });
    if (rows.length === 0) return 0;
    const outcomes = await Promise.all(rows.map((row) => o.send(row, targets.get(row.app_id))));
    await o.db.withTenant(tenantId, async (em) => {
      for (const [i, row] of rows.entries()) {
        const outcome = outcomes[i] ?? { ok: false, error: 'no outcome', permanent: false };
        await record(em, tenantId, row, outcome);
      }
    });
    return rows.length;
  }

  async function record(em: EntityManager, tenantId: string, row: Row, outcome: OutboxOutcome) {
    const context = {
      tenant_id: tenantId,
      outbox_id: row.id,
      ...o.logFields?.(row),
      app_id: row.app_id,
      attempts: row.attempts,
    };
    // Only while the claim is still ours: if its lease ran out and another worker claimed the row
    // (attempts moved on) or finished it, a late outcome must not overwrite that worker's.
    const ours = `id = $1 AND status = 'pending' AND attempts = ${Number(row.attempts)}`;
    if (outcome.ok) {
      await em.query(
        `UPDATE ${o.table} SET status = 'delivered', delivered_at = now(), last_error = NULL WHERE ${ours}`,
        [row.id],
      );
      o.logger?.info(context, o.messages.delivered);
      signals.outboxFinished(OUTBOX_KIND[o.table], 'delivered');
    } else if (outcome.permanent || row.attempts >= o.maxAttempts) {
      await em.query(`UPDATE ${o.table} SET status = 'failed', last_error = $2 WHERE ${ours}`, [
        row.id,
        outcome.error,
      ]);
      o.logger?.warn({ ...context, error: outcome.error }, o.messages.givenUp);
      signals.outboxFinished(OUTBOX_KIND[o.table], 'given_up');
    } else {
      const delay = Math.min(o.retryMaxMs, o.retryBaseMs * 2 ** (row.attempts - 1));
      await em.query(
        `UPDATE ${o.table} SET next_attempt_at = now() + make_interval(secs => $2), last_error = $3
          WHERE ${ours}`,
        [row.id, delay / 1000, outcome.error],
      );
      o.logger?.warn({ ...context, error: outcome.error, retry_in_ms: delay }, o.messages.retrying);
      scheduleRetry(tenantId, delay);
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
    o.notifications?.on(o.channel, (tenantId) => wake(tenantId)),
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

/**
 * One HTTP delivery as an outcome: any 2xx is delivered, any other status or
 * error (including one while building the request) is retried. The response
 * body is discarded; the error text never carries the request (tokens, secrets).
 */
export async function httpOutcome(request: () => Promise<Response>): Promise<OutboxOutcome> {
  try {
    const response = await request();
    await response.body?.cancel().catch(() => undefined);
    if (response.status >= 200 && response.status < 300) return { ok: true };
    return { ok: false, error: `HTTP ${response.status}`, permanent: false };
  } catch (error) {
    const message = error instanceof Error ? `${error.name}: ${error.message}` : 'delivery error';
    return { ok: false, error: message.slice(0, 300), permanent: false };
  }
}
