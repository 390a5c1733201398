/**
 * "Is this tenant live?" — one home (docs/architecture.md, "is it still
 * true?"): its people can sign in and its sessions, tokens and SCIM
 * credentials count. Only `active` is live; a suspended or deleted tenant's
 * credentials stop working at once. In db/ because every layer asks it,
 * sessions/ (liveGrant) included, and tenants/ sits above sessions/ (it
 * revokes sessions when a tenant is suspended or deleted).
 */

/** Whether a tenant with this status (null: no such tenant) is live. */
export function isLiveTenantStatus(status: string | null | undefined): boolean {
  return status === 'active';
}

/**
 * The same rule as a SQL condition on a `tenants` row aliased `alias`, for a
 * query that joins the tenant in (one statement instead of two). False, not
 * NULL, when the join found no tenant.
 */
export function liveTenantSql(alias: string): string {
  if (!/^[a-z_][a-z0-9_]*$/.test(alias)) throw new Error(`not a SQL alias: ${alias}`);
  return `COALESCE(${alias}.status = 'active', false)`;
}
