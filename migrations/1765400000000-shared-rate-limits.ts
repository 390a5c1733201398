import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * rate_limit_counters: the hit counters every node's rate limiters share
 * (issue 11, "Limits hold across nodes"; src/http/rate-limit-store.ts).
 *
 * - A platform table (no tenant_id): keys are source addresses, client ids and
 *   tenant ids, stored only as SHA-256 digests (`key`), so the table holds no
 *   raw address. `limiter` names the limit the row counts for.
 * - One row per (limiter, key) and fixed window: `hits` since the window began,
 *   `reset_at` when it ends. An increment is one INSERT … ON CONFLICT DO UPDATE.
 * - UNLOGGED: counters are worth less than the WAL write and fsync a logged
 *   table would cost on every counted request (the rows of one busy address or
 *   tenant are updated by every request, so a commit waiting for fsync would
 *   serialise them). After a crash PostgreSQL empties an unlogged table and a
 *   standby does not have its rows: limits then start from zero, which is the
 *   most a counter can lose.
 * - fillfactor 70 leaves room on each page so that `hits` updates stay
 *   heap-only (HOT) and do not touch the indexes.
 */
export class SharedRateLimits1765400000000 implements MigrationInterface {
  name = 'SharedRateLimits1765400000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE UNLOGGED TABLE rate_limit_counters (
        limiter text NOT NULL CONSTRAINT rate_limit_counters_limiter_check CHECK (limiter ~ '^[a-z][a-z0-9_-]{0,62}$'),
        key text NOT NULL CONSTRAINT rate_limit_counters_key_check CHECK (key ~ '^[0-9a-f]{64}$'),
        hits integer NOT NULL CONSTRAINT rate_limit_counters_hits_check CHECK (hits >= 0),
        reset_at timestamptz NOT NULL,
        PRIMARY KEY (limiter, key)
      ) WITH (fillfactor = 70)`);
    // The sweep of ended windows (rate-limit-store.ts sweepEndedWindows).
    await q.query(`CREATE INDEX rate_limit_counters_reset_at_idx ON rate_limit_counters (reset_at)`);
    await q.query(`GRANT SELECT, INSERT, UPDATE, DELETE ON rate_limit_counters TO gatehouse_app`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE IF EXISTS rate_limit_counters`);
  }
}
