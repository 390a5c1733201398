import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { createDataSource } from '../../src/db/data-source.js';
import { Database } from '../../src/db/database.js';
import { ENTITIES } from '../../src/entities.js';
import { TEMPLATE_DATABASE, testEnv } from './test-env.js';

export interface TestDatabase {
  name: string;
  /** Connected as the runtime role, exactly as the service is. */
  db: Database;
  ownerUrl: string;
  appUrl: string;
  /** A statement as the owner (migrations' role): for setup and tamper tests only. */
  asOwner<T = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]>;
  /** A statement as the runtime role on a plain connection, outside withTenant. */
  asApp<T = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]>;
  close(): Promise<void>;
}

function inDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

async function run<T>(url: string, sql: string, params: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(sql, params)).rows as T[];
  } finally {
    await client.end();
  }
}

/** A database of this test file's own, cloned from the migrated template. */
export async function createTestDatabase(): Promise<TestDatabase> {
  const name = `gh_test_${randomBytes(6).toString('hex')}`;
  await run(
    testEnv('adminUrl'),
    `CREATE DATABASE ${name} TEMPLATE ${TEMPLATE_DATABASE} OWNER gatehouse_owner`,
  );
  const ownerUrl = inDatabase(testEnv('ownerUrl'), name);
  const appUrl = inDatabase(testEnv('appUrl'), name);
  const dataSource = createDataSource({ url: appUrl, entities: ENTITIES, poolSize: 5 });
  await dataSource.initialize();
  const db = new Database(dataSource);
  return {
    name,
    db,
    ownerUrl,
    appUrl,
    asOwner: (sql, params) => run(ownerUrl, sql, params),
    asApp: (sql, params) => run(appUrl, sql, params),
    close: async () => {
      await db.close();
      await run(testEnv('adminUrl'), `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    },
  };
}
