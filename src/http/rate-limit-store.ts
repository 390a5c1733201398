import { createHmac, hkdfSync } from 'node:crypto';
import {
  MemoryStore,
  type ClientRateLimitInfo,
  type IncrementResponse,
  type Options,
  type Store,
} from 'express-rate-limit';
import type { Logger } from 'pino';
import type { Config } from '../config/config.js';
import type { Database } from '../db/database.js';
import { createLogger } from './logger.js';
import { countingRejections } from './metrics.js';
import { detached, refuseWhileHoldingConnection } from '../db/pool-guard.js';

/**
 * How do the rate limits hold when Gatehouse runs on many nodes behind a load
 * balancer (issue 11, "Limits hold across nodes")?
 *
 * Every limiter stays an express-rate-limit middleware (its semantics:
 * skipSuccessfulRequests, handlers, draft-7 headers) and counts in one shared
 * place: this Store over the platform table `rate_limit_counters`, so N
 * requests on node A and one on node B are N + 1 hits of the same key.
 *
 * Why a small Store over our own table and not rate-limiter-flexible's
 * PostgreSQL store: express-rate-limit documents this Store interface, so no
 * limiter's behaviour is rewritten and no dependency is added; and
 * rate-limiter-flexible creates its table at run time, which the runtime role
 * (`gatehouse_app`, owns nothing) may not do, while a migration gives the
 * table its grants, its constraints and its owner like every other table.
 *
 * - Fixed windows of the limiter's windowMs, starting at a key's first hit
 *   (as express-rate-limit's MemoryStore does); timed by the database clock,
 *   so nodes with skewed clocks agree.
 * - Each call is one statement on the pool, outside any transaction: the
 *   increment is one `INSERT … ON CONFLICT … DO UPDATE … RETURNING`.
 * - Increments of one key wait for each other, as PostgreSQL would make them
 *   wait anyway (they update one row): while one is sent, the ones arriving
 *   for the same key gather and go as one statement adding their number of
 *   hits, and each is answered its own count, in arrival order (issue 13: a
 *   tenant's SCIM requests had paid one statement each for its counter, the
 *   next ones queued on the row's lock). The counts are those of one statement
 *   per increment; only fewer statements are sent.
 * - Keys (addresses, client ids, tenant ids) are stored as HMAC-SHA-256
 *   digests under a key derived from the master key (useCounterKey), never
 *   in clear and never as a plain hash: an IPv4 address has 2^32 values, so
 *   a plain SHA-256 of it is reversed by trying them all; without the master
 *   key the table's keys cannot be tested against guesses.
 * - Ended windows are deleted lazily, at most once a minute per node, after
 *   an increment and off the request's path (sweepEndedWindows).
 * - Failing open: when the database cannot count, express-rate-limit's
 *   passOnStoreError lets the request through and the miss is logged at warn.
 *   A limiter outage must not become an outage of sign-in and SCIM; the
 *   request itself then meets the database and answers as its surface does.
 *
 * GATEHOUSE_RATE_LIMIT_STORE=memory keeps the counters in each node's memory
 * instead (one node, development).
 */

/** Adds $4 hits (the increments that waited for one statement, below) to a key's current window, or opens a window. */
const INCREMENT = `
  INSERT INTO rate_limit_counters AS c (limiter, key, hits, reset_at)
  VALUES ($1, $2, $4, now() + make_interval(secs => $3::double precision / 1000))
  ON CONFLICT (limiter, key) DO UPDATE
     SET hits = CASE WHEN c.reset_at <= now() THEN $4 ELSE LEAST(c.hits, 2147483647 - $4) + $4 END,
         reset_at = CASE WHEN c.reset_at <= now() THEN EXCLUDED.reset_at ELSE c.reset_at END
  RETURNING hits, reset_at`;

const DECREMENT = `
  UPDATE rate_limit_counters SET hits = hits - 1
   WHERE limiter = $1 AND key = $2 AND hits > 0 AND reset_at > now()`;

const GET_MANY = `
  SELECT w.i, c.hits, c.reset_at
    FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS w(limiter, key, i)
    LEFT JOIN rate_limit_counters c ON c.limiter = w.limiter AND c.key = w.key AND c.reset_at > now()`;

const GET = `
  SELECT hits, reset_at FROM rate_limit_counters
   WHERE limiter = $1 AND key = $2 AND reset_at > now()`;

const RESET_KEY = `DELETE FROM rate_limit_counters WHERE limiter = $1 AND key = $2`;
const RESET_ALL = `DELETE FROM rate_limit_counters WHERE limiter = $1`;

/** One batch of ended windows; SKIP LOCKED so two nodes sweeping at once do not wait on each other. */
const SWEEP = `
  DELETE FROM rate_limit_counters WHERE (limiter, key) IN (
    SELECT limiter, key FROM rate_limit_counters WHERE reset_at <= now() LIMIT $1 FOR UPDATE SKIP LOCKED)`;

const SWEEP_EVERY_MS = 60_000;
const SWEEP_BATCH = 1000;
const SWEEP_MAX_BATCHES = 20;

/** A limiter's name: the `limiter` column, and the prefix express-rate-limit's double-count check uses. */
const LIMITER_NAME = /^[a-z][a-z0-9_-]{0,62}$/;

/** The HMAC key for counter keys: HKDF-SHA-256 of the master key under a fixed label (every node derives the same). */
export function counterKey(masterKey: Buffer): Buffer {
  return Buffer.from(
    hkdfSync('sha256', masterKey, Buffer.alloc(0), 'gatehouse rate-limit counter keys v1', 32),
  );
}

export const keyDigest = (hmacKey: Buffer, key: string): string =>
  createHmac('sha256', hmacKey).update(key, 'utf8').digest('hex');

/** Each node's counter key, by database handle; createApp sets it before any limiter is built. */
const counterKeys = new WeakMap<Database, Buffer>();

export function useCounterKey(db: Database, masterKey: Buffer): void {
  counterKeys.set(db, counterKey(masterKey));
}

function counterKeyOf(db: Database): Buffer {
  const key = counterKeys.get(db);
  // Fail at build time, not per request: a limiter without its key must not count in clear.
  if (!key) throw new Error('rate limit counters: no counter key for this database (createApp sets it)');
  return key;
}

interface CounterRow {
  hits: number;
  reset_at: Date;
}

interface Waiter {
  resolve: (answer: IncrementResponse) => void;
  reject: (err: unknown) => void;
}

/** When this node last swept (per database handle, i.e. per node). */
const lastSweep = new WeakMap<Database, number>();

/** Deletes counters whose window has ended, in batches; returns how many. */
export async function sweepEndedWindows(db: Database): Promise<number> {
  let total = 0;
  for (let i = 0; i < SWEEP_MAX_BATCHES; i++) {
    const [, deleted] = await db.queryOutsideTenant<unknown>(SWEEP, [SWEEP_BATCH]);
    total += Number(deleted);
    if (Number(deleted) < SWEEP_BATCH) break;
  }
  return total;
}

/** An express-rate-limit Store whose counters every node shares (see the header). */
export class PostgresRateLimitStore implements Store {
  /** Keys counted here are seen by every node (express-rate-limit's double-count check). */
  readonly localKeys = false;
  readonly prefix: string;
  private windowMs = 60_000;
  private readonly hmacKey: Buffer;

  constructor(
    private readonly db: Database,
    readonly limiter: string,
    private readonly log: Logger,
  ) {
    if (!LIMITER_NAME.test(limiter)) throw new Error(`not a rate limiter name: ${limiter}`);
    this.hmacKey = counterKeyOf(db);
    this.prefix = `${limiter}:`;
  }

  init(options: Options): void {
    this.windowMs = options.windowMs;
  }

  /** Increments gathered while the one before them, for the same key (its digest), is sent. */
  private readonly gathering = new Map<string, Waiter[]>();
  private readonly sending = new Set<string>();

  increment(key: string): Promise<IncrementResponse> {
    const digest = keyDigest(this.hmacKey, key);
    return new Promise<IncrementResponse>((resolve, reject) => {
      // The statement may be sent from another request's context: the pool guard is asked here.
      refuseWhileHoldingConnection();
      const waiting = this.gathering.get(digest);
      if (waiting) waiting.push({ resolve, reject });
      else this.gathering.set(digest, [{ resolve, reject }]);
      if (!this.sending.has(digest)) this.sendGathered(digest);
    });
  }

  /** Sends the increments gathered for a key as one statement; those arriving meanwhile go next. */
  private sendGathered(digest: string): void {
    const batch = this.gathering.get(digest);
    if (!batch) return;
    this.gathering.delete(digest);
    this.sending.add(digest);
    this.db
      .queryOutsideTenant<CounterRow>(INCREMENT, [this.limiter, digest, this.windowMs, batch.length])
      .then(([row]) => {
        if (!row) throw new Error('rate_limit_counters: the increment returned no row');
        const resetTime = new Date(row.reset_at);
        // The statement's count includes the whole batch: each waiter's is its place in it.
        const before = row.hits - batch.length;
        batch.forEach((w, i) => w.resolve({ totalHits: before + i + 1, resetTime }));
      })
      .catch((err: unknown) => {
        for (const w of batch) w.reject(err);
      })
      .finally(() => {
        this.sending.delete(digest);
        // Sent on behalf of the requests that gathered, not of the one whose statement just ended.
        detached(() => this.sendGathered(digest));
      });
    this.maybeSweep();
  }

  /**
   * Several counters, of one or more stores, read in ONE statement, in the order given (undefined: no
   * count in the current window). `query` runs it where the caller sends it: the token endpoint checks
   * its two failed-authentication counts in the trip that reads the app (tokens/client-auth-limits.ts).
   */
  static async getMany(
    entries: { store: PostgresRateLimitStore; key: string }[],
    query: (sql: string, params: unknown[]) => Promise<unknown[]>,
  ): Promise<(ClientRateLimitInfo | undefined)[]> {
    const rows = (await query(GET_MANY, [
      entries.map((e) => e.store.limiter),
      entries.map((e) => keyDigest(e.store.hmacKey, e.key)),
    ])) as (Partial<CounterRow> & { i: string })[];
    return entries.map((_, i) => {
      const row = rows.find((r) => Number(r.i) === i + 1);
      return row?.hits !== undefined && row.hits !== null && row.reset_at
        ? { totalHits: row.hits, resetTime: new Date(row.reset_at) }
        : undefined;
    });
  }

  async decrement(key: string): Promise<void> {
    await this.db.queryOutsideTenant(DECREMENT, [this.limiter, keyDigest(this.hmacKey, key)]);
  }

  async get(key: string): Promise<ClientRateLimitInfo | undefined> {
    const [row] = await this.db.queryOutsideTenant<CounterRow>(GET, [
      this.limiter,
      keyDigest(this.hmacKey, key),
    ]);
    return row ? { totalHits: row.hits, resetTime: new Date(row.reset_at) } : undefined;
  }

  async resetKey(key: string): Promise<void> {
    await this.db.queryOutsideTenant(RESET_KEY, [this.limiter, keyDigest(this.hmacKey, key)]);
  }

  async resetAll(): Promise<void> {
    await this.db.queryOutsideTenant(RESET_ALL, [this.limiter]);
  }

  private maybeSweep(): void {
    const now = Date.now();
    if (now - (lastSweep.get(this.db) ?? 0) < SWEEP_EVERY_MS) return;
    lastSweep.set(this.db, now);
    // Not waited for: the increment may be inside a transaction (tokens/client-auth-limits.ts).
    detached(() => sweepEndedWindows(this.db)).catch((err: unknown) =>
      this.log.warn({ err }, 'rate limit counters: sweep of ended windows failed'),
    );
  }
}

/** The options every limiter adds to its own: where it counts, and what happens when counting fails. */
export type SharedLimiterOptions = Pick<Options, 'passOnStoreError' | 'logger'> & { store: Store };

/** One logger per configuration (per node): the limiters are built where no request logger exists yet. */
const loggers = new WeakMap<Config, Logger>();

function limiterLogger(config: Config): Logger {
  let log = loggers.get(config);
  if (!log) {
    log = createLogger(config.logLevel).child({ component: 'rate-limit' });
    loggers.set(config, log);
  }
  return log;
}

/**
 * The store, fail-open setting and logger of the limiter named `limiter`
 * (`[a-z][a-z0-9_-]*`, unique per limit: it is the `limiter` column). Each
 * limiter gets its own Store instance, as express-rate-limit requires.
 */
export function sharedLimiterOptions(config: Config, db: Database, limiter: string): SharedLimiterOptions {
  const log = limiterLogger(config);
  const store =
    config.rateLimits.store === 'memory' ? new MemoryStore() : new PostgresRateLimitStore(db, limiter, log);
  return {
    store: countingRejections(store, limiter), // issue 11: gatehouse_rate_limit_rejections_total
    // A request must not fail because its counter could not be written (see the header).
    passOnStoreError: true,
    logger: {
      warn: (error, message) => log.warn({ err: error, limiter }, message ?? 'rate limiter warning'),
      // express-rate-limit reports a failed count as an error; for us it is a warning (fail open).
      // Its other errors are configuration mistakes (e.g. ERR_ERL_UNEXPECTED_X_FORWARDED_FOR).
      error: (error, message) =>
        message?.includes('error from store')
          ? log.warn({ err: error, limiter }, 'rate limit not counted: the store failed; request allowed')
          : log.error({ err: error, limiter }, message ?? 'rate limiter error'),
    },
  };
}
