import type { EntityManager } from 'typeorm';
import { NotFoundError } from '../errors.js';

/**
 * "May this tenant still be configured?" (`requireLiveTenant`): it exists and
 * is not deleted, so its operator can still configure it while it is
 * suspended. "Is this tenant live?" — can its people sign in, do its sessions,
 * tokens and SCIM credentials count — is answered in db/tenant-liveness.ts,
 * the lowest room, because sessions/ (liveGrant) asks it and tenants/ calls
 * sessions/ to revoke on suspension (docs/architecture.md).
 */
/**
 * Inside a tenant's transaction: the tenant exists and is not deleted (else
 * 404, as for any resource that does not exist). Suspended tenants can still be
 * configured by their operator.
 */
export async function requireLiveTenant(
  em: EntityManager,
  tenantId: string,
  options: { allowDeleted?: boolean } = {},
): Promise<void> {
  const rows = await em.query<{ status: string }[]>('SELECT status FROM tenants WHERE id = $1', [tenantId]);
  const status = rows[0]?.status;
  if (!status || ((status === 'deleted' || status === 'purged') && !options.allowDeleted))
    throw new NotFoundError('Tenant');
}
