import { Router } from 'express';
import { z } from 'zod';
import type { Database } from '../db/database.js';
import { NotFoundError } from '../errors.js';
import { listTenantDeliveries, retryTenantDelivery } from './deliveries.service.js';
import { auditContext } from './principal.js';
import { tenantIdParam } from './tenants.router.js';
import { parseQuery } from './validation.js';

/**
 * GET /admin/v1/tenants/{id}/deliveries/{kind} and POST …/{deliveryId}/retry
 * (issue 11; docs/admin-api.md "Deliveries"): the HTTP shape only; the rules
 * are in deliveries.service.ts.
 */
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
    const query = parseQuery(listQuery, req);
    const page = await listTenantDeliveries(db, tenantId, String(req.params.kind), query);
    res.json({ ...page, limit: query.limit, offset: query.offset });
  });

  router.post('/tenants/:tenantId/deliveries/:kind/:deliveryId/retry', async (req, res) => {
    const tenantId = tenantIdParam(req);
    const id = deliveryId.safeParse(req.params.deliveryId);
    if (!id.success) throw new NotFoundError('Delivery');
    const delivery = await retryTenantDelivery(
      db,
      tenantId,
      String(req.params.kind),
      id.data,
      auditContext(req),
    );
    res.status(202).json(delivery);
  });

  return router;
}
