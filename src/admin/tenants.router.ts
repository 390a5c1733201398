import { Router } from 'express';
import { z } from 'zod';
import type { Database } from '../db/database.js';
import { DomainError, NotFoundError } from '../errors.js';
import {
  createTenant,
  findTenantByIdOrSlug,
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
const updateBody = z
  .strictObject({
    slug: slug.optional(),
    name: name.optional(),
    keep_failed_login_responses: z.boolean().optional(),
  })
  .transform(({ keep_failed_login_responses, ...rest }) => ({
    ...rest,
    ...(keep_failed_login_responses === undefined
      ? {}
      : { keepFailedLoginResponses: keep_failed_login_responses }),
  }));
const listQuery = pageQuery.extend({ slug: slug.optional() });

/** The `tenantId` path parameter: a UUID the caller may reach, else 404. */
export function tenantIdParam(req: Parameters<typeof authorizeTenant>[0]): string {
  const parsed = uuidParam.safeParse(req.params.tenantId);
  if (!parsed.success) throw new NotFoundError('Tenant');
  authorizeTenant(req, parsed.data);
  return parsed.data;
}

/**
 * The `tenantId` path parameter of /tenants/{idOrSlug}: a UUID is an id, any
 * other slug-shaped value a slug, resolved to its id first. The caller's
 * reach is then checked on the resolved id, so a tenant admin naming another
 * tenant's slug gets the same 404 as a slug that does not exist.
 */
async function tenantRefParam(db: Database, req: Parameters<typeof authorizeTenant>[0]): Promise<string> {
  const given = req.params.tenantId;
  if (uuidParam.safeParse(given).success) return tenantIdParam(req);
  // Slugs are stored lower-case; `Acme` names the tenant `acme`, as the CLI's --tenant does.
  const parsed = slug.safeParse(typeof given === 'string' ? given.toLowerCase() : given);
  if (!parsed.success) throw new NotFoundError('Tenant');
  const found = await findTenantByIdOrSlug(db, parsed.data);
  if (!found || found.slug !== parsed.data) throw new NotFoundError('Tenant');
  // idor check: on the resolved id, never on the name the caller gave
  authorizeTenant(req, found.id);
  return found.id;
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
    const { slug: bySlug, ...page } = parseQuery(listQuery, req);
    if (bySlug === undefined) return void res.json({ ...(await listTenants(db, page)), ...page });
    // ?slug= filters to at most one tenant (slugs are unique); the page applies to that list.
    const found = await findTenantByIdOrSlug(db, bySlug);
    const matches = found && found.slug === bySlug ? [found] : [];
    res.json({ data: matches.slice(page.offset, page.offset + page.limit), total: matches.length, ...page });
  });

  router.get('/tenants/:tenantId', async (req, res) => {
    res.json(await getTenant(db, await tenantRefParam(db, req)));
  });

  router.patch('/tenants/:tenantId', async (req, res) => {
    const tenantId = await tenantRefParam(db, req);
    res.json(await updateTenant(db, tenantId, parseBody(updateBody, req), auditContext(req)));
  });

  router.post('/tenants/:tenantId/suspend', async (req, res) => {
    const tenantId = await tenantRefParam(db, req);
    operatorOnly(req);
    res.json(await setTenantStatus(db, tenantId, 'suspended', auditContext(req)));
  });

  router.post('/tenants/:tenantId/reactivate', async (req, res) => {
    const tenantId = await tenantRefParam(db, req);
    operatorOnly(req);
    res.json(await setTenantStatus(db, tenantId, 'active', auditContext(req)));
  });

  // DELETE /tenants/{id}: deletion with a record, in offboarding.router.ts (issue 12).

  return router;
}
