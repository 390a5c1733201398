import { Router, type Request } from 'express';
import { z } from 'zod';
import type { Database } from '../db/database.js';
import {
  createRoleMapping,
  deleteRoleMapping,
  getRoleMapping,
  listRoleMappings,
  ROLE_NAME,
} from '../directory/role-mappings.service.js';
import { NotFoundError } from '../errors.js';
import { auditContext } from './principal.js';
import { tenantIdParam } from './tenants.router.js';
import { pageQuery, parseBody, parseQuery, uuidParam } from './validation.js';

const groupValue = z.string().trim().min(1).max(256);
const createBody = z.strictObject({
  group: z.union(
    [z.strictObject({ display_name: groupValue }), z.strictObject({ external_id: groupValue })],
    { error: 'must be exactly one of { "display_name": "…" } or { "external_id": "…" }, non-empty' },
  ),
  role: z.string().regex(ROLE_NAME, 'a lower-case name: letters, digits, _ : . - (at most 64 characters)'),
});

function mappingIdParam(req: Request): string {
  const parsed = uuidParam.safeParse(req.params.mappingId);
  if (!parsed.success) throw new NotFoundError('Role mapping');
  return parsed.data;
}

export function roleMappingsRouter(db: Database): Router {
  const router = Router();

  router.post('/tenants/:tenantId/role-mappings', async (req, res) => {
    const tenantId = tenantIdParam(req);
    res
      .status(201)
      .json(await createRoleMapping(db, tenantId, parseBody(createBody, req), auditContext(req)));
  });

  router.get('/tenants/:tenantId/role-mappings', async (req, res) => {
    const tenantId = tenantIdParam(req);
    const page = parseQuery(pageQuery, req);
    res.json({ ...(await listRoleMappings(db, tenantId, page)), ...page });
  });

  router.get('/tenants/:tenantId/role-mappings/:mappingId', async (req, res) => {
    const tenantId = tenantIdParam(req);
    res.json(await getRoleMapping(db, tenantId, mappingIdParam(req)));
  });

  router.delete('/tenants/:tenantId/role-mappings/:mappingId', async (req, res) => {
    const tenantId = tenantIdParam(req);
    await deleteRoleMapping(db, tenantId, mappingIdParam(req), auditContext(req));
    res.status(204).end();
  });

  return router;
}
