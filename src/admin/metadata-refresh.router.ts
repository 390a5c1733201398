import { Router, type Request } from 'express';
import { z } from 'zod';
import type { ConnectionDeps } from '../connections/connections.service.js';
import { refreshMetadataNow } from '../connections/metadata-refresh-sweep.js';
import { NotFoundError } from '../errors.js';
import { auditContext } from './principal.js';
import { tenantIdParam } from './tenants.router.js';
import { parseBody, uuidParam } from './validation.js';

function connectionIdParam(req: Request): string {
  const parsed = uuidParam.safeParse(req.params.connectionId);
  if (!parsed.success) throw new NotFoundError('Connection');
  return parsed.data;
}

/**
 * POST tenants/{tenantId}/connections/{connectionId}/metadata/refresh
 * (operator, or an admin of that tenant): re-fetch the IdP's metadata URL now
 * instead of at the next sweep (src/connections/metadata-refresh-sweep.ts).
 * 200 with what changed, or with `outcome: failed` and the reason (the
 * connection keeps its certificates); 409 when it has no metadata URL.
 */
export function metadataRefreshRouter(deps: ConnectionDeps & { certOverlapMs: number }): Router {
  const router = Router();
  router.post('/tenants/:tenantId/connections/:connectionId/metadata/refresh', async (req, res) => {
    const tenantId = tenantIdParam(req);
    const connectionId = connectionIdParam(req);
    parseBody(z.strictObject({}), req);
    const result = await refreshMetadataNow(
      { db: deps.db, fetch: deps.fetch, xmlLimits: deps.xmlLimits, overlapMs: deps.certOverlapMs },
      tenantId,
      connectionId,
      auditContext(req),
    );
    res.json(result);
  });
  return router;
}
