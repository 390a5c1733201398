// Jest loads global setup outside its module transform, so this file is plain
// ESM and uses the compiled service code (`npm test` builds first).
import { randomBytes } from 'node:crypto';
import { mkdtemp } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import {
  enableAppLogin,
  withBootstrapLock,
  provisionOwner,
  withCredentials,
} from '../../dist/src/db/bootstrap.js';
import { runMigrations } from '../../dist/src/db/data-source.js';
import { startEmbeddedPostgres } from '../../dist/src/db/embedded.js';
import { TEMPLATE_DATABASE, TEST_ENV } from './test-env.js';

/** @returns {Promise<number>} */
function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

/**
 * One PostgreSQL for the run: DATABASE_URL (a superuser, or a role with
 * CREATEDB and CREATEROLE) when given, else an embedded cluster. A migrated
 * template database is made once; each test file clones it (test/support/database.ts).
 */
export default async function globalSetup() {
  let adminUrl = process.env.DATABASE_URL;
  if (!adminUrl) {
    const dir = await mkdtemp(path.join(tmpdir(), 'gatehouse-test-pg-'));
    const embedded = await startEmbeddedPostgres({
      dir: path.join(dir, 'data'),
      port: await freePort(),
      password: randomBytes(16).toString('hex'),
      // A throwaway cluster: durability buys nothing here.
      settings: { fsync: 'off', synchronous_commit: 'off', full_page_writes: 'off', max_connections: '300' },
    });
    globalThis.__gatehouseEmbedded = embedded;
    adminUrl = embedded.superuserUrl;
  }
  const ownerPassword = randomBytes(16).toString('hex');
  const appPassword = randomBytes(16).toString('hex');

  // A fresh template on every run, so a changed migration is always applied.
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS ${TEMPLATE_DATABASE} WITH (FORCE)`);
  await admin.end();

  const ownerUrl = await provisionOwner(adminUrl, { database: TEMPLATE_DATABASE, ownerPassword });
  await runMigrations(ownerUrl);
  await withBootstrapLock(ownerUrl, (owner) => enableAppLogin(owner, appPassword));

  process.env[TEST_ENV.adminUrl] = adminUrl;
  process.env[TEST_ENV.ownerUrl] = ownerUrl;
  process.env[TEST_ENV.appUrl] = withCredentials(ownerUrl, 'gatehouse_app', appPassword);
  // Work that holds a pooled connection may not wait for another (src/db/pool-guard.ts): in the whole
  // suite, and in the service processes tests start, such a wait throws instead of risking a deadlock.
  process.env.GATEHOUSE_POOL_GUARD ??= 'throw';
}
