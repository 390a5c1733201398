import { Router } from 'express';
import { z } from 'zod';
import type { Database } from '../db/database.js';
import { listScimRequests } from '../scim/scim-request-log.js';
import { tenantIdParam } from './tenants.router.js';
import { parseQuery } from './validation.js';

/**
 * GET /admin/v1/tenants/{id}/scim-requests: a tenant's SCIM provisioning log
 * (src/scim/scim-request-log.ts), newest first. Keyset pagination (`cursor`,
 * `next_cursor`) rather than the offset of the other lists: the log grows
 * while it is read, and an offset would repeat or skip rows.
 */
const listQuery = z.object({
  limit: z.coerce.number().int().min(1).max(100).default(25),
  cursor: z.string().min(1).max(200).optional(),
  status: z
    .string()
    .regex(/^(?:[1-5]xx|[1-5][0-9]{2})$/, 'a status class such as 4xx, or a status code such as 409')
    .optional(),
});

/** Read-only: rows are written by the SCIM surface and removed by the retention sweep. */
export function scimRequestsRouter(db: Database): Router {
  const router = Router();

  router.get('/tenants/:tenantId/scim-requests', async (req, res) => {
    const tenantId = tenantIdParam(req);
    const query = parseQuery(listQuery, req);
    res.json({ ...(await listScimRequests(db, tenantId, query)), limit: query.limit });
  });

  return router;
}
