import type { EntityManager } from 'typeorm';
import { connectionDefaultRole } from '../connections/connections.service.js';

/**
 * Which role? (docs/architecture.md: the four questions.) The one home of the
 * answer: the mapping rule (group → role), the fallback to the default role of
 * the connection a person signed in through, and the role name the admin API
 * grants tenant admins for.
 */

/** The role that makes a person an admin of their own tenant on /admin/v1. */
export const TENANT_ADMIN_ROLE = 'admin';

/**
 * A user's roles: every role mapped from a group they belong to (matched by
 * display name, case-insensitively, or by external id); the fallback role
 * when none maps. Called inside withTenant, so only this tenant's rows count.
 */
export async function rolesForUser(
  em: EntityManager,
  userId: string,
  fallbackRole: string | null,
): Promise<string[]> {
  const rows = await em.query<{ role: string }[]>(
    `SELECT DISTINCT rm.role
       FROM group_members gm
       JOIN groups g ON g.tenant_id = gm.tenant_id AND g.id = gm.group_id
       JOIN role_mappings rm ON rm.tenant_id = g.tenant_id
        AND ((rm.group_attribute = 'display_name' AND lower(rm.group_value) = lower(g.display_name))
          OR (rm.group_attribute = 'external_id' AND rm.group_value = g.external_id))
      WHERE gm.user_id = $1
      ORDER BY rm.role`,
    [userId],
  );
  if (rows.length > 0) return rows.map((r) => r.role);
  return fallbackRole ? [fallbackRole] : [];
}

/**
 * The roles of a person signed in through `connectionId` (null: no connection,
 * as for sessions made without an IdP): rolesForUser with that connection's
 * default role as the fallback.
 */
export async function rolesForLogin(
  em: EntityManager,
  userId: string,
  connectionId: string | null,
): Promise<string[]> {
  const defaultRole = connectionId ? await connectionDefaultRole(em, connectionId) : null;
  return rolesForUser(em, userId, defaultRole);
}
