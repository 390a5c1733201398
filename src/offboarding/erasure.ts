import type { AuditContext } from '../audit/audit.service.js';
import type { Database } from '../db/database.js';
import { erasePerson, type PersonErasure } from '../directory/person-erasure.js';
import { NotFoundError } from '../errors.js';
import { requireLiveTenant } from '../tenants/tenant-guard.js';

/**
 * Erasing one person on the admin API (issue 12; docs/admin-api.md "Erasing a
 * person"): the same erasure as a SCIM DELETE (directory/person-erasure.ts),
 * in the person's tenant, which must not be deleted. 404 for an unknown,
 * already erased or other tenant's user (RLS: another tenant's id is not
 * there).
 */
export async function eraseUser(
  db: Database,
  tenantId: string,
  userId: string,
  ctx: AuditContext,
): Promise<PersonErasure> {
  return db.withTenant(tenantId, async (em) => {
    await requireLiveTenant(em, tenantId);
    const erased = await erasePerson(em, tenantId, userId, 'erased', ctx);
    if (!erased) throw new NotFoundError('User');
    return erased;
  });
}
