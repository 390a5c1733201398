import { recordAudit, type AuditContext } from '../audit/audit.service.js';
import type { Database } from '../db/database.js';
import {
  listDeliveries,
  retryDelivery,
  type DeliveryQuery,
  type DeliveryView,
  type OutboxTable,
} from '../db/outbox-deliveries.js';
import { ConflictError, NotFoundError } from '../errors.js';
import { LOGOUT_DELIVERIES } from '../sessions/logout-deliveries.js';
import { requireLiveTenant } from '../tenants/tenant-guard.js';
import { WEBHOOK_DELIVERIES } from '../webhooks/webhook-deliveries.js';

/**
 * A tenant's outbound deliveries as the operator and the tenant's admins see
 * them (issue 11; docs/admin-api.md "Deliveries"): which outboxes there are,
 * and the rules of "send again" — the tenant must still exist, only a given-up
 * delivery is re-queued, and the re-queue is audited in the same transaction.
 * The HTTP shape is src/admin/deliveries.router.ts.
 */
const KINDS: Record<string, { outbox: OutboxTable; auditType: string }> = {
  'backchannel-logouts': { outbox: LOGOUT_DELIVERIES, auditType: 'backchannel_logout' },
  webhooks: { outbox: WEBHOOK_DELIVERIES, auditType: 'webhook_delivery' },
};

function kindOf(kind: string): { outbox: OutboxTable; auditType: string } {
  const found = Object.hasOwn(KINDS, kind) ? KINDS[kind] : undefined;
  if (!found) throw new NotFoundError('Delivery kind');
  return found;
}

export async function listTenantDeliveries(
  db: Database,
  tenantId: string,
  kind: string,
  query: DeliveryQuery,
): Promise<{ data: DeliveryView[]; total: number; total_is_capped: boolean }> {
  const { outbox } = kindOf(kind);
  return db.withTenant(tenantId, async (em) => {
    await requireLiveTenant(em, tenantId);
    return listDeliveries(em, outbox, query);
  });
}

export async function retryTenantDelivery(
  db: Database,
  tenantId: string,
  kind: string,
  deliveryId: string,
  ctx: AuditContext,
): Promise<DeliveryView> {
  const { outbox, auditType } = kindOf(kind);
  return db.withTenant(tenantId, async (em) => {
    await requireLiveTenant(em, tenantId);
    const outcome = await retryDelivery(em, outbox, tenantId, deliveryId);
    if (outcome.kind === 'not_found') throw new NotFoundError('Delivery');
    if (outcome.kind === 'not_given_up')
      throw new ConflictError(
        `Only a given-up (failed) delivery can be sent again; this one is ${outcome.status}`,
      );
    await recordAudit(em, tenantId, {
      ...ctx,
      action: 'delivery.retried',
      target: { type: auditType, id: deliveryId },
      before: { status: 'failed' },
      after: { status: 'pending' },
    });
    return outcome.delivery;
  });
}
