import express, { Router, type RequestHandler } from 'express';
import type { Database } from '../db/database.js';
import { DomainError } from '../errors.js';
import { IMPORT_LIMITS, importTenant, parseArchive } from '../offboarding/import.service.js';
import { auditContext, isOperator } from './principal.js';

/**
 * Tenant imports (issue 12; docs/admin-api.md "Exports and imports"): an
 * export archive becomes the same tenant in this Gatehouse. Operator only.
 * The body is the archive as downloaded (application/gzip, at most
 * IMPORT_LIMITS.compressedBytes, read only after the operator is known) or
 * its JSON (application/json, within GATEHOUSE_BODY_LIMIT).
 */
const operatorOnly: RequestHandler = (req, _res, next) => {
  if (!isOperator(req)) throw new DomainError('forbidden', 'Only the operator can do this');
  next();
};

export function tenantImportsRouter(db: Database): Router {
  const router = Router();
  const raw = express.raw({
    type: ['application/gzip', 'application/x-gzip', 'application/octet-stream'],
    limit: IMPORT_LIMITS.compressedBytes,
  });

  router.post('/tenant-imports', operatorOnly, raw, async (req, res) => {
    const archive = parseArchive(req.body);
    const result = await importTenant(db, archive, auditContext(req));
    res.status(201).location(`/admin/v1/tenants/${result.tenant_id}`).json(result);
  });

  return router;
}
