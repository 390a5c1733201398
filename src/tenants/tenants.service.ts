import { randomUUID } from 'node:crypto';
import { Not, type EntityManager } from 'typeorm';
import { recordAudit, type AuditContext } from '../audit/audit.service.js';
import type { Database } from '../db/database.js';
import { isUniqueViolation } from '../db/pg-errors.js';
import { CHANNELS, notifyInTransaction } from '../db/notification-bus.js';
import { revokeSessions } from '../sessions/revoke-sessions.js';
import { ConflictError, NotFoundError } from '../errors.js';
import { Tenant, type TenantStatus } from './tenant.entity.js';

export interface TenantView {
  id: string;
  slug: string;
  name: string;
  status: TenantStatus;
  created_at: string;
  updated_at: string;
}

export function tenantView(t: Tenant): TenantView {
  return {
    id: t.id,
    slug: t.slug,
    name: t.name,
    status: t.status,
    created_at: t.createdAt.toISOString(),
    updated_at: t.updatedAt.toISOString(),
  };
}

/** Tables emptied when a tenant is deleted (children go by foreign-key cascade). */
const TENANT_DATA = [
  'sessions',
  'users',
  'groups',
  'role_mappings',
  'connections',
  'domains',
  'scim_tokens',
  'scim_requests',
];

async function load(em: EntityManager, tenantId: string): Promise<Tenant> {
  const tenant = await em.findOneBy(Tenant, { id: tenantId });
  if (!tenant || tenant.status === 'deleted') throw new NotFoundError('Tenant');
  return tenant;
}

export async function createTenant(
  db: Database,
  input: { slug: string; name: string },
  ctx: AuditContext,
): Promise<TenantView> {
  const id = randomUUID();
  try {
    return await db.withTenant(id, async (em) => {
      const now = new Date();
      const tenant = em.create(Tenant, {
        id,
        ...input,
        status: 'active',
        createdAt: now,
        updatedAt: now,
        deletedAt: null,
      });
      await em.insert(Tenant, tenant);
      await recordAudit(em, id, {
        ...ctx,
        action: 'tenant.created',
        target: { type: 'tenant', id },
        after: { ...input },
      });
      return tenantView(tenant);
    });
  } catch (error) {
    if (isUniqueViolation(error))
      throw new ConflictError(`A tenant with slug "${input.slug}" already exists`);
    throw error;
  }
}

export async function getTenant(db: Database, tenantId: string): Promise<TenantView> {
  return tenantView(await db.withPlatform((em) => load(em, tenantId)));
}

/**
 * The tenant's id, slug and status, read in the caller's transaction (tenant
 * or platform: tenants has no row-level security), or null when there is none.
 */
export async function tenantStatusOf(
  em: EntityManager,
  tenantId: string,
): Promise<{ id: string; slug: string; status: string } | null> {
  const rows = await em.query<{ id: string; slug: string; status: string }[]>(
    'SELECT id, slug, status FROM tenants WHERE id = $1',
    [tenantId],
  );
  return rows[0] ?? null;
}

/** By id or slug (the `organization` parameter of /oauth/authorize accepts both). */
export async function findTenantByIdOrSlug(db: Database, idOrSlug: string): Promise<TenantView | null> {
  return db.withPlatform(async (em) => {
    const byId = /^[0-9a-f-]{36}$/i.test(idOrSlug) ? await em.findOneBy(Tenant, { id: idOrSlug }) : null;
    const tenant = byId ?? (await em.findOneBy(Tenant, { slug: idOrSlug.toLowerCase() }));
    return tenant && tenant.status !== 'deleted' ? tenantView(tenant) : null;
  });
}

export async function listTenants(
  db: Database,
  page: { limit: number; offset: number },
): Promise<{ data: TenantView[]; total: number }> {
  return db.withPlatform(async (em) => {
    const [rows, total] = await em.findAndCount(Tenant, {
      where: { status: Not('deleted') },
      order: { createdAt: 'ASC', id: 'ASC' },
      take: page.limit,
      skip: page.offset,
    });
    return { data: rows.map(tenantView), total };
  });
}

/**
 * Tells every node, at commit, that the tenant's status changed: caches of
 * credentials verified while it was active (SCIM tokens, scim/scim-auth.ts)
 * drop them, so a suspended or deleted tenant is refused everywhere at once.
 */
async function notifyTenantStatusChanged(em: EntityManager, tenantId: string): Promise<void> {
  await notifyInTransaction(em, CHANNELS.tenantStatusChanged, tenantId);
}

/**
 * Ends every live session of the tenant as a user's deprovisioning does
 * (sessions/revoke-sessions.ts, scope tenant): revoked in this transaction, a
 * back-channel logout queued per app session and the other nodes notified, all
 * at commit. The tenant's own audit event carries the count. Returns how many
 * were live.
 */
async function revokeTenantSessions(em: EntityManager, tenantId: string, reason: string): Promise<number> {
  return (await revokeSessions(em, { tenant: tenantId }, reason)).length;
}

async function change(
  db: Database,
  tenantId: string,
  ctx: AuditContext,
  action: string,
  apply: (t: Tenant) => void,
): Promise<TenantView> {
  try {
    return await db.withTenant(tenantId, async (em) => {
      const tenant = await load(em, tenantId);
      const before = tenantView(tenant);
      apply(tenant);
      tenant.updatedAt = new Date();
      await em.save(Tenant, tenant);
      let revokedSessions: number | undefined;
      if (tenant.status !== before.status) {
        // Suspension ends sessions for good, as a user's suspension does: reactivation revives none.
        if (tenant.status === 'suspended')
          revokedSessions = await revokeTenantSessions(em, tenantId, 'tenant_suspended');
        await notifyTenantStatusChanged(em, tenantId);
      }
      const after = tenantView(tenant);
      await recordAudit(em, tenantId, {
        ...ctx,
        action,
        target: { type: 'tenant', id: tenantId },
        before: { ...before },
        after: { ...after, ...(revokedSessions === undefined ? {} : { revoked_sessions: revokedSessions }) },
      });
      return after;
    });
  } catch (error) {
    if (isUniqueViolation(error)) throw new ConflictError('A tenant with that slug already exists');
    throw error;
  }
}

export function updateTenant(
  db: Database,
  tenantId: string,
  input: { slug?: string; name?: string },
  ctx: AuditContext,
): Promise<TenantView> {
  return change(db, tenantId, ctx, 'tenant.updated', (t) => Object.assign(t, input));
}

export function setTenantStatus(
  db: Database,
  tenantId: string,
  status: 'active' | 'suspended',
  ctx: AuditContext,
): Promise<TenantView> {
  return change(
    db,
    tenantId,
    ctx,
    status === 'suspended' ? 'tenant.suspended' : 'tenant.reactivated',
    (t) => {
      t.status = status;
    },
  );
}

/**
 * Soft delete: the tenant row stays (its slug stays taken, its audit trail
 * stays readable by the operator); every tenant-owned row is removed in the
 * same transaction, sessions included, so nothing keeps working for it.
 */
export async function deleteTenant(db: Database, tenantId: string, ctx: AuditContext): Promise<void> {
  await db.withTenant(tenantId, async (em) => {
    const tenant = await load(em, tenantId);
    const before = tenantView(tenant);
    // The apps hear of it first: the outbox rows outlive the sessions (the tenant row stays).
    const revokedSessions = await revokeTenantSessions(em, tenantId, 'tenant_deleted');
    for (const table of TENANT_DATA) await em.query(`DELETE FROM ${table}`);
    tenant.status = 'deleted';
    tenant.deletedAt = new Date();
    tenant.updatedAt = tenant.deletedAt;
    await em.save(Tenant, tenant);
    await notifyTenantStatusChanged(em, tenantId);
    await recordAudit(em, tenantId, {
      ...ctx,
      action: 'tenant.deleted',
      target: { type: 'tenant', id: tenantId },
      before: { ...before },
      after: { revoked_sessions: revokedSessions },
    });
  });
}
