import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  APP_ROLE,
  withBootstrapLock,
  withCredentials,
  enableAppLogin,
  provisionOwner,
} from '../../src/db/bootstrap.js';
import { createDataSource, runMigrations } from '../../src/db/data-source.js';
import { Database } from '../../src/db/database.js';
import { startEmbeddedPostgres } from '../../src/db/embedded.js';
import { ENTITIES } from '../../src/entities.js';

export interface BenchDatabase {
  db: Database;
  ownerUrl: string;
  appUrl: string;
  /** The server's superuser URL: a peer (bench/peers/polis) makes its own database with it. */
  adminUrl: string;
  /** Another pool on the same database, as a second service node would have. */
  openAnother(): Promise<Database>;
  close(): Promise<void>;
}

/**
 * A database for one benchmark scenario: DATABASE_URL's server (a superuser URL)
 * when given, else an embedded cluster of its own, with the same roles and
 * migrations as the service.
 */
export async function openBenchDatabase(name: string): Promise<BenchDatabase> {
  let adminUrl = process.env.DATABASE_URL;
  let stopEmbedded: (() => Promise<void>) | undefined;
  let dir: string | undefined;
  if (!adminUrl) {
    dir = await mkdtemp(path.join(tmpdir(), 'gatehouse-bench-'));
    const embedded = await startEmbeddedPostgres({
      dir: path.join(dir, 'data'),
      port: 20000 + Math.floor(Math.random() * 20000),
      password: randomBytes(16).toString('hex'),
      settings: { fsync: 'off', synchronous_commit: 'off', max_connections: '200' },
    });
    adminUrl = embedded.superuserUrl;
    stopEmbedded = () => embedded.stop();
  }
  const ownerUrl = await provisionOwner(adminUrl, {
    database: `gatehouse_bench_${name}`,
    ownerPassword: randomBytes(16).toString('hex'),
  });
  await runMigrations(ownerUrl);
  const appPassword = randomBytes(16).toString('hex');
  await withBootstrapLock(ownerUrl, (owner) => enableAppLogin(owner, appPassword));
  const appUrl = withCredentials(ownerUrl, APP_ROLE, appPassword);
  const pools: Database[] = [];
  const open = async () => {
    const ds = createDataSource({ url: appUrl, entities: ENTITIES, poolSize: 20 });
    await ds.initialize();
    const db = new Database(ds);
    pools.push(db);
    return db;
  };
  const db = await open();
  return {
    db,
    ownerUrl,
    appUrl,
    adminUrl,
    openAnother: open,
    close: async () => {
      for (const p of pools) await p.close();
      await stopEmbedded?.();
      if (dir) await rm(dir, { recursive: true, force: true });
    },
  };
}
