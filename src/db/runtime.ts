import { randomBytes } from 'node:crypto';
import path from 'node:path';
import type { Config } from '../config/config.js';
import type { Secrets } from '../config/secrets.js';
import { readOrCreateSecret } from '../config/secrets.js';
import { APP_ROLE, enableAppLogin, provisionOwner, withBootstrapLock, withCredentials } from './bootstrap.js';
import { createDataSource, runMigrations, type DataSourceOptions } from './data-source.js';
import { Database } from './database.js';
import { joinInstallation } from './installation.js';
import { startEmbeddedPostgres, type EmbeddedDatabase } from './embedded.js';

export interface DatabaseRuntime {
  db: Database;
  ownerUrl: string;
  appUrl: string;
  embedded: EmbeddedDatabase | undefined;
  migrationsApplied: string[];
  /** The installation's secrets as this node holds them (db/installation.ts). */
  secrets: Secrets;
  /** True when this start initialised the database (the first node of an installation). */
  installationCreated: boolean;
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
    const owner = ownerUrl;
    // Once at a time across nodes: migrate, then join (or initialise) the installation.
    const { migrationsApplied, joined } = await withBootstrapLock(owner, async (c) => {
      const applied = await runMigrations(owner);
      return {
        migrationsApplied: applied,
        joined: await joinInstallation(c, config, (appPassword) => enableAppLogin(c, appPassword)),
      };
    });
    const appUrl = config.databaseAppUrl ?? withCredentials(owner, APP_ROLE, joined.appPassword ?? '');
    const dataSource = createDataSource({ url: appUrl, entities });
    await dataSource.initialize();
    const db = new Database(dataSource);
    return {
      db,
      ownerUrl,
      appUrl,
      embedded,
      migrationsApplied,
      secrets: joined.secrets,
      installationCreated: joined.initialised,
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
