import { Router } from 'express';
import { z } from 'zod';
import type { Database } from '../db/database.js';
import { DomainError, NotFoundError } from '../errors.js';
import {
  createTenant,
  deleteTenant,
  getTenant,
  listTenants,
  setTenantStatus,
  updateTenant,
} from '../tenants/tenants.service.js';
import { auditContext, authorizeTenant, isOperator } from './principal.js';
import { pageQuery, parseBody, parseQuery, uuidParam } from './validation.js';

const slug = z
  .string()
  .min(2)
  .max(63)
  .regex(/^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$/, 'lower-case letters, digits and inner hyphens');
const name = z.string().trim().min(1).max(200);

const createBody = z.strictObject({ slug, name });
const updateBody = z.strictObject({ slug: slug.optional(), name: name.optional() });

/** The `tenantId` path parameter: a UUID the caller may reach, else 404. */
export function tenantIdParam(req: Parameters<typeof authorizeTenant>[0]): string {
  const parsed = uuidParam.safeParse(req.params.tenantId);
  if (!parsed.success) throw new NotFoundError('Tenant');
  authorizeTenant(req, parsed.data);
  return parsed.data;
}

function operatorOnly(req: Parameters<typeof isOperator>[0]): void {
  if (!isOperator(req)) throw new DomainError('forbidden', 'Only the operator can do this');
}

export function tenantsRouter(db: Database): Router {
  const router = Router();

  router.post('/tenants', async (req, res) => {
    operatorOnly(req);
    const input = parseBody(createBody, req);
    res.status(201).json(await createTenant(db, input, auditContext(req)));
  });

  router.get('/tenants', async (req, res) => {
    operatorOnly(req);
    const page = parseQuery(pageQuery, req);
    res.json({ ...(await listTenants(db, page)), ...page });
  });

  router.get('/tenants/:tenantId', async (req, res) => {
    res.json(await getTenant(db, tenantIdParam(req)));
  });

  router.patch('/tenants/:tenantId', async (req, res) => {
    const tenantId = tenantIdParam(req);
    res.json(await updateTenant(db, tenantId, parseBody(updateBody, req), auditContext(req)));
  });

  router.post('/tenants/:tenantId/suspend', async (req, res) => {
    const tenantId = tenantIdParam(req);
    operatorOnly(req);
    res.json(await setTenantStatus(db, tenantId, 'suspended', auditContext(req)));
  });

  router.post('/tenants/:tenantId/reactivate', async (req, res) => {
    const tenantId = tenantIdParam(req);
    operatorOnly(req);
    res.json(await setTenantStatus(db, tenantId, 'active', auditContext(req)));
  });

  router.delete('/tenants/:tenantId', async (req, res) => {
    const tenantId = tenantIdParam(req);
    operatorOnly(req);
    await deleteTenant(db, tenantId, auditContext(req));
    res.status(204).end();
  });

  return router;
}
