import { Router, type Request } from 'express';
import { z } from 'zod';
import type { Database } from '../db/database.js';
import { DomainError, NotFoundError } from '../errors.js';
import type { TxtResolver } from '../tenants/dns-verifier.js';
import {
  addDomain,
  deleteDomain,
  getDomain,
  listDomains,
  verifyDomain,
  type VerifyInput,
} from '../tenants/domains.service.js';
import { auditContext, isOperator } from './principal.js';
import { tenantIdParam } from './tenants.router.js';
import { pageQuery, parseBody, parseQuery, uuidParam } from './validation.js';

const addBody = z.strictObject({ domain: z.string().max(1000) });
const verifyBody = z.discriminatedUnion('method', [
  z.strictObject({ method: z.literal('dns') }),
  z.strictObject({ method: z.literal('manual'), reason: z.string().trim().min(1).max(1000) }),
]);
const listQuery = pageQuery.extend({ domain: z.string().max(1000).optional() });

/** The `domainId` path parameter: a UUID, else the domain does not exist. */
function domainIdParam(req: Request): string {
  const parsed = uuidParam.safeParse(req.params.domainId);
  if (!parsed.success) throw new NotFoundError('Domain');
  return parsed.data;
}

/** A body-less verify is a DNS verification; `{ method: "manual", reason }` is the operator's. */
function parseVerify(req: Request): VerifyInput {
  const body: unknown = req.body;
  const empty =
    body === undefined || (typeof body === 'object' && body !== null && !Object.keys(body).length);
  const input: VerifyInput = empty ? { method: 'dns' } : parseBody(verifyBody, req);
  if (input.method === 'manual' && !isOperator(req))
    throw new DomainError('forbidden', 'Only the operator can verify a domain manually');
  return input;
}

export function domainsRouter(db: Database, resolver: TxtResolver): Router {
  const router = Router();

  router.post('/tenants/:tenantId/domains', async (req, res) => {
    const tenantId = tenantIdParam(req);
    res.status(201).json(await addDomain(db, tenantId, parseBody(addBody, req), auditContext(req)));
  });

  router.get('/tenants/:tenantId/domains', async (req, res) => {
    const tenantId = tenantIdParam(req);
    const query = parseQuery(listQuery, req);
    const page = await listDomains(db, tenantId, query);
    res.json({ ...page, limit: query.limit, offset: query.offset });
  });

  router.get('/tenants/:tenantId/domains/:domainId', async (req, res) => {
    const tenantId = tenantIdParam(req);
    res.json(await getDomain(db, tenantId, domainIdParam(req)));
  });

  router.post('/tenants/:tenantId/domains/:domainId/verify', async (req, res) => {
    const tenantId = tenantIdParam(req);
    const domainId = domainIdParam(req);
    res.json(await verifyDomain(db, resolver, tenantId, domainId, parseVerify(req), auditContext(req)));
  });

  router.delete('/tenants/:tenantId/domains/:domainId', async (req, res) => {
    const tenantId = tenantIdParam(req);
    await deleteDomain(db, tenantId, domainIdParam(req), auditContext(req));
    res.status(204).end();
  });

  return router;
}
