import { randomBytes } from 'node:crypto';
import path from 'node:path';
import type { Config } from '../config/config.js';
import { readOrCreateSecret } from '../config/secrets.js';
import { enableAppLogin, provisionOwner } from './bootstrap.js';
import { createDataSource, runMigrations, type DataSourceOptions } from './data-source.js';
import { Database } from './database.js';
import { startEmbeddedPostgres, type EmbeddedDatabase } from './embedded.js';

export interface DatabaseRuntime {
  db: Database;
  ownerUrl: string;
  appUrl: string;
  embedded: EmbeddedDatabase | undefined;
  migrationsApplied: string[];
  /** Closes the pool, then stops the embedded server if there is one. */
  close(): Promise<void>;
}

const password = () => randomBytes(24).toString('base64url');

/**
 * The database the service runs on. Without DATABASE_URL: an embedded cluster in
 * <dataDir>/postgres with an owner role and database of its own. Migrations run
 * as the owner; the pool connects as the runtime role (no BYPASSRLS).
 * The composition root hands in the entity list (src/entities.ts names every
 * feature folder's entities; db/ stays below them, docs/architecture.md).
 */
export async function openDatabase(
  config: Config,
  entities: DataSourceOptions['entities'],
  log: (message: string) => void,
): Promise<DatabaseRuntime> {
  let embedded: EmbeddedDatabase | undefined;
  let ownerUrl = config.databaseUrl;
  if (!ownerUrl) {
    const superPassword = await readOrCreateSecret(config.dataDir, 'pg-superuser-password', password);
    const ownerPassword = await readOrCreateSecret(config.dataDir, 'db-owner-password', password);
    embedded = await startEmbeddedPostgres({
      dir: path.join(config.dataDir, 'postgres'),
      port: config.embeddedPgPort,
      password: superPassword.value,
      log: (line) => log(line.trim()),
    });
    ownerUrl = await provisionOwner(embedded.superuserUrl, {
      database: 'gatehouse',
      ownerPassword: ownerPassword.value,
    });
  }
  try {
    const migrationsApplied = await runMigrations(ownerUrl);
    const appUrl =
      config.databaseAppUrl ??
      (await enableAppLogin(
        ownerUrl,
        (await readOrCreateSecret(config.dataDir, 'db-app-password', password)).value,
      ));
    const dataSource = createDataSource({ url: appUrl, entities });
    await dataSource.initialize();
    const db = new Database(dataSource);
    return {
      db,
      ownerUrl,
      appUrl,
      embedded,
      migrationsApplied,
      close: async () => {
        await db.close();
        await embedded?.stop();
      },
    };
  } catch (error) {
    await embedded?.stop();
    throw error;
  }
}
