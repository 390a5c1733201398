import { randomUUID } from 'node:crypto';
import type { EntityManager } from 'typeorm';
import { recordAudit, type AuditContext } from '../audit/audit.service.js';
import type { Database } from '../db/database.js';
import { ConflictError, NotFoundError } from '../errors.js';
import { isUniqueViolation } from '../db/pg-errors.js';
import { requireLiveTenant } from '../tenants/tenant-guard.js';
import { RoleMapping } from './role-mapping.entity.js';

/** Role names the main app receives in the `roles` claim. */
export const ROLE_NAME = /^[a-z][a-z0-9_:.-]{0,63}$/;

/** A group, named by its display name (matched case-insensitively) or by its external id (exactly). */
export type GroupRef = { display_name: string } | { external_id: string };

export interface RoleMappingView {
  id: string;
  group: GroupRef;
  role: string;
  created_at: string;
}

export function roleMappingView(m: RoleMapping): RoleMappingView {
  return {
    id: m.id,
    group:
      m.groupAttribute === 'display_name' ? { display_name: m.groupValue } : { external_id: m.groupValue },
    role: m.role,
    created_at: m.createdAt.toISOString(),
  };
}

function groupOf(ref: GroupRef): { groupAttribute: 'display_name' | 'external_id'; groupValue: string } {
  return 'display_name' in ref
    ? { groupAttribute: 'display_name', groupValue: ref.display_name }
    : { groupAttribute: 'external_id', groupValue: ref.external_id };
}

const duplicate = () => new ConflictError('This group is already mapped to this role');

/** Same group (display names compare case-insensitively, as rolesForUser matches them) and same role. */
async function exists(em: EntityManager, m: ReturnType<typeof groupOf> & { role: string }): Promise<boolean> {
  const rows = await em.query<unknown[]>(
    `SELECT 1 FROM role_mappings
      WHERE group_attribute = $1 AND role = $3
        AND (CASE WHEN $1 = 'display_name' THEN lower(group_value) = lower($2) ELSE group_value = $2 END)`,
    [m.groupAttribute, m.groupValue, m.role],
  );
  return rows.length > 0;
}

export async function createRoleMapping(
  db: Database,
  tenantId: string,
  input: { group: GroupRef; role: string },
  ctx: AuditContext,
): Promise<RoleMappingView> {
  const group = groupOf(input.group);
  try {
    return await db.withTenant(tenantId, async (em) => {
      await requireLiveTenant(em, tenantId);
      if (await exists(em, { ...group, role: input.role })) throw duplicate();
      const mapping = em.create(RoleMapping, {
        tenantId,
        id: randomUUID(),
        ...group,
        role: input.role,
        createdAt: new Date(),
      });
      await em.insert(RoleMapping, mapping);
      const view = roleMappingView(mapping);
      await recordAudit(em, tenantId, {
        ...ctx,
        action: 'role_mapping.created',
        target: { type: 'role_mapping', id: mapping.id },
        after: { group: view.group, role: view.role },
      });
      return view;
    });
  } catch (error) {
    if (isUniqueViolation(error)) throw duplicate();
    throw error;
  }
}

export async function listRoleMappings(
  db: Database,
  tenantId: string,
  page: { limit: number; offset: number },
): Promise<{ data: RoleMappingView[]; total: number }> {
  return db.withTenant(tenantId, async (em) => {
    await requireLiveTenant(em, tenantId);
    const [rows, total] = await em.findAndCount(RoleMapping, {
      order: { createdAt: 'ASC', id: 'ASC' },
      take: page.limit,
      skip: page.offset,
    });
    return { data: rows.map(roleMappingView), total };
  });
}

export async function getRoleMapping(
  db: Database,
  tenantId: string,
  mappingId: string,
): Promise<RoleMappingView> {
  return db.withTenant(tenantId, async (em) => {
    await requireLiveTenant(em, tenantId);
    const mapping = await em.findOneBy(RoleMapping, { id: mappingId });
    if (!mapping) throw new NotFoundError('Role mapping');
    return roleMappingView(mapping);
  });
}

export async function deleteRoleMapping(
  db: Database,
  tenantId: string,
  mappingId: string,
  ctx: AuditContext,
): Promise<void> {
  await db.withTenant(tenantId, async (em) => {
    await requireLiveTenant(em, tenantId);
    const mapping = await em.findOneBy(RoleMapping, { id: mappingId });
    if (!mapping) throw new NotFoundError('Role mapping');
    await em.delete(RoleMapping, { tenantId, id: mappingId });
    const view = roleMappingView(mapping);
    await recordAudit(em, tenantId, {
      ...ctx,
      action: 'role_mapping.deleted',
      target: { type: 'role_mapping', id: mappingId },
      before: { group: view.group, role: view.role },
    });
  });
}
