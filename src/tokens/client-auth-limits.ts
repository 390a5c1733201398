import type { Request } from 'express';
import { ipKeyGenerator, MemoryStore, type ClientRateLimitInfo, type Options } from 'express-rate-limit';
import type { Logger } from 'pino';
import type { EntityManager } from 'typeorm';
import type { Config } from '../config/config.js';
import type { Database } from '../db/database.js';
import { finalStatement } from '../db/pipelined-transaction.js';
import { createLogger } from '../http/logger.js';
import { PostgresRateLimitStore } from '../http/rate-limit-store.js';
import { signals } from '../observability/signals.js';
import { OAuthError } from './oauth-errors.js';
import { presentedClientId } from './rate-limits.js';

/**
 * How are failed client authentications limited (RFC 6749 §5.2; docs/security.md) without a round trip
 * of their own (issue 13)? Every request at /oauth/token, /oauth/introspect and /oauth/revoke is checked
 * against two counts of FAILED authentications in the current window — per source address and per
 * client_id — before its secret is checked: at or past either limit the answer is 429 and no argon2 check
 * runs. Only failures are ever counted: a request answered 401 `invalid_client` adds one to both counts
 * before its answer is sent (`failed`), so the next request sees it. A request that succeeds writes
 * nothing.
 *
 * The check travels with the read of the app and its secret (apps.service.ts): both statements are
 * written back to back on one connection in one platform transaction, the second with its COMMIT
 * (db/pipelined-transaction.ts): one round trip.
 *
 * Why not count every request and take successes back afterwards (express-rate-limit's
 * skipSuccessfulRequests, as this did before): requests in flight then count as failures, so a main app
 * with more token requests in flight from one address than the limit (20) was refused without a single
 * failure, and a take-back lost with its connection (an outage) stayed counted for the window; and every
 * successful request paid two more statements after its answer. The price of checking before counting:
 * concurrent guesses that all read the count below the limit are all checked, so an attacker may exceed
 * the limit by the requests it has in flight at once — each of them still costs an argon2id check.
 *
 * Failing open, as before: when the checking trip fails, the miss is logged at warn and the app is read
 * alone. With GATEHOUSE_RATE_LIMIT_STORE=memory the counts are this node's memory and cost no trip.
 */
const MINUTE_MS = 60_000;

interface Limit {
  name: string;
  limit: number;
  store: PostgresRateLimitStore | MemoryStore;
  keyOf(req: Request): string | null;
}

interface Counted {
  limit: Limit;
  key: string;
}

/** The promise itself, with its rejection marked as handled; whoever awaits it later still sees it. */
function observed<T>(promise: Promise<T>): Promise<T> {
  promise.catch(() => undefined);
  return promise;
}

export class ClientAuthLimits {
  private readonly limits: Limit[];
  private readonly log: Logger;

  constructor(
    config: Config,
    private readonly db: Database,
  ) {
    this.log = createLogger(config.logLevel).child({ component: 'rate-limit' });
    const { clientAuthFailuresPerAddress, clientAuthFailuresPerClient } = config.rateLimits;
    const store = (name: string) => {
      const s =
        config.rateLimits.store === 'memory'
          ? new MemoryStore()
          : new PostgresRateLimitStore(db, name, this.log);
      s.init({ windowMs: MINUTE_MS } as Options);
      return s;
    };
    this.limits = [
      {
        name: 'client-auth-address',
        limit: clientAuthFailuresPerAddress,
        store: store('client-auth-address'),
        keyOf: (req) => ipKeyGenerator(req.ip ?? 'unknown'),
      },
      {
        name: 'client-auth-client',
        limit: clientAuthFailuresPerClient,
        store: store('client-auth-client'),
        // Only ids that could be an app: random ones would only fill the store.
        keyOf: (req) => {
          const id = presentedClientId(req);
          return id ? `client:${id}` : null;
        },
      },
    ];
  }

  /**
   * Checks this request against both limits and runs `read` (the app and its secret, on platform
   * tables) in the same round trip; throws 429 `temporarily_unavailable` at or past a limit, before any
   * secret is checked.
   */
  async checkWith<T>(req: Request, read: (em: EntityManager) => Promise<T>): Promise<T> {
    const keys = this.keysOf(req);
    let result: T;
    let seen: (ClientRateLimitInfo | undefined)[];
    try {
      [result, seen] = await this.checkAndRead(keys, read);
    } catch (err) {
      // Fail open (http/rate-limit-store.ts): a limiter outage must not become one of the token endpoint.
      this.log.warn({ err }, 'rate limit not checked: the store failed; request allowed');
      return this.db.readPlatform(read);
    }
    keys.forEach((c, i) => {
      const count = seen[i];
      if (count && count.totalHits >= c.limit.limit) this.refuse(req, c.limit, count);
    });
    return result;
  }

  /** Counts a failed authentication (answered 401 invalid_client) against both limits, before the answer. */
  async failed(req: Request): Promise<void> {
    await Promise.all(
      this.keysOf(req).map((c) =>
        Promise.resolve(c.limit.store.increment(c.key)).catch((err: unknown) =>
          this.log.warn({ err }, 'rate limit not counted: the store failed'),
        ),
      ),
    );
  }

  private async checkAndRead<T>(
    keys: Counted[],
    read: (em: EntityManager) => Promise<T>,
  ): Promise<[T, (ClientRateLimitInfo | undefined)[]]> {
    const stores = keys.map((c) => c.limit.store);
    if (keys.length === 0 || !stores.every((s) => s instanceof PostgresRateLimitStore)) {
      // Counts in memory: nothing to send with the read.
      const seen = await Promise.all(keys.map((c) => c.limit.store.get(c.key)));
      return [await this.db.readPlatform(read), seen];
    }
    return this.db.withPlatform(async (em) => {
      // Observed at once: it may fail (the connection lost) during the wait below, before Promise.all
      // looks at it, and an unobserved rejection would end the process.
      const reading = observed(read(em));
      // The read is written once its promise continuations have run (no I/O before the write); one
      // macrotask turn later the counts go with COMMIT behind it.
      await new Promise((resolve) => setImmediate(resolve));
      const counting = PostgresRateLimitStore.getMany(
        keys.map((c) => ({ store: c.limit.store as PostgresRateLimitStore, key: c.key })),
        async (sql, params) => (await finalStatement(em, sql, params)).rows,
      );
      return Promise.all([reading, counting]);
    });
  }

  private keysOf(req: Request): Counted[] {
    return this.limits.flatMap((limit) => {
      const key = limit.keyOf(req);
      return key === null ? [] : [{ limit, key }];
    });
  }

  private refuse(req: Request, limit: Limit, hit: ClientRateLimitInfo): never {
    signals.rateLimited(limit.name); // issue 11: gatehouse_rate_limit_rejections_total
    const error = new OAuthError(
      'temporarily_unavailable',
      'Too many failed client authentications; retry later',
      { status: 429, detail: `over the ${limit.name} limit` },
    );
    req.log.warn({ request_id: req.requestId, client_id: presentedClientId(req) }, error.description);
    const reset = hit.resetTime?.getTime() ?? Date.now() + MINUTE_MS;
    req.res?.set('Retry-After', String(Math.max(1, Math.ceil((reset - Date.now()) / 1000))));
    throw error;
  }
}
