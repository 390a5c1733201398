import { type Database, isUuid } from './database.js';

/**
 * The named pre-tenant lookups (DESIGN.md §2). Each calls a SECURITY DEFINER
 * function owned by `gatehouse_resolver` and returns a tenant id and nothing
 * else; everything after runs inside withTenant().
 */

/** email domain -> tenant, for verified domains of active tenants only. */
export async function resolveTenantByEmailDomain(db: Database, domain: string): Promise<string | null> {
  return single(db, 'SELECT resolve_tenant_by_domain($1) AS tenant_id', [domain]);
}

/** connection id (from an ACS or callback URL) -> tenant. */
export async function resolveTenantByConnection(db: Database, connectionId: string): Promise<string | null> {
  if (!isUuid(connectionId)) return null;
  return single(db, 'SELECT resolve_tenant_by_connection($1) AS tenant_id', [connectionId]);
}

/** session id (from a token or refresh token) -> tenant. */
export async function resolveTenantBySession(db: Database, sessionId: string): Promise<string | null> {
  if (!isUuid(sessionId)) return null;
  return single(db, 'SELECT resolve_tenant_by_session($1) AS tenant_id', [sessionId]);
}

/** Whether another tenant holds this domain verified (domains are verified by one tenant only). */
export async function isDomainVerifiedByOtherTenant(
  db: Database,
  domain: string,
  tenantId: string,
): Promise<boolean> {
  const rows = await db.queryOutsideTenant<{ taken: boolean }>(
    'SELECT domain_verified_by_other_tenant($1, $2) AS taken',
    [domain, tenantId],
  );
  return rows[0]?.taken === true;
}

async function single(db: Database, sql: string, params: unknown[]): Promise<string | null> {
  const rows = await db.queryOutsideTenant<{ tenant_id: string | null }>(sql, params);
  return rows[0]?.tenant_id ?? null;
}
