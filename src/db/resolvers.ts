import { type Database, isUuid } from './database.js';

/**
 * The named pre-tenant lookups (docs/architecture.md). Each calls a SECURITY DEFINER
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

/*
 * Set-returning resolvers for background work that must find the tenants with
 * due rows before it can enter each tenant with withTenant. Each returns tenant
 * ids and nothing else.
 */

/** Tenants with back-channel logouts due for delivery. */
export function tenantsWithDueLogouts(db: Database, limit: number): Promise<string[]> {
  return tenantIds(db, 'SELECT logout_outbox_due_tenants($1) AS tenant_id', [limit]);
}

/** Tenants with webhook events due for delivery. */
export function tenantsWithDueWebhooks(db: Database, limit: number): Promise<string[]> {
  return tenantIds(db, 'SELECT webhook_outbox_due_tenants($1) AS tenant_id', [limit]);
}

/** Tenants holding expired sign-in state (codes, refresh tokens, SAML/OIDC state) or old outbox rows. */
export function tenantsWithExpiredRows(
  db: Database,
  cutoff: Date,
  outboxCutoff: Date,
  limit: number,
): Promise<string[]> {
  return tenantIds(db, 'SELECT cleanup_due_tenants($1, $2, $3) AS tenant_id', [cutoff, outboxCutoff, limit]);
}

/** Tenants with live sessions of an app (to revoke them when the app is deleted). */
export function tenantsWithAppSessions(db: Database, appId: string): Promise<string[]> {
  return tenantIds(db, 'SELECT app_session_tenants($1) AS tenant_id', [appId]);
}

async function tenantIds(db: Database, sql: string, params: unknown[]): Promise<string[]> {
  const rows = await db.queryOutsideTenant<{ tenant_id: string }>(sql, params);
  return rows.map((r) => r.tenant_id);
}
