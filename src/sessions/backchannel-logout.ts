import { randomUUID } from 'node:crypto';
import type { JWTPayload } from 'jose';
import type { EntityManager } from 'typeorm';
import type { Database } from '../db/database.js';
import { CHANNELS, type NotificationBus } from '../db/notification-bus.js';
import type { SigningAlg } from '../tokens/app.entity.js';
import type { TokenSigner } from '../tokens/token-signer.js';
import { tenantsWithDueLogouts } from '../db/resolvers.js';

/** OIDC Back-Channel Logout 1.0 §2.4: the one event a logout token carries. */
export const BACKCHANNEL_LOGOUT_EVENT = 'http://schemas.openid.net/event/backchannel-logout';

/** The claims of a logout token (§2.4): no nonce, both sub and sid. */
export function logoutTokenClaims(input: {
  issuer: string;
  appId: string;
  userId: string;
  sessionId: string;
  now: Date;
  ttlSeconds: number;
}): JWTPayload {
  const iat = Math.floor(input.now.getTime() / 1000);
  return {
    iss: input.issuer,
    aud: input.appId,
    iat,
    exp: iat + input.ttlSeconds,
    jti: randomUUID(),
    sub: input.userId,
    sid: input.sessionId,
    events: { [BACKCHANNEL_LOGOUT_EVENT]: {} },
  };
}

export interface LogoutLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface LogoutDeliveryOptions {
  db: Database;
  signer: TokenSigner;
  /** The `iss` of Gatehouse's tokens. */
  issuer: string;
  /** Wakes the worker when any node queues a logout; without it the worker only polls. */
  notifications?: NotificationBus;
  logger?: LogoutLogger;
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
  tokenTtlSeconds?: number;
  fetch?: typeof fetch;
}

export interface LogoutDelivery {
  /** Look for due rows now: of one tenant, or of all tenants. */
  wake(tenantId?: string): void;
  /** Stops timers and waits for the delivery in flight. */
  stop(): Promise<void>;
}

interface Claimed {
  id: string;
  session_id: string;
  user_id: string;
  app_id: string;
  attempts: number;
}

interface AppTarget {
  id: string;
  backchannel_logout_uri: string | null;
  token_signing_alg: SigningAlg;
  deleted_at: Date | null;
}

type Outcome = { ok: true } | { ok: false; error: string; permanent: boolean };

const RETENTION_SWEEP_MS = 3600_000;

/**
 * The delivery side of the transactional outbox: claims due rows per tenant
 * (FOR UPDATE SKIP LOCKED, so several nodes share the work and each row goes
 * to one of them), signs a logout token per row and POSTs it to the app's
 * `backchannel_logout_uri`, then records delivered / retry with exponential
 * backoff / given up. Rows stay in Postgres throughout, so a restart loses none.
 */
export function startLogoutDelivery(options: LogoutDeliveryOptions): LogoutDelivery {
  const o = {
    pollIntervalMs: 5000,
    maxAttempts: 10,
    retryBaseMs: 2000,
    retryMaxMs: 3600_000,
    leaseMs: 60_000,
    timeoutMs: 5000,
    batchSize: 50,
    tokenTtlSeconds: 120,
    fetch: globalThis.fetch,
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
      .catch((error: unknown) => o.logger?.error({ err: error }, 'back-channel logout delivery failed'))
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
      for (const tenantId of await tenantsWithDueLogouts(o.db, 1000)) tenants.add(tenantId);
    }
    for (const tenantId of tenants) {
      if (stopped) return;
      while (!stopped && (await deliverBatch(tenantId)) === o.batchSize);
    }
  }

  async function deliverBatch(tenantId: string): Promise<number> {
    const { rows, apps } = await o.db.withTenant(tenantId, async (em) => {
      const [claimed] = await em.query<[Claimed[], number]>(
        `UPDATE logout_outbox o
            SET attempts = o.attempts + 1, next_attempt_at = now() + make_interval(secs => $1)
          WHERE (o.tenant_id, o.id) IN (
                SELECT tenant_id, id FROM logout_outbox
                 WHERE status = 'pending' AND next_attempt_at <= now()
                 ORDER BY next_attempt_at LIMIT $2 FOR UPDATE SKIP LOCKED)
          RETURNING o.id, o.session_id, o.user_id, o.app_id, o.attempts`,
        [o.leaseMs / 1000, o.batchSize],
      );
      const targets =
        claimed.length === 0
          ? []
          : await em.query<AppTarget[]>(
              `SELECT id, backchannel_logout_uri, token_signing_alg, deleted_at FROM apps WHERE id = ANY($1::uuid[])`,
              [[...new Set(claimed.map((c) => c.app_id))]],
            );
      return { rows: claimed, apps: new Map(targets.map((a) => [a.id, a])) };
    });
    if (rows.length === 0) return 0;
    const outcomes = await Promise.all(rows.map((row) => deliver(row, apps.get(row.app_id))));
    await o.db.withTenant(tenantId, async (em) => {
      for (const [i, row] of rows.entries()) {
        const outcome = outcomes[i] ?? { ok: false, error: 'no outcome', permanent: false };
        const context = {
          tenant_id: tenantId,
          outbox_id: row.id,
          app_id: row.app_id,
          attempts: row.attempts,
        };
        if (outcome.ok) {
          await em.query(
            `UPDATE logout_outbox SET status = 'delivered', delivered_at = now(), last_error = NULL WHERE id = $1`,
            [row.id],
          );
          o.logger?.info(context, 'back-channel logout delivered');
        } else if (outcome.permanent || row.attempts >= o.maxAttempts) {
          await em.query(`UPDATE logout_outbox SET status = 'failed', last_error = $2 WHERE id = $1`, [
            row.id,
            outcome.error,
          ]);
          o.logger?.warn({ ...context, error: outcome.error }, 'back-channel logout given up');
        } else {
          const delay = Math.min(o.retryMaxMs, o.retryBaseMs * 2 ** (row.attempts - 1));
          await em.query(
            `UPDATE logout_outbox SET next_attempt_at = now() + make_interval(secs => $2), last_error = $3
              WHERE id = $1`,
            [row.id, delay / 1000, outcome.error],
          );
          o.logger?.warn(
            { ...context, error: outcome.error, retry_in_ms: delay },
            'back-channel logout failed',
          );
          scheduleRetry(tenantId, delay);
        }
      }
      await purgeDelivered(em, tenantId);
    });
    return rows.length;
  }

  async function purgeDelivered(em: EntityManager, tenantId: string): Promise<void> {
    const last = lastPurge.get(tenantId) ?? 0;
    if (Date.now() - last < RETENTION_SWEEP_MS) return;
    lastPurge.set(tenantId, Date.now());
    await em.query(
      `DELETE FROM logout_outbox WHERE status = 'delivered' AND delivered_at < now() - interval '7 days'`,
    );
  }

  async function deliver(row: Claimed, app: AppTarget | undefined): Promise<Outcome> {
    if (!app || app.deleted_at) return { ok: false, error: 'app deleted', permanent: true };
    if (!app.backchannel_logout_uri)
      return { ok: false, error: 'app has no back-channel logout URI', permanent: true };
    try {
      const token = await o.signer.sign(
        logoutTokenClaims({
          issuer: o.issuer,
          appId: app.id,
          userId: row.user_id,
          sessionId: row.session_id,
          now: new Date(),
          ttlSeconds: o.tokenTtlSeconds,
        }),
        { alg: app.token_signing_alg, typ: 'logout+jwt' },
      );
      const response = await o.fetch(app.backchannel_logout_uri, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', 'cache-control': 'no-store' },
        body: new URLSearchParams({ logout_token: token }).toString(),
        redirect: 'manual',
        signal: AbortSignal.timeout(o.timeoutMs),
      });
      await response.body?.cancel().catch(() => undefined);
      // §2.8: 200 OK on success (any 2xx accepted); anything else is retried.
      if (response.status >= 200 && response.status < 300) return { ok: true };
      return { ok: false, error: `HTTP ${response.status}`, permanent: false };
    } catch (error) {
      // Never the token: only what went wrong.
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
    o.notifications?.on(CHANNELS.logoutOutbox, (tenantId) => wake(tenantId)),
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
