import type pg from 'pg';
import type { DataSource, EntityManager, QueryRunner } from 'typeorm';
import { guardPool, whileHoldingConnection } from './pool-guard.js';

/**
 * How does a transaction wait on PostgreSQL as few times as its statements
 * allow (issue 13, "Few round trips per request")? The runtime pool's clients
 * run in node-postgres's pipeline mode (`pipeline: true`, src/db/data-source.ts):
 * a statement is written to the connection at once, without waiting for the
 * answers of the ones written before it, and PostgreSQL still runs them in
 * order. Two things use that here:
 *
 * - **BEGIN travels with the first statement.** The transaction's opening
 *   (BEGIN and, in a tenant transaction, the tenant setting) is written and not
 *   waited for; the first statement follows on the same connection and waits
 *   for both. Should the opening fail (the connection broke), the statement
 *   behind it runs with no tenant set, where row-level security shows every
 *   tenant table empty, and its error is the opening's.
 * - **The last statement travels with COMMIT** when the code says so
 *   (`finalStatement`): both are written together and waited for together. A
 *   failed statement makes PostgreSQL answer the COMMIT with ROLLBACK (the
 *   transaction is aborted), so nothing of it stays; the statement's error is
 *   what the caller sees, and TypeORM's own COMMIT or ROLLBACK afterwards
 *   answers from the one already sent. A statement after the final one is a
 *   programming error and throws, never running outside the transaction.
 *
 * Each query node-postgres sends in pipeline mode ends with its own Sync, so a
 * failing statement cannot take the answers of its neighbours.
 */

const FINAL = Symbol('gatehouse.finalStatement');

type RawQuery = (sql: string, params?: unknown[], structured?: boolean) => Promise<unknown>;
type Final = (sql: string, params: unknown[]) => Promise<pg.QueryResult>;

function pipelines(client: pg.PoolClient): boolean {
  return (client as pg.PoolClient & { pipeline?: boolean }).pipeline === true;
}

/** Runs fn in a transaction whose opening is `beginSql` (BEGIN, maybe with the tenant setting), pipelined. */
export async function pipelinedTransaction<T>(
  dataSource: DataSource,
  beginSql: string,
  fn: (em: EntityManager) => Promise<T>,
): Promise<T> {
  guardPool(dataSource);
  const runner = dataSource.createQueryRunner();
  const query = runner.query.bind(runner) as RawQuery;
  let opening: Promise<unknown> | null = null;
  let ended: Promise<pg.QueryResult> | null = null;
  let begun = false;

  /** Waits for the opening together with what was written behind it. */
  const behindOpening = async <R>(answer: Promise<R>): Promise<R> => {
    const pending = opening;
    opening = null;
    if (!pending) return answer;
    const [, result] = await Promise.all([pending, answer]);
    return result;
  };

  runner.query = (async (sql: string, params?: unknown[], structured?: boolean) => {
    if (!begun && sql === 'START TRANSACTION') {
      begun = true;
      const client = (await runner.connect()) as pg.PoolClient;
      // A client not in pipeline mode (a data source made elsewhere) waits here, as it would anyway.
      if (!pipelines(client)) return client.query(beginSql);
      opening = client.query(beginSql);
      // Its failure is reported by the statement that waits for it.
      opening.catch(() => undefined);
      return undefined;
    }
    if (ended) {
      if (sql === 'COMMIT' || sql === 'ROLLBACK') {
        const result = await ended.then(
          (answer) => answer,
          (err: unknown) => err as Error,
        );
        if (sql === 'COMMIT') {
          // The COMMIT's own failure (a lost connection) is thrown as itself, so it is classed as an
          // outage (503, db/database-errors) like any statement's.
          if (result instanceof Error) throw result;
          // A COMMIT PostgreSQL answered with ROLLBACK: the final statement failed and has thrown already.
          if (result.command !== 'COMMIT') throw new Error('transaction did not commit');
        }
        return undefined;
      }
      throw new Error('a statement after the final statement of a transaction');
    }
    return behindOpening(query(sql, params, structured));
  }) as typeof runner.query;

  const final: Final = async (sql, params) => {
    if (ended) throw new Error('a transaction has one final statement');
    const client = (await runner.connect()) as pg.PoolClient;
    // Written back to back, in this order, before either is waited for (in pipeline mode).
    const statement = client.query(sql, params);
    if (!pipelines(client)) await statement.catch(() => undefined);
    ended = client.query('COMMIT');
    ended.catch(() => undefined);
    const [result, commit] = await behindOpening(Promise.all([statement, ended]));
    if (commit.command !== 'COMMIT') throw new Error('transaction did not commit');
    return result;
  };
  (runner as QueryRunner & { [FINAL]?: Final })[FINAL] = final;

  try {
    return await runner.manager.transaction((em) => {
      // The opening carries the tenant setting: a transaction TypeORM began differently must not run.
      if (!begun) throw new Error('the transaction did not begin with START TRANSACTION');
      // Its body holds the connection: it may not wait for another from the pool (db/pool-guard.ts).
      return whileHoldingConnection(() => fn(em));
    });
  } finally {
    await runner.release();
  }
}

/**
 * Sends the transaction's last statement and COMMIT together (one round trip) and answers the
 * statement's result (node-postgres's: rows, rowCount). Nothing may run in the transaction after it.
 * In a transaction not opened by pipelinedTransaction it is a plain statement followed by the usual COMMIT.
 */
export async function finalStatement(
  em: EntityManager,
  sql: string,
  params: unknown[],
): Promise<{ rows: Record<string, unknown>[]; rowCount: number }> {
  const runner: (QueryRunner & { [FINAL]?: Final }) | undefined = em.queryRunner;
  if (!runner) throw new Error('finalStatement outside a transaction');
  const final = runner[FINAL];
  if (final) {
    const result = await final(sql, params);
    return { rows: result.rows as Record<string, unknown>[], rowCount: result.rowCount ?? 0 };
  }
  const raw = (await runner.query(sql, params, true)) as {
    records: Record<string, unknown>[];
    affected?: number;
  };
  return { rows: raw.records, rowCount: raw.affected ?? raw.records.length };
}

/**
 * A statement's rows, sent with the transaction's COMMIT when `final` says it is the transaction's last
 * (finalStatement), else as a plain statement: for functions whose callers know whether anything follows.
 */
export async function statementRows<R>(
  em: EntityManager,
  sql: string,
  params: unknown[],
  final?: boolean,
): Promise<R[]> {
  if (final) return (await finalStatement(em, sql, params)).rows as R[];
  return em.query<R[]>(sql, params);
}
