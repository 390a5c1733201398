import { Router } from 'express';
import { z } from 'zod';
import type { Config } from '../config/config.js';
import type { Database } from '../db/database.js';
import { NotFoundError } from '../errors.js';
import { downloadExport, getExport, requestExport } from '../offboarding/exports.service.js';
import { requireLiveTenant } from '../tenants/tenant-guard.js';
import { auditContext } from './principal.js';
import { tenantIdParam } from './tenants.router.js';
import { parseBody, uuidParam } from './validation.js';

/**
 * Tenant exports (issue 12; docs/admin-api.md "Exports and imports"): request
 * one (produced asynchronously by src/offboarding/export-worker.ts), poll its
 * status, download the archive once. Operator, or the tenant's own admins;
 * a tenant marked deleted can still be exported during its retention.
 */
export function exportsRouter(db: Database, masterKey: Buffer, config: Pick<Config, 'exports'>): Router {
  const router = Router();
  const requireTenant = (tenantId: string) =>
    db.withPlatform((em) => requireLiveTenant(em, tenantId, { allowDeleted: true }));
  const exportIdParam = (value: unknown): string => {
    const parsed = uuidParam.safeParse(value);
    if (!parsed.success) throw new NotFoundError('Export');
    return parsed.data;
  };

  router.post('/tenants/:tenantId/exports', async (req, res) => {
    const tenantId = tenantIdParam(req);
    parseBody(z.strictObject({}), req);
    await requireTenant(tenantId);
    const created = await requestExport(
      db,
      tenantId,
      { ttlSeconds: config.exports.ttlSeconds },
      auditContext(req),
    );
    res.status(202).location(`/admin/v1/tenants/${tenantId}/exports/${created.id}`).json(created);
  });

  router.get('/tenants/:tenantId/exports/:exportId', async (req, res) => {
    const tenantId = tenantIdParam(req);
    const exportId = exportIdParam(req.params.exportId);
    await requireTenant(tenantId);
    res.json(await getExport(db, tenantId, exportId));
  });

  router.get('/tenants/:tenantId/exports/:exportId/download', async (req, res) => {
    const tenantId = tenantIdParam(req);
    const exportId = exportIdParam(req.params.exportId);
    await requireTenant(tenantId);
    const { gzip } = await downloadExport(db, masterKey, tenantId, exportId, auditContext(req));
    res
      .status(200)
      .type('application/gzip')
      .setHeader('Content-Disposition', `attachment; filename="gatehouse-export-${exportId}.json.gz"`)
      .setHeader('Cache-Control', 'no-store')
      .send(gzip);
  });

  return router;
}
