import { Router } from 'express';
import { z } from 'zod';
import { listAuditEvents } from '../audit/audit-events.service.js';
import { checkpointKey } from '../audit/checkpoint-key.js';
import { verifyAuditTrail } from '../audit/checkpoints.service.js';
import type { Database } from '../db/database.js';
import { requireLiveTenant } from '../tenants/tenant-guard.js';
import { tenantIdParam } from './tenants.router.js';
import { pageQuery, parseQuery } from './validation.js';

const listQuery = pageQuery.extend({
  action: z
    .string()
    .regex(
      /^[a-z0-9_:-]+(?:\.[a-z0-9_:-]+)*(?:\.\*)?$/,
      'an action such as domain.verified, or a prefix such as domain.*',
    )
    .optional(),
  since: z.iso
    .datetime({ offset: true })
    .transform((v) => new Date(v))
    .optional(),
  until: z.iso
    .datetime({ offset: true })
    .transform((v) => new Date(v))
    .optional(),
  order: z.enum(['asc', 'desc']).default('desc'),
});

/** Read-only: the trail is append-only, and a deleted tenant's trail stays readable. */
export function auditEventsRouter(db: Database, masterKey: Buffer): Router {
  const router = Router();
  const requireTenant = (tenantId: string) =>
    db.withPlatform((em) => requireLiveTenant(em, tenantId, { allowDeleted: true }));

  router.get('/tenants/:tenantId/audit-events', async (req, res) => {
    const tenantId = tenantIdParam(req);
    const query = parseQuery(listQuery, req);
    await requireTenant(tenantId);
    res.json({ ...(await listAuditEvents(db, tenantId, query)), limit: query.limit, offset: query.offset });
  });

  router.get('/tenants/:tenantId/audit-events/verify', async (req, res) => {
    const tenantId = tenantIdParam(req);
    await requireTenant(tenantId);
    // The chain recomputed and checked against every signed checkpoint (docs/admin-api.md).
    res.json(await verifyAuditTrail(db, await checkpointKey(masterKey), tenantId));
  });

  return router;
}
