import { Router, type Request } from 'express';
import { z } from 'zod';
import { recordAudit } from '../audit/audit.service.js';
import type { Database } from '../db/database.js';
import { listDeliveries, retryDelivery, type OutboxTable } from '../db/outbox-deliveries.js';
import { ConflictError, NotFoundError } from '../errors.js';
import { LOGOUT_DELIVERIES } from '../sessions/logout-deliveries.js';
import { requireLiveTenant } from '../tenants/tenant-guard.js';
import { WEBHOOK_DELIVERIES } from '../webhooks/webhook-deliveries.js';
import { auditContext } from './principal.js';
import { tenantIdParam } from './tenants.router.js';
import { parseQuery } from './validation.js';

/**
 * A tenant's outbound deliveries (issue 11; docs/admin-api.md "Deliveries"):
 * back-channel logouts and webhook events with status, attempts and last
 * error, and "send again" for one that was given up. For the operator and the
 * tenant's own admins.
 */
const KINDS: Record<string, OutboxTable> = {
  'backchannel-logouts': LOGOUT_DELIVERIES,
  webhooks: WEBHOOK_DELIVERIES,
};

function kindParam(req: Request): { kind: string; outbox: OutboxTable } {
  const kind = String(req.params.kind);
  const outbox = Object.hasOwn(KINDS, kind) ? KINDS[kind] : undefined;
  if (!outbox) throw new NotFoundError('Delivery kind');
  return { kind, outbox };
}

const deliveryId = z.uuid();

const listQuery = z.object({
  status: z.enum(['pending', 'delivered', 'failed']).optional(),
  limit: z.coerce.number().int().min(1).max(200).default(50),
  offset: z.coerce.number().int().min(0).max(1_000_000).default(0),
});

export function deliveriesRouter(db: Database): Router {
  const router = Router();

  router.get('/tenants/:tenantId/deliveries/:kind', async (req, res) => {
    const tenantId = tenantIdParam(req);
    const { outbox } = kindParam(req);
    const query = parseQuery(listQuery, req);
    const page = await db.withTenant(tenantId, async (em) => {
      await requireLiveTenant(em, tenantId);
      return listDeliveries(em, outbox, query);
    });
    res.json({ ...page, limit: query.limit, offset: query.offset });
  });

  router.post('/tenants/:tenantId/deliveries/:kind/:deliveryId/retry', async (req, res) => {
    const tenantId = tenantIdParam(req);
    const { kind, outbox } = kindParam(req);
    const id = deliveryId.safeParse(req.params.deliveryId);
    if (!id.success) throw new NotFoundError('Delivery');
    const ctx = auditContext(req);
    const delivery = await db.withTenant(tenantId, async (em) => {
      await requireLiveTenant(em, tenantId);
      const outcome = await retryDelivery(em, outbox, tenantId, id.data);
      if (outcome.kind === 'not_found') throw new NotFoundError('Delivery');
      if (outcome.kind === 'not_given_up')
        throw new ConflictError(
          `Only a given-up (failed) delivery can be sent again; this one is ${outcome.status}`,
        );
      await recordAudit(em, tenantId, {
        ...ctx,
        action: 'delivery.retried',
        target: { type: kind === 'webhooks' ? 'webhook_delivery' : 'backchannel_logout', id: id.data },
        before: { status: 'failed' },
        after: { status: 'pending' },
      });
      return outcome.delivery;
    });
    res.status(202).json(delivery);
  });

  return router;
}
