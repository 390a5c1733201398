import { AsyncLocalStorage } from 'node:async_hooks';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type pg from 'pg';
import type { DataSource } from 'typeorm';
import type { PostgresDriver } from 'typeorm/driver/postgres/PostgresDriver.js';

/**
 * How many times does one HTTP request go to PostgreSQL (issues 9 and 13)?
 * Counted on the real pool: every client the pool hands out has its `query`
 * wrapped, and each statement is attributed (AsyncLocalStorage) to the HTTP
 * request that issued it. A unit is a transaction (BEGIN … COMMIT/ROLLBACK,
 * however many statements inside) or a statement outside any transaction; a
 * round trip is one wait: a `query` call on a client with nothing in flight.
 * A statement written while an earlier one of the same client is still
 * unanswered (pg's pipeline mode, src/db/pipelined-transaction.ts) travels in
 * the same trip and adds none; it is listed in `statements` with a "+". The
 * numbers are deterministic for a given code path, so tests hold them as
 * upper bounds: a change that adds a trip fails.
 */

export interface Tally {
  request: string;
  transactions: number;
  standalone: number;
  roundTrips: number;
  /** The statements in order, for a failing bound's message. */
  statements: string[];
  /**
   * Statements issued in the request's async context after its response was
   * sent (the SCIM request log's batched flush, a limiter's sweep): counted
   * here, not in the bounds above, as the client never waits for them.
   */
  afterResponse: number;
  responded: boolean;
}

const BEGIN = /^(START TRANSACTION|BEGIN)\b/i;
const END = /^(COMMIT|ROLLBACK)\b/i;

export class RoundTripCounter {
  readonly tallies: Tally[] = [];
  private readonly requestOf = new AsyncLocalStorage<Tally>();

  /** Wraps `query` of every client the pool hands out (once per client). */
  countPool(pool: pg.Pool): void {
    const wrapped = new WeakSet<pg.PoolClient>();
    const inTransaction = new WeakMap<pg.PoolClient, boolean>();
    const inFlight = new WeakMap<pg.PoolClient, number>();
    pool.on('acquire', (poolClient) => {
      if (wrapped.has(poolClient)) return;
      wrapped.add(poolClient);
      const query = poolClient.query.bind(poolClient) as (...args: unknown[]) => unknown;
      (poolClient as unknown as { query: (...args: unknown[]) => unknown }).query = (...args: unknown[]) => {
        const tally = this.requestOf.getStore();
        const first = args[0];
        const sql = (
          typeof first === 'string' ? first : ((first as { text?: string }).text ?? '')
        ).trimStart();
        const pipelined = (inFlight.get(poolClient) ?? 0) > 0;
        if (tally?.responded) tally.afterResponse += 1;
        else if (tally) {
          if (!pipelined) tally.roundTrips += 1;
          tally.statements.push(`${pipelined ? '+ ' : ''}${sql.replace(/\s+/g, ' ').slice(0, 120)}`);
          if (BEGIN.test(sql)) tally.transactions += 1;
          else if (!END.test(sql) && !inTransaction.get(poolClient)) tally.standalone += 1;
        }
        if (BEGIN.test(sql)) inTransaction.set(poolClient, true);
        else if (END.test(sql)) inTransaction.set(poolClient, false);
        inFlight.set(poolClient, (inFlight.get(poolClient) ?? 0) + 1);
        const answered = () => inFlight.set(poolClient, (inFlight.get(poolClient) ?? 1) - 1);
        const result = query(...args) as Promise<unknown> | undefined;
        if (result && typeof result.then === 'function') result.then(answered, answered);
        else answered();
        return result;
      };
    });
  }

  /** The same, for a TypeORM data source's pool. */
  countDataSource(dataSource: DataSource): void {
    this.countPool((dataSource.driver as PostgresDriver).master as pg.Pool);
  }

  /** Runs fn with a fresh tally (for work that is not an HTTP request, or one the test drives itself). */
  run<T>(label: string, fn: () => T): { tally: Tally; result: T } {
    const tally: Tally = {
      request: label,
      transactions: 0,
      standalone: 0,
      roundTrips: 0,
      statements: [],
      afterResponse: 0,
      responded: false,
    };
    this.tallies.push(tally);
    return { tally, result: this.requestOf.run(tally, fn) };
  }

  /** A request listener that tallies each request it serves (for http servers and supertest alike). */
  wrap(
    handler: (req: IncomingMessage, res: ServerResponse) => void,
  ): (req: IncomingMessage, res: ServerResponse) => void {
    return (req, res) => {
      const { tally } = this.run(`${req.method} ${req.url?.split('?')[0]}`, () => handler(req, res));
      res.on('finish', () => (tally.responded = true));
    };
  }

  /** The tallies from index `from` on (take `tallies.length` before the requests). */
  since(from: number): Tally[] {
    return this.tallies.slice(from);
  }
}

export function unitsOf(tally: Tally | undefined): number {
  return tally ? tally.transactions + tally.standalone : Number.NaN;
}
