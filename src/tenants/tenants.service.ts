import { randomUUID } from 'node:crypto';
import { In, type EntityManager } from 'typeorm';
import { recordAudit, type AuditContext } from '../audit/audit.service.js';
import type { CheckpointView } from '../audit/checkpoint-verify.js';
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
  /** Issue 15: a failed SAML login's raw response is kept, sealed, for at most 24 hours. */
  keep_failed_login_responses: boolean;
}

export function tenantView(t: Tenant): TenantView {
  return {
    id: t.id,
    slug: t.slug,
    name: t.name,
    status: t.status,
    created_at: t.createdAt.toISOString(),
    updated_at: t.updatedAt.toISOString(),
    keep_failed_login_responses: t.keepFailedLoginResponses,
  };
}

/** Whether the tenant keeps failed SAML logins' raw responses (issue 15); in the caller's transaction. */
export async function keepsFailedLoginResponses(em: EntityManager, tenantId: string): Promise<boolean> {
  const rows = await em.query<{ keep: boolean }[]>(
    'SELECT keep_failed_login_responses AS keep FROM tenants WHERE id = $1',
    [tenantId],
  );
  return rows[0]?.keep === true;
}

/** What a refused sign-in needs of its tenant, in one read: the name its page shows, the opt-in above. */
export async function loginRefusalSettings(
  em: EntityManager,
  tenantId: string,
): Promise<{ name: string | null; keepFailedLoginResponses: boolean }> {
  const rows = await em.query<{ name: string; keep: boolean }[]>(
    'SELECT name, keep_failed_login_responses AS keep FROM tenants WHERE id = $1',
    [tenantId],
  );
  return { name: rows[0]?.name ?? null, keepFailedLoginResponses: rows[0]?.keep === true };
}

async function load(em: EntityManager, tenantId: string): Promise<Tenant> {
  const tenant = await em.findOneBy(Tenant, { id: tenantId });
  if (!tenant || tenant.status === 'deleted' || tenant.status === 'purged') throw new NotFoundError('Tenant');
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
    return tenant && (tenant.status === 'active' || tenant.status === 'suspended')
      ? tenantView(tenant)
      : null;
  });
}

export async function listTenants(
  db: Database,
  page: { limit: number; offset: number },
): Promise<{ data: TenantView[]; total: number }> {
  return db.withPlatform(async (em) => {
    const [rows, total] = await em.findAndCount(Tenant, {
      where: { status: In(['active', 'suspended']) },
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
  input: { slug?: string; name?: string; keepFailedLoginResponses?: boolean },
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

/** What a deletion leaves on the tenant row (issue 12): when, and until when its rows are kept. */
export interface TenantDeletionRecord {
  id: string;
  slug: string;
  status: TenantStatus;
  deleted_at: string | null;
  purge_after: string | null;
  purged_at: string | null;
  final_checkpoint: CheckpointView | null;
}

function deletionRecord(t: Tenant): TenantDeletionRecord {
  return {
    id: t.id,
    slug: t.slug,
    status: t.status,
    deleted_at: t.deletedAt?.toISOString() ?? null,
    purge_after: t.purgeAfter?.toISOString() ?? null,
    purged_at: t.purgedAt?.toISOString() ?? null,
    final_checkpoint: t.finalCheckpoint,
  };
}

export interface DeleteTenantOptions {
  /** GATEHOUSE_TENANT_RETENTION: the rows stay this long (exportable, unreachable), then are purged. */
  retentionSeconds: number;
  now?: Date;
  /** More work in the deletion's transaction (offboarding: webhook outbox, `tenant.deleted`). */
  inTransaction?: (em: EntityManager, record: TenantDeletionRecord) => Promise<void>;
}

/**
 * Deletion with a record (issue 12). Everything the tenant had stops at once,
 * in one transaction: its sessions are revoked (back-channel logouts queued),
 * its SCIM tokens revoked, every node told (the tenant guard and liveness
 * checks refuse a deleted tenant on every surface). Its rows stay until
 * `purge_after` so the operator can still export them; the purge
 * (offboarding/purge.ts) removes them. The row itself stays for good, so the
 * slug stays taken.
 */
export async function deleteTenant(
  db: Database,
  tenantId: string,
  ctx: AuditContext,
  options: DeleteTenantOptions,
): Promise<TenantDeletionRecord> {
  return db.withTenant(tenantId, async (em) => {
    const tenant = await load(em, tenantId);
    const before = tenantView(tenant);
    const revokedSessions = await revokeTenantSessions(em, tenantId, 'tenant_deleted');
    // Refused already by the tenant's status; revoked as well so no credential outlives a restore.
    const [, revokedScimTokens] = await em.query<[unknown[], number]>(
      'UPDATE scim_tokens SET revoked_at = now() WHERE revoked_at IS NULL',
    );
    const now = options.now ?? new Date();
    tenant.status = 'deleted';
    tenant.deletedAt = now;
    tenant.updatedAt = now;
    tenant.purgeAfter = new Date(now.getTime() + options.retentionSeconds * 1000);
    await em.save(Tenant, tenant);
    await notifyTenantStatusChanged(em, tenantId);
    const record = deletionRecord(tenant);
    await recordAudit(em, tenantId, {
      ...ctx,
      action: 'tenant.deleted',
      target: { type: 'tenant', id: tenantId },
      before: { ...before },
      after: {
        revoked_sessions: revokedSessions,
        revoked_scim_tokens: revokedScimTokens,
        purge_after: record.purge_after,
      },
    });
    await options.inTransaction?.(em, record);
    return record;
  });
}

/** The deletion record of a tenant in any state (operator view); null when there is no such tenant. */
export async function getTenantDeletion(
  db: Database,
  tenantId: string,
): Promise<TenantDeletionRecord | null> {
  const tenant = await db.withPlatform((em) => em.findOneBy(Tenant, { id: tenantId }));
  return tenant ? deletionRecord(tenant) : null;
}

/** Deleted tenants whose retention has passed, oldest first (the purge sweep's lookup; tenants has no RLS). */
export async function tenantsDueForPurge(db: Database, limit: number): Promise<string[]> {
  const rows = await db.withPlatform((em) =>
    em.query<{ id: string }[]>(
      `SELECT id FROM tenants WHERE status = 'deleted' AND purge_after <= now() ORDER BY purge_after LIMIT $1`,
      [limit],
    ),
  );
  return rows.map((r) => r.id);
}

/** The tenant row locked for its purge (one node purges; the others wait and then see it purged). */
export async function lockTenantForPurge(em: EntityManager, tenantId: string): Promise<Tenant | null> {
  return em.findOne(Tenant, { where: { id: tenantId }, lock: { mode: 'pessimistic_write' } });
}

/** The operator's `?force=true`: the flag tenant_purge (SQL) honours before purge_after. */
export async function markPurgeForced(em: EntityManager, tenantId: string): Promise<void> {
  await em.query(`UPDATE tenants SET purge_forced_at = now() WHERE id = $1 AND status = 'deleted'`, [
    tenantId,
  ]);
}

/**
 * The tombstone: id, slug (still taken), status 'purged', its timestamps and
 * the final signed checkpoint of its trail. The name goes with the rest.
 */
export async function markPurged(
  em: EntityManager,
  tenantId: string,
  finalCheckpoint: CheckpointView | null,
): Promise<TenantDeletionRecord> {
  await em.query(
    `UPDATE tenants SET status = 'purged', purged_at = now(), updated_at = now(), name = slug,
                        final_checkpoint = $2::jsonb
      WHERE id = $1 AND status = 'deleted'`,
    [tenantId, finalCheckpoint === null ? null : JSON.stringify(finalCheckpoint)],
  );
  const tenant = await em.findOneByOrFail(Tenant, { id: tenantId });
  return deletionRecord(tenant);
}

/** A tenant's id by slug in any state, deleted and purged included (the operator's offboarding commands). */
export async function tenantIdBySlugAnyStatus(db: Database, slug: string): Promise<string | null> {
  const tenant = await db.withPlatform((em) => em.findOneBy(Tenant, { slug: slug.toLowerCase() }));
  return tenant?.id ?? null;
}
