import type { AuditContext } from '../audit/audit.service.js';
import type { CheckpointSigningKey } from '../audit/checkpoint-key.js';
import {
  takeCheckpoint,
  type CheckpointLog,
  type CheckpointPublisher,
} from '../audit/checkpoints.service.js';
import type { Database } from '../db/database.js';
import { latestCheckpoint } from '../audit/audit-erasure.js';
import { deleteTenant, getTenantDeletion, type TenantDeletionRecord } from '../tenants/tenants.service.js';
import { dropPersonalWebhookPayloads, enqueueWebhookEvent } from '../webhooks/webhook-events.js';

/**
 * Deleting a tenant with a record (issue 12; docs/admin-api.md "Deleting a
 * tenant"): what happens at once, and what proves it afterwards?
 *
 * In one transaction (tenants.service.ts deleteTenant): sessions revoked with
 * their back-channel logouts queued, SCIM tokens revoked, the status
 * 'deleted' and `purge_after = now + GATEHOUSE_TENANT_RETENTION`, the
 * `tenant.deleted` audit event; then, here, every webhook outbox row of the
 * tenant that may carry personal data (user.*, group.*, any status) deleted
 * and `tenant.deleted` queued for every app with a webhook URL (id, slug,
 * deleted_at, purge_after: no personal data). Kept: the back-channel logout
 * rows (session and user ids only, the apps must still end those sessions)
 * and `audit.checkpoint` events. After the commit the head of the tenant's
 * chain (the `tenant.deleted` event) is signed and published like every
 * checkpoint: the final record of the trail. The rows stay, unreachable,
 * until the purge (purge.ts).
 */
export interface DeletionDeps {
  db: Database;
  retentionSeconds: number;
  checkpointKey: CheckpointSigningKey;
  publish?: CheckpointPublisher;
  log?: CheckpointLog;
}

export type TenantDeletion = TenantDeletionRecord;

export async function deleteTenantWithRecord(
  deps: DeletionDeps,
  tenantId: string,
  ctx: AuditContext,
): Promise<TenantDeletion> {
  const record = await deleteTenant(deps.db, tenantId, ctx, {
    retentionSeconds: deps.retentionSeconds,
    inTransaction: async (em, deleted) => {
      await dropPersonalWebhookPayloads(em);
      await enqueueWebhookEvent(em, tenantId, 'tenant.deleted', {
        object: 'tenant',
        id: deleted.id,
        slug: deleted.slug,
        deleted_at: deleted.deleted_at,
        purge_after: deleted.purge_after,
      });
    },
  });
  // Its own transaction (takeCheckpoint's): should it fail, the purge signs the head before it runs.
  const taken = await takeCheckpoint(deps.db, deps.checkpointKey, tenantId, {
    publish: deps.publish,
    log: deps.log,
  });
  return { ...record, final_checkpoint: taken?.checkpoint ?? null };
}

/**
 * A deleted or purged tenant's record (GET /admin/v1/tenants/{id}/deletion): while it is
 * kept, the final checkpoint is the newest one of its trail; once purged, the tombstone's.
 * Null for a tenant that is not deleted.
 */
export async function tenantDeletion(db: Database, tenantId: string): Promise<TenantDeletion | null> {
  const record = await getTenantDeletion(db, tenantId);
  if (!record || (record.status !== 'deleted' && record.status !== 'purged')) return null;
  if (record.status === 'purged') return record;
  const final = await db.withTenant(tenantId, (em) => latestCheckpoint(em, tenantId));
  return { ...record, final_checkpoint: final };
}
