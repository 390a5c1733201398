import { AsyncLocalStorage } from 'node:async_hooks';
import type pg from 'pg';
import type { DataSource } from 'typeorm';
import type { PostgresDriver } from 'typeorm/driver/postgres/PostgresDriver.js';

/**
 * Does work that holds a pooled connection ever wait for another one from the same pool? It must not:
 * with every connection held by work waiting that way, nothing is left to answer any of them, and they
 * all wait out the pool's connect timeout (5 s) into 503s. That happened (issue 13): a code exchange
 * signed its tokens inside its transaction, and signing could read the keys through the pool.
 *
 * The guard makes the rule checkable. A transaction (db/pipelined-transaction.ts) runs its body in an
 * async context marked as holding a connection; with `GATEHOUSE_POOL_GUARD=throw` (the test suite sets
 * it, test/support/quiet-libraries.js), asking the pool for a connection from that context throws
 * `NestedPoolAcquisitionError` instead of waiting, so every test that walks such a path fails. Work that
 * is started inside a transaction but never awaited by it (a sweep, a notification) leaves the marked
 * context with `detached`. Off by default: production pays nothing for it.
 */
const holding = new AsyncLocalStorage<true>();
const guarded = new WeakSet<object>();

export class NestedPoolAcquisitionError extends Error {
  readonly code = 'nested_pool_acquisition';
}

function enabled(): boolean {
  return process.env.GATEHOUSE_POOL_GUARD === 'throw';
}

/** Runs fn (a transaction's body) marked as holding a pooled connection. */
export function whileHoldingConnection<T>(fn: () => Promise<T>): Promise<T> {
  return enabled() ? holding.run(true, fn) : fn();
}

/** Runs fn outside the marking: for work a transaction starts and does not wait for. */
export function detached<T>(fn: () => T): T {
  return holding.getStore() ? holding.exit(fn) : fn();
}

/**
 * Throws NestedPoolAcquisitionError, as the pool would (with the guard on), when the caller holds a
 * connection: for work that asks the pool on its caller's behalf later, from another async context (a
 * rate-limit increment gathered into a statement another request's increment started).
 */
export function refuseWhileHoldingConnection(): void {
  if (holding.getStore())
    throw new NestedPoolAcquisitionError(
      'a pooled connection was asked for by work that holds one (db/pool-guard.ts)',
    );
}

/** Wraps the data source's pool once so that a connection asked for while holding one throws. */
export function guardPool(dataSource: DataSource): void {
  if (!enabled()) return;
  const pool = (dataSource.driver as Partial<PostgresDriver>).master as pg.Pool | undefined;
  if (!pool || guarded.has(pool)) return;
  guarded.add(pool);
  const connect = pool.connect.bind(pool) as (cb?: (...args: unknown[]) => void) => unknown;
  (pool as { connect: unknown }).connect = (callback?: (...args: unknown[]) => void) => {
    if (holding.getStore()) {
      const error = new NestedPoolAcquisitionError(
        'a pooled connection was asked for by work that holds one (db/pool-guard.ts)',
      );
      if (callback) {
        callback(error);
        return undefined;
      }
      return Promise.reject(error);
    }
    return connect(callback);
  };
}
