import type { EntityManager } from 'typeorm';
import { connectionDefaultRole } from '../connections/connections.service.js';
import { User, type UserStatus } from './user.entity.js';

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

/** A user's groups (`userIdExpr`: a placeholder or a column of the composing statement), as a json array. */
function roleGroupsSql(userIdExpr: string): string {
  return `(SELECT coalesce(json_agg(json_build_object('id', g.id, 'displayName', g.display_name,
                      'externalId', g.external_id, 'source', g.source) ORDER BY g.display_name, g.id), '[]'::json)
               FROM group_members gm
               JOIN groups g ON g.tenant_id = gm.tenant_id AND g.id = gm.group_id
              WHERE gm.user_id = ${userIdExpr})`;
}

/** The tenant's mappings (RLS scopes them), as a json array. */
const ROLE_RULES_SQL = `(SELECT coalesce(json_agg(json_build_object('id', rm.id, 'groupAttribute', rm.group_attribute,
                      'groupValue', rm.group_value, 'role', rm.role)), '[]'::json)
               FROM role_mappings rm)`;

/** What the rule reads for a user, in one round trip: their groups and the tenant's mappings. */
export async function roleInputs(
  em: EntityManager,
  userId: string,
): Promise<{ groups: RoleGroup[]; rules: RoleRule[] }> {
  const [row] = await em.query<{ groups: RoleGroup[]; rules: RoleRule[] }[]>(
    `SELECT ${roleGroupsSql('$1')} AS groups, ${ROLE_RULES_SQL} AS rules`,
    [userId],
  );
  return { groups: row?.groups ?? [], rules: row?.rules ?? [] };
}

/**
 * What a token carries about a person — their record and what their roles are computed from — as the
 * select list of a statement another folder composes (issue 13: the token endpoint reads the live grant,
 * the person and the role inputs in one round trip). `fallbackRoleSql` is the SQL of the fallback role
 * (connections.service.ts connectionDefaultRoleSql); the columns are read by personWithRolesFromRow.
 */
export function personWithRoleInputsSql(userIdExpr: string, fallbackRoleSql: string): string {
  return `(SELECT to_jsonb(u) FROM users u WHERE u.id = ${userIdExpr}) AS person,
          ${roleGroupsSql(userIdExpr)} AS role_groups, ${ROLE_RULES_SQL} AS role_rules,
          ${fallbackRoleSql} AS fallback_role`;
}

export interface PersonWithRoleInputsRow {
  person: Record<string, unknown> | null;
  role_groups: RoleGroup[] | null;
  role_rules: RoleRule[] | null;
  fallback_role: string | null;
}

/** The person (any status; null when the row is gone) and their roles now, from personWithRoleInputsSql's columns. */
export function personWithRolesFromRow(
  em: EntityManager,
  row: PersonWithRoleInputsRow,
): { user: User; roles: string[] } | null {
  const p = row.person;
  if (!p) return null;
  // to_jsonb writes timestamps as text; the other columns keep their JSON types.
  const user = em.create(User, {
    tenantId: p.tenant_id as string,
    id: p.id as string,
    userName: p.user_name as string,
    email: p.email as string | null,
    emailVerified: p.email_verified as boolean,
    givenName: p.given_name as string | null,
    familyName: p.family_name as string | null,
    displayName: p.display_name as string | null,
    externalId: p.external_id as string | null,
    status: p.status as UserStatus,
    attributes: p.attributes as Record<string, unknown>,
    version: p.version as number,
    createdAt: new Date(p.created_at as string),
    updatedAt: new Date(p.updated_at as string),
  });
  return { user, roles: rolesFromGroups(row.role_groups ?? [], row.role_rules ?? [], row.fallback_role) };
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
