import type { Request, RequestHandler } from 'express';
import { ipKeyGenerator, MemoryStore, type IncrementResponse, type Options } from 'express-rate-limit';
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
 * of their own (issue 13)? The rule is the one express-rate-limit ran as two middlewares before: every
 * request at /oauth/token, /oauth/introspect and /oauth/revoke is counted, per source address and per
 * client_id, BEFORE its secret is checked; past either limit the answer is 429 and no argon2 check runs;
 * after the answer, a request that did not end in 401 `invalid_client` is taken back, so only failures
 * stay counted. What changed is where the count travels: the two increments
 * (http/rate-limit-store.ts, the shared counters) and the read of the app and its secret
 * (apps.service.ts) are three statements written back to back on one connection in one platform
 * transaction, the last with its COMMIT (db/pipelined-transaction.ts): one round trip instead of three.
 * A request refused before it names a client (no or malformed credentials: 401) is counted after its
 * answer, as it never reached that trip.
 *
 * Failing open, as before: when the counting trip fails, the miss is logged at warn and the app is read
 * alone. With GATEHOUSE_RATE_LIMIT_STORE=memory the counters are this node's memory and cost no trip.
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

/** Per request: which counters it incremented (and must take back unless it failed). */
const counted = new WeakMap<Request, Counted[]>();

type Rows = Record<string, unknown>[];

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
   * Before the handler: after the answer, takes back what a request that did not fail authentication
   * counted, and counts a 401 that came before the counting trip.
   */
  readonly track: RequestHandler = (req, res, next) => {
    counted.set(req, []);
    res.on('finish', () => {
      const mine = counted.get(req) ?? [];
      if (res.statusCode === 401 && mine.length === 0) {
        for (const c of this.keysOf(req))
          this.quietly(c.limit.store.increment(c.key), 'rate limit not counted: the store failed');
      } else if (res.statusCode !== 401) {
        for (const c of mine)
          this.quietly(c.limit.store.decrement(c.key), 'rate limit not taken back: the store failed');
      }
    });
    next();
  };

  /**
   * Counts this request against both limits and runs `read` (the app and its secret, on platform
   * tables) in the same round trip; throws 429 `temporarily_unavailable` past a limit, before any
   * secret is checked.
   */
  async countWith<T>(req: Request, read: (em: EntityManager) => Promise<T>): Promise<T> {
    const keys = this.keysOf(req);
    let result: T;
    let hits: IncrementResponse[];
    try {
      [result, hits] = await this.countAndRead(keys, read);
    } catch (err) {
      // Fail open (http/rate-limit-store.ts): a limiter outage must not become one of the token endpoint.
      this.log.warn({ err }, 'rate limit not counted: the store failed; request allowed');
      return this.db.readPlatform(read);
    }
    counted.set(req, keys);
    keys.forEach((c, i) => {
      const hit = hits[i];
      if (hit && hit.totalHits > c.limit.limit) this.refuse(req, c.limit, hit);
    });
    return result;
  }

  private async countAndRead<T>(
    keys: Counted[],
    read: (em: EntityManager) => Promise<T>,
  ): Promise<[T, IncrementResponse[]]> {
    const last = keys[keys.length - 1];
    if (!last || keys.some((c) => !(c.limit.store instanceof PostgresRateLimitStore))) {
      // Counters in memory: nothing to send with the read.
      const hits = await Promise.all(keys.map((c) => c.limit.store.increment(c.key)));
      return [await this.db.readPlatform(read), hits];
    }
    return this.db.withPlatform(async (em) => {
      const onThis = async (sql: string, params: unknown[]) => await em.query<Rows>(sql, params);
      // Observed at once: one of them may fail (the connection lost) during the wait below, before
      // Promise.all looks at it, and an unobserved rejection would end the process.
      const reading = observed(read(em));
      const first = keys
        .slice(0, -1)
        .map((c) => observed((c.limit.store as PostgresRateLimitStore).increment(c.key, onThis)));
      // The statements above are written once their promise continuations have run (no I/O before the
      // write); one macrotask turn later the last increment goes with COMMIT behind them.
      await new Promise((resolve) => setImmediate(resolve));
      const lastHit = (last.limit.store as PostgresRateLimitStore).increment(
        last.key,
        async (sql, params) => (await finalStatement(em, sql, params)).rows,
      );
      const [result, ...hits] = await Promise.all([reading, ...first, lastHit]);
      return [result, hits];
    });
  }

  private keysOf(req: Request): Counted[] {
    return this.limits.flatMap((limit) => {
      const key = limit.keyOf(req);
      return key === null ? [] : [{ limit, key }];
    });
  }

  private refuse(req: Request, limit: Limit, hit: IncrementResponse): never {
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

  private quietly(work: unknown, message: string): void {
    Promise.resolve(work).catch((err: unknown) => this.log.warn({ err }, message));
  }
}
