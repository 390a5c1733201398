import type { AuditContext } from '../audit/audit.service.js';
import { recordAudit } from '../audit/audit.service.js';
import { latestCheckpoint } from '../audit/audit-erasure.js';
import type { CheckpointSigningKey } from '../audit/checkpoint-key.js';
import {
  takeCheckpoint,
  type CheckpointLog,
  type CheckpointPublisher,
} from '../audit/checkpoints.service.js';
import { PLATFORM_TENANT_ID, type Database } from '../db/database.js';
import { ConflictError, NotFoundError } from '../errors.js';
import {
  getTenantDeletion,
  lockTenantForPurge,
  markPurgeForced,
  markPurged,
  type TenantDeletionRecord,
} from '../tenants/tenants.service.js';

/**
 * Purging a deleted tenant (issue 12): when, and what is left? After
 * `purge_after` (the sweep, purge-sweep.ts) or before it when the operator
 * forces it (`POST /admin/v1/tenants/{id}/purge?force=true`), every row of
 * every table with a tenant_id column is deleted — the tables are found in the
 * catalog by tenant_purge (migrations/1766000000000-…), so a table added later
 * cannot be forgotten — and the audit trail is deleted with its checkpoints
 * (GATEHOUSE_TENANT_PURGE_AUDIT=delete, the default) or kept with every
 * personal field pseudonymised (`pseudonymise`). tenant_purge is SECURITY
 * DEFINER, owned by the tables' owner, and refuses unless the tenant is
 * deleted and past purge_after or forced by the flag on its row.
 *
 * What remains is the tenants row as a tombstone (id, slug — never reused
 * silently —, status 'purged', its timestamps and the final signed
 * checkpoint), and `tenant.purged` on the platform trail (nil tenant): the
 * tenant's own trail is gone.
 */
export type PurgeAuditMode = 'delete' | 'pseudonymise';

export interface PurgeDeps {
  db: Database;
  purgeAudit: PurgeAuditMode;
  checkpointKey: CheckpointSigningKey;
  publish?: CheckpointPublisher;
  log?: CheckpointLog;
}

export async function purgeTenant(
  deps: PurgeDeps,
  tenantId: string,
  options: { force: boolean; ctx: AuditContext },
): Promise<TenantDeletionRecord> {
  const found = await getTenantDeletion(deps.db, tenantId);
  if (!found) throw new NotFoundError('Tenant');
  refuseUnlessDue(found, options.force, new Date());
  // The head is signed before it goes (idempotent: normally the deletion's own checkpoint).
  await takeCheckpoint(deps.db, deps.checkpointKey, tenantId, { publish: deps.publish, log: deps.log });
  return deps.db.withTenant(tenantId, async (em) => {
    const tenant = await lockTenantForPurge(em, tenantId);
    if (!tenant) throw new NotFoundError('Tenant');
    // Another node may have purged it while this one waited for the lock.
    refuseUnlessDue(
      {
        status: tenant.status,
        purge_after: tenant.purgeAfter?.toISOString() ?? null,
      },
      options.force,
      new Date(),
    );
    if (options.force) await markPurgeForced(em, tenantId);
    const final = await latestCheckpoint(em, tenantId);
    const [purged] = await em.query<{ n: string }[]>('SELECT tenant_purge($1, $2) AS n', [
      tenantId,
      deps.purgeAudit,
    ]);
    const record = await markPurged(em, tenantId, final);
    // Same transaction, platform trail: RLS follows app.tenant_id, so it moves to the nil tenant.
    await em.query(`SELECT set_config('app.tenant_id', $1, true)`, [PLATFORM_TENANT_ID]);
    await recordAudit(em, PLATFORM_TENANT_ID, {
      ...options.ctx,
      action: 'tenant.purged',
      target: { type: 'tenant', id: tenantId },
      after: {
        slug: record.slug,
        audit: deps.purgeAudit,
        forced: options.force,
        rows_purged: Number(purged?.n ?? 0),
        final_checkpoint: final ? { seq: final.seq, hash: final.hash } : null,
      },
    });
    return record;
  });
}

function refuseUnlessDue(
  tenant: Pick<TenantDeletionRecord, 'status' | 'purge_after'>,
  force: boolean,
  now: Date,
): void {
  if (tenant.status === 'purged') throw new ConflictError('The tenant is already purged');
  if (tenant.status !== 'deleted') throw new ConflictError('Only a deleted tenant can be purged');
  if (!force && (tenant.purge_after === null || new Date(tenant.purge_after) > now))
    throw new ConflictError(
      `The tenant's data is kept until ${tenant.purge_after ?? 'its retention ends'}; add force=true to purge it now`,
    );
}
