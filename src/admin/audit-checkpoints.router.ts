import { Router, type Request } from 'express';
import { z } from 'zod';
import { checkpointKey } from '../audit/checkpoint-key.js';
import type { CheckpointView } from '../audit/checkpoint-verify.js';
import { listCheckpoints, takeCheckpoint, type CheckpointPublisher } from '../audit/checkpoints.service.js';
import { PLATFORM_TENANT_ID, type Database } from '../db/database.js';
import { ConflictError, DomainError } from '../errors.js';
import { requireLiveTenant } from '../tenants/tenant-guard.js';
import { enqueueWebhookEvent } from '../webhooks/webhook-events.js';
import { isOperator } from './principal.js';
import { tenantIdParam } from './tenants.router.js';
import { parseBody, parseQuery } from './validation.js';

/**
 * Signed audit checkpoints (issue 12; docs/admin-api.md "Audit checkpoints"):
 * take one now, list them to keep outside the database, and the public key
 * that verifies them. Operator, or the tenant's own admins; the key is the
 * operator's.
 */

/**
 * A new checkpoint leaves the building as an `audit.checkpoint` webhook event
 * to every app with a webhook URL, queued in the checkpoint's own transaction.
 * The platform trail (nil tenant) has no tenant for the outbox: it goes to the
 * log and the worker only.
 */
export const publishCheckpointWebhook: CheckpointPublisher = async (em, cp: CheckpointView) => {
  if (cp.tenant_id === PLATFORM_TENANT_ID) return;
  await enqueueWebhookEvent(em, cp.tenant_id, 'audit.checkpoint', { object: 'audit_checkpoint', ...cp });
};

const listQuery = z.object({
  limit: z.coerce.number().int().min(1).max(1000).default(1000),
  offset: z.coerce.number().int().min(0).max(1_000_000_000).default(0),
});

function operatorOnly(req: Request): void {
  if (!isOperator(req)) throw new DomainError('forbidden', 'Only the operator can do this');
}

export function auditCheckpointsRouter(db: Database, masterKey: Buffer): Router {
  const router = Router();
  // A deleted tenant's trail stays readable and can still be checkpointed (its final record).
  const requireTenant = (tenantId: string) =>
    db.withPlatform((em) => requireLiveTenant(em, tenantId, { allowDeleted: true }));

  router.get('/audit-checkpoint-key', async (req, res) => {
    operatorOnly(req);
    res.json({ keys: [(await checkpointKey(masterKey)).publicJwk] });
  });

  router.post('/tenants/:tenantId/audit-checkpoints', async (req, res) => {
    const tenantId = tenantIdParam(req);
    parseBody(z.strictObject({}), req);
    await requireTenant(tenantId);
    const taken = await takeCheckpoint(db, await checkpointKey(masterKey), tenantId, {
      publish: publishCheckpointWebhook,
      log: req.log,
    });
    if (!taken) throw new ConflictError('The audit trail is empty: there is no head to sign');
    res.status(taken.created ? 201 : 200).json(taken.checkpoint);
  });

  router.get('/tenants/:tenantId/audit-checkpoints', async (req, res) => {
    const tenantId = tenantIdParam(req);
    const query = parseQuery(listQuery, req);
    await requireTenant(tenantId);
    res.json({ ...(await listCheckpoints(db, tenantId, query)), limit: query.limit, offset: query.offset });
  });

  return router;
}
