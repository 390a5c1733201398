import type { DataSource, EntityManager } from 'typeorm';
import { knownMigrationNames, MIGRATIONS_TABLE } from './data-source.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function isUuid(value: string): boolean {
  return UUID.test(value);
}

/** The tenant under which platform-level audit events (apps, keys) are chained. */
export const PLATFORM_TENANT_ID = '00000000-0000-0000-0000-000000000000';

export class InvalidTenantIdError extends Error {
  readonly code = 'invalid_tenant_id';
}

/**
 * The runtime's handle on PostgreSQL, connected as `gatehouse_app` (no
 * BYPASSRLS, owns nothing). Tenant-owned tables are reached only through
 * withTenant(); anywhere else row-level security shows them empty.
 */
export class Database {
  constructor(private readonly dataSource: DataSource) {}

  /**
   * Runs fn in a transaction with `app.tenant_id` set for that transaction only
   * (SET LOCAL semantics), so the setting can never leak to the next user of the
   * pooled connection. Whatever fn throws rolls the transaction back.
   */
  async withTenant<T>(tenantId: string, fn: (em: EntityManager) => Promise<T>): Promise<T> {
    if (!UUID.test(tenantId)) throw new InvalidTenantIdError(`not a tenant id: ${tenantId}`);
    const runner = this.dataSource.createQueryRunner();
    // One round trip for BEGIN and the tenant setting, on the hottest path of every
    // request. The id is a validated UUID, so writing it into the statement is safe.
    const query = runner.query.bind(runner) as (
      sql: string,
      params?: unknown[],
      structured?: boolean,
    ) => Promise<unknown>;
    let tenantSet = false;
    runner.query = ((sql: string, params?: unknown[], structured?: boolean) => {
      if (!tenantSet && sql === 'START TRANSACTION') {
        tenantSet = true;
        sql = `START TRANSACTION; SELECT set_config('app.tenant_id', '${tenantId}', true)`;
      }
      return query(sql, params, structured);
    }) as typeof runner.query;
    try {
      return await runner.manager.transaction(async (em) => {
        // Should TypeORM ever begin differently, set the tenant the plain way.
        if (!tenantSet) await em.query(`SELECT set_config('app.tenant_id', $1, true)`, [tenantId]);
        return fn(em);
      });
    } finally {
      await runner.release();
    }
  }

  /** A transaction on platform tables (tenants, apps, signing keys); tenant tables read empty. */
  withPlatform<T>(fn: (em: EntityManager) => Promise<T>): Promise<T> {
    return this.dataSource.transaction(fn);
  }

  /** A single statement outside any tenant: for the resolver functions (db/resolvers.ts). */
  async queryOutsideTenant<T>(sql: string, params: unknown[]): Promise<T[]> {
    return this.dataSource.query<T[]>(sql, params);
  }

  async ping(): Promise<void> {
    await this.dataSource.query('SELECT 1');
  }

  /** Known migrations not yet applied to this database (empty when current). */
  async pendingMigrations(): Promise<string[]> {
    const rows = await this.dataSource.query<{ name: string }[]>(`SELECT name FROM ${MIGRATIONS_TABLE}`);
    const applied = new Set(rows.map((r) => r.name));
    return knownMigrationNames().filter((name) => !applied.has(name));
  }

  async close(): Promise<void> {
    if (this.dataSource.isInitialized) await this.dataSource.destroy();
  }
}
