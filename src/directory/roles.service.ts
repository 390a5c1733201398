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

/** A group as role mappings match it. */
export interface RoleGroup {
  id: string;
  displayName: string;
  externalId: string | null;
  /** Where the membership came from: SCIM, or the groups an IdP asserted at sign-in. */
  source: 'scim' | 'idp';
}

/** A group → role mapping as the rule reads it (role_mappings). */
export interface RoleRule {
  /** The mapping's id (absent for a mapping only proposed). */
  id?: string;
  groupAttribute: 'display_name' | 'external_id';
  groupValue: string;
  role: string;
}

/**
 * The mapping rule itself, pure, so the portal's preview (issue 15) runs the
 * very rule sign-in runs on mappings that are only proposed: every role mapped
 * from one of the groups (display name compared case-insensitively, external
 * id exactly), distinct and sorted; the fallback role when none maps.
 */
export function rolesFromGroups(
  groups: readonly Pick<RoleGroup, 'displayName' | 'externalId'>[],
  rules: readonly RoleRule[],
  fallbackRole: string | null,
): string[] {
  const names = new Set(groups.map((g) => g.displayName.toLowerCase()));
  const externalIds = new Set(groups.flatMap((g) => (g.externalId === null ? [] : [g.externalId])));
  const roles = new Set<string>();
  for (const r of rules) {
    const matches =
      r.groupAttribute === 'display_name'
        ? names.has(r.groupValue.toLowerCase())
        : externalIds.has(r.groupValue);
    if (matches) roles.add(r.role);
  }
  if (roles.size > 0) return [...roles].sort();
  return fallbackRole ? [fallbackRole] : [];
}

/** What the rule reads for a user, in one round trip: their groups and the tenant's mappings. */
export async function roleInputs(
  em: EntityManager,
  userId: string,
): Promise<{ groups: RoleGroup[]; rules: RoleRule[] }> {
  const [row] = await em.query<{ groups: RoleGroup[]; rules: RoleRule[] }[]>(
    `SELECT (SELECT coalesce(json_agg(json_build_object('id', g.id, 'displayName', g.display_name,
                      'externalId', g.external_id, 'source', g.source) ORDER BY g.display_name, g.id), '[]'::json)
               FROM group_members gm
               JOIN groups g ON g.tenant_id = gm.tenant_id AND g.id = gm.group_id
              WHERE gm.user_id = $1) AS groups,
            (SELECT coalesce(json_agg(json_build_object('id', rm.id, 'groupAttribute', rm.group_attribute,
                      'groupValue', rm.group_value, 'role', rm.role)), '[]'::json)
               FROM role_mappings rm) AS rules`,
    [userId],
  );
  return { groups: row?.groups ?? [], rules: row?.rules ?? [] };
}

/**
 * A user's roles (rolesFromGroups over their groups and the tenant's
 * mappings); the fallback role when none maps. Called inside withTenant, so
 * only this tenant's rows count.
 */
export async function rolesForUser(
  em: EntityManager,
  userId: string,
  fallbackRole: string | null,
): Promise<string[]> {
  const { groups, rules } = await roleInputs(em, userId);
  return rolesFromGroups(groups, rules, fallbackRole);
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
