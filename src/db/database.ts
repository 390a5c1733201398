import pg from 'pg';
import type { DataSource, EntityManager } from 'typeorm';
import { knownMigrationNames, MIGRATIONS_TABLE } from './data-source.js';
import { pipelinedTransaction } from './pipelined-transaction.js';
import { runInTenantContext } from './tenant-context.js';
import { signals, type TransactionKind } from '../observability/signals.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function isUuid(value: string): boolean {
  return UUID.test(value);
}

/** The tenant under which platform-level audit events (apps, keys) are chained. */
export const PLATFORM_TENANT_ID = '00000000-0000-0000-0000-000000000000';

/** The SECURITY DEFINER resolvers withResolvedTenant may enter a tenant by. */
const TENANT_RESOLVERS = {
  connection: 'resolve_tenant_by_connection',
  session: 'resolve_tenant_by_session',
} as const;
export type TenantResolver = keyof typeof TENANT_RESOLVERS;

export class InvalidTenantIdError extends Error {
  readonly code = 'invalid_tenant_id';
}

/**
 * The runtime's handle on PostgreSQL, connected as `gatehouse_app` (no
 * BYPASSRLS, owns nothing). Tenant-owned tables are reached only through
 * withTenant(); anywhere else row-level security shows them empty.
 */
interface PoolCounters {
  totalCount: number;
  idleCount: number;
  waitingCount: number;
}

/** Transaction latency for the query-latency histogram (observability/signals.ts). */
async function timed<T>(kind: TransactionKind, fn: () => Promise<T>): Promise<T> {
  const started = performance.now();
  try {
    return await fn();
  } finally {
    signals.transactionEnded(kind, (performance.now() - started) / 1000);
  }
}

export class Database {
  constructor(private readonly dataSource: DataSource) {}

  /**
   * Runs fn in a transaction with `app.tenant_id` set for that transaction only
   * (SET LOCAL semantics), so the setting can never leak to the next user of the
   * pooled connection. Whatever fn throws rolls the transaction back.
   */
  async withTenant<T>(tenantId: string, fn: (em: EntityManager) => Promise<T>): Promise<T> {
    if (!UUID.test(tenantId)) throw new InvalidTenantIdError(`not a tenant id: ${tenantId}`);
    const started = performance.now();
    try {
      // Log lines written during this tenant's work carry its id (db/tenant-context.ts).
      // BEGIN and the tenant setting are one message, pipelined with the first statement
      // (db/pipelined-transaction.ts). The id is a validated UUID, so writing it into the statement is safe.
      return await runInTenantContext(tenantId, () =>
        pipelinedTransaction(
          this.dataSource,
          `START TRANSACTION; SELECT set_config('app.tenant_id', '${tenantId}', true)`,
          fn,
        ),
      );
    } finally {
      signals.transactionEnded('tenant', (performance.now() - started) / 1000);
    }
  }

  /**
   * One transaction that starts on platform tables and enters a tenant once a
   * pre-tenant resolver (db/resolvers.ts) names it from a key known only inside
   * it (a connection id from an ACS URL, the session of a claimed request):
   * the lookup and the tenant setting are one statement, not a round trip and
   * a transaction of their own (issue 9; docs/architecture.md §4). enterTenant
   * answers null, and tenant tables stay empty, when the resolver names no
   * tenant; it may be called once, so one transaction never spans two tenants.
   */
  withResolvedTenant<T>(
    fn: (
      em: EntityManager,
      enterTenant: (resolver: TenantResolver, key: string) => Promise<string | null>,
    ) => Promise<T>,
  ): Promise<T> {
    return timed('resolved', () =>
      pipelinedTransaction(this.dataSource, 'START TRANSACTION', (em) => {
        let entered = false;
        const enterTenant = async (resolver: TenantResolver, key: string): Promise<string | null> => {
          if (entered) throw new Error('a transaction enters one tenant only');
          entered = true;
          if (!UUID.test(key)) return null;
          // The resolver name comes from the closed TenantResolver set, never from input.
          const rows = await em.query<{ tenant_id: string }[]>(
            `SELECT set_config('app.tenant_id', COALESCE(${TENANT_RESOLVERS[resolver]}($1)::text, ''), true) AS tenant_id`,
            [key],
          );
          const tenantId = rows[0]?.tenant_id ?? '';
          return tenantId === '' ? null : tenantId;
        };
        return fn(em, enterTenant);
      }),
    );
  }

  /** A transaction on platform tables (tenants, apps, signing keys); tenant tables read empty. */
  withPlatform<T>(fn: (em: EntityManager) => Promise<T>): Promise<T> {
    return timed('platform', () => pipelinedTransaction(this.dataSource, 'START TRANSACTION', fn));
  }

  /**
   * A read of platform tables that needs no transaction (one row, one statement): one round trip
   * instead of BEGIN, the read and COMMIT (issue 13). Tenant tables read empty here, as in withPlatform.
   */
  readPlatform<T>(fn: (em: EntityManager) => Promise<T>): Promise<T> {
    return fn(this.dataSource.manager);
  }

  /** The runtime pool's connections (pg's Pool counters), for the pool gauges. */
  poolStats(): { total: number; idle: number; waiting: number } | null {
    const pool = (this.dataSource.driver as unknown as { master?: Partial<PoolCounters> }).master;
    if (typeof pool?.totalCount !== 'number') return null;
    return { total: pool.totalCount, idle: pool.idleCount ?? 0, waiting: pool.waitingCount ?? 0 };
  }

  /** A single statement outside any tenant: for the resolver functions (db/resolvers.ts). */
  async queryOutsideTenant<T>(sql: string, params: unknown[]): Promise<T[]> {
    return this.dataSource.query<T[]>(sql, params);
  }

  async ping(): Promise<void> {
    await this.dataSource.query('SELECT 1');
  }

  /**
   * Can this node open a NEW connection as its runtime role (readiness)? The
   * pool's warm connections keep working after the role's password changed
   * or the server stopped accepting logins; only a fresh login tells. One
   * short-lived connection per probe, bounded by a 5 s connect timeout.
   */
  async canConnect(): Promise<void> {
    const url = (this.dataSource.options as { url?: string }).url;
    if (!url) return this.ping();
    const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5_000 });
    client.on('error', () => undefined);
    try {
      await client.connect();
      await client.query('SELECT 1');
    } finally {
      await client.end().catch(() => undefined);
    }
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
