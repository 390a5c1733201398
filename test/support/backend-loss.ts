import pg from 'pg';
import type { TestDatabase } from './database.js';
import { testEnv } from './test-env.js';

/**
 * Connections lost under load, for real: as a superuser, ends the runtime role's busy backends in the
 * test's database every 15 ms for `ms` (the node's LISTEN connection is spared, so verified credentials
 * stay cached and requests get past authentication). Answers how many backends it ended.
 */
export async function endBusyBackends(t: TestDatabase, ms: number): Promise<number> {
  const admin = new pg.Client({ connectionString: testEnv('adminUrl') });
  await admin.connect();
  try {
    let ended = 0;
    const until = Date.now() + ms;
    while (Date.now() < until) {
      const { rows } = await admin.query(
        `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
          WHERE datname = $1 AND usename = 'gatehouse_app' AND application_name <> 'gatehouse-listen'
            AND state <> 'idle'`,
        [t.name],
      );
      ended += rows.length;
      await new Promise((resolve) => setTimeout(resolve, 15));
    }
    return ended;
  } finally {
    await admin.end();
  }
}
