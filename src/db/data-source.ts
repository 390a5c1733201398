import 'reflect-metadata';
import { DataSource, type MixedList } from 'typeorm';
import { MIGRATIONS } from '../../migrations/index.js';

export const MIGRATIONS_TABLE = 'gatehouse_migrations';

export interface DataSourceOptions {
  url: string;
  // eslint-disable-next-line @typescript-eslint/no-unsafe-function-type
  entities: MixedList<Function>;
  poolSize?: number;
  applicationName?: string;
}

/** A TypeORM data source; schema changes only through migrations/. */
export function createDataSource(options: DataSourceOptions): DataSource {
  return new DataSource({
    type: 'postgres',
    url: options.url,
    entities: options.entities,
    migrations: MIGRATIONS,
    migrationsTableName: MIGRATIONS_TABLE,
    migrationsTransactionMode: 'each',
    synchronize: false,
    logging: false,
    poolSize: options.poolSize ?? 10,
    // A bounded wait for a connection (docs/operations.md, "Database outages"): while PostgreSQL
    // is unreachable a request fails fast into a 503 instead of queueing forever.
    connectTimeoutMS: 5_000,
    applicationName: options.applicationName ?? 'gatehouse',
    // node-postgres writes a statement without waiting for the previous answer (db/pipelined-transaction.ts).
    extra: { pipeline: true },
  });
}

/** Applies pending migrations as the owner role; returns the names applied. */
export async function runMigrations(ownerUrl: string): Promise<string[]> {
  const ds = createDataSource({
    url: ownerUrl,
    entities: [],
    poolSize: 1,
    applicationName: 'gatehouse-migrate',
  });
  await ds.initialize();
  try {
    const applied = await ds.runMigrations({ transaction: 'each' });
    return applied.map((m) => m.name);
  } finally {
    await ds.destroy();
  }
}

/** Migration names the code knows, in order. */
export function knownMigrationNames(): string[] {
  return MIGRATIONS.map((m) => m.name);
}
