import { Router, type Request } from 'express';
import { z } from 'zod';
import { checkpointKey } from '../audit/checkpoint-key.js';
import type { Config } from '../config/config.js';
import type { Database } from '../db/database.js';
import { DomainError, NotFoundError } from '../errors.js';
import { deleteTenantWithRecord, tenantDeletion } from '../offboarding/deletion.js';
import { eraseUser } from '../offboarding/erasure.js';
import { purgeTenant } from '../offboarding/purge.js';
import { tenantIdBySlugAnyStatus } from '../tenants/tenants.service.js';
import { publishCheckpointWebhook } from './audit-checkpoints.router.js';
import { auditContext, authorizeTenant, isOperator } from './principal.js';
import { tenantIdParam } from './tenants.router.js';
import { parseBody, parseQuery, uuidParam } from './validation.js';

/**
 * Offboarding on the admin API (issue 12; docs/admin-api.md "Deleting a
 * tenant", "Erasing a person"): delete a tenant with a record, read that
 * record, purge it, and erase one person. Deletion, its record and the purge
 * are the operator's; erasure is the operator's or the tenant's own admins'.
 */
export interface OffboardingRouterDeps {
  db: Database;
  config: Pick<Config, 'tenantDeletion'>;
  masterKey: Buffer;
}

const slug = z.string().regex(/^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/);
const purgeQuery = z.strictObject({ force: z.enum(['true', 'false']).optional() });

function operatorOnly(req: Request): void {
  if (!isOperator(req)) throw new DomainError('forbidden', 'Only the operator can do this');
}

/** `/tenants/{idOrSlug}` for the operator, deleted and purged tenants included. */
async function anyTenantParam(db: Database, req: Request): Promise<string> {
  const given = req.params.tenantId;
  if (uuidParam.safeParse(given).success) return tenantIdParam(req);
  const parsed = slug.safeParse(typeof given === 'string' ? given.toLowerCase() : given);
  const id = parsed.success ? await tenantIdBySlugAnyStatus(db, parsed.data) : null;
  if (!id) throw new NotFoundError('Tenant');
  // idor check: on the resolved id, so another tenant's slug is the 404 of an unknown one
  authorizeTenant(req, id);
  return id;
}

export function offboardingRouter(deps: OffboardingRouterDeps): Router {
  const router = Router();
  const { db } = deps;
  const signing = async (req: Request) => ({
    checkpointKey: await checkpointKey(deps.masterKey),
    publish: publishCheckpointWebhook,
    log: req.log,
  });

  router.delete('/tenants/:tenantId', async (req, res) => {
    // Resolved first: another tenant's admin gets the 404 of an unknown tenant, its own a 403.
    const tenantId = await anyTenantParam(db, req);
    operatorOnly(req);
    await deleteTenantWithRecord(
      { db, retentionSeconds: deps.config.tenantDeletion.retentionSeconds, ...(await signing(req)) },
      tenantId,
      auditContext(req),
    );
    // 204 as before issue 12; the record (purge_after, final checkpoint) is at GET …/deletion.
    res.status(204).end();
  });

  router.get('/tenants/:tenantId/deletion', async (req, res) => {
    const tenantId = await anyTenantParam(db, req);
    operatorOnly(req);
    const record = await tenantDeletion(db, tenantId);
    if (!record) throw new NotFoundError('Deletion');
    res.json(record);
  });

  router.post('/tenants/:tenantId/purge', async (req, res) => {
    const tenantId = await anyTenantParam(db, req);
    operatorOnly(req);
    const { force } = parseQuery(purgeQuery, req);
    parseBody(z.strictObject({}), req);
    const purged = await purgeTenant(
      { db, purgeAudit: deps.config.tenantDeletion.purgeAudit, ...(await signing(req)) },
      tenantId,
      { force: force === 'true', ctx: auditContext(req) },
    );
    res.json(purged);
  });

  router.post('/tenants/:tenantId/users/:userId/erasure', async (req, res) => {
    const tenantId = tenantIdParam(req);
    parseBody(z.strictObject({}), req);
    const userId = uuidParam.safeParse(req.params.userId);
    if (!userId.success) throw new NotFoundError('User');
    res.json(await eraseUser(db, tenantId, userId.data, auditContext(req)));
  });

  return router;
}
