import { Router } from 'express';
import { z } from 'zod';
import { listAuditEvents } from '../audit/audit-events.service.js';
import { checkpointKey } from '../audit/checkpoint-key.js';
import { verifyAuditTrail } from '../audit/checkpoints.service.js';
import type { Database } from '../db/database.js';
import { BadRequestError } from '../errors.js';
import { requireLiveTenant } from '../tenants/tenant-guard.js';
import { tenantIdParam } from './tenants.router.js';
import { pageQuery, parseQuery } from './validation.js';

/**
 * An actor or target id, matched exactly (the portal's audit filters, src/portal/audit.pages.ts:
 * trimmed, at most 200 characters, no NUL, which PostgreSQL text cannot hold). Unlike the portal's
 * form, an empty value is refused: an API client that sends `actor_id=` meant some id.
 */
const auditId = z
  .string()
  .trim()
  .min(1, 'an id, 1 to 200 characters')
  .max(200, 'an id, 1 to 200 characters')
  .refine((v) => !v.includes('\u0000'), 'no NUL characters');

const listQuery = pageQuery.extend({
  action: z
    .string()
    .regex(
      /^[a-z0-9_:-]+(?:\.[a-z0-9_:-]+)*(?:\.\*)?$/,
      'an action such as domain.verified, or a prefix such as domain.*',
    )
    .optional(),
  since: z.iso
    .datetime({ offset: true })
    .transform((v) => new Date(v))
    .optional(),
  until: z.iso
    .datetime({ offset: true })
    .transform((v) => new Date(v))
    .optional(),
  actor_id: auditId.optional(),
  target_id: auditId.optional(),
  order: z.enum(['asc', 'desc']).default('desc'),
  cursor: z.string().min(1).max(64).optional(),
});

/**
 * The cursor is the page's order and its last seq, opaque to clients: the next
 * page is a keyset range on (tenant_id, seq) (audit-events.service.ts), and a
 * cursor read back in the other order is refused rather than misread.
 */
function encodeCursor(order: 'asc' | 'desc', seq: number): string {
  return Buffer.from(`${order}.${seq}`, 'utf8').toString('base64url');
}

function decodeCursor(cursor: string, order: 'asc' | 'desc'): number {
  const m = /^(asc|desc)\.(\d{1,15})$/.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
  if (!m?.[2]) throw new BadRequestError('cursor: not a cursor this API returned');
  if (m[1] !== order) throw new BadRequestError(`cursor: it continues a list in ${m[1]} order`);
  return Number(m[2]);
}

/** Read-only: the trail is append-only, and a deleted tenant's trail stays readable. */
export function auditEventsRouter(db: Database, masterKey: Buffer): Router {
  const router = Router();
  const requireTenant = (tenantId: string) =>
    db.withPlatform((em) => requireLiveTenant(em, tenantId, { allowDeleted: true }));

  router.get('/tenants/:tenantId/audit-events', async (req, res) => {
    const tenantId = tenantIdParam(req);
    const { cursor, actor_id, target_id, ...query } = parseQuery(listQuery, req);
    if (cursor !== undefined && query.offset > 0)
      throw new BadRequestError('offset: a cursor already says where the page starts');
    const afterSeq = cursor === undefined ? undefined : decodeCursor(cursor, query.order);
    await requireTenant(tenantId);
    // Filters narrow the same keyset range: indexes (tenant_id, actor_id, seq) and (tenant_id, target_id, seq).
    const { next_seq, ...page } = await listAuditEvents(db, tenantId, {
      ...query,
      afterSeq,
      ...(actor_id !== undefined && { actorId: actor_id }),
      ...(target_id !== undefined && { targetId: target_id }),
    });
    res.json({
      ...page,
      limit: query.limit,
      offset: query.offset,
      next_cursor: next_seq === null ? null : encodeCursor(query.order, next_seq),
    });
  });

  router.get('/tenants/:tenantId/audit-events/verify', async (req, res) => {
    const tenantId = tenantIdParam(req);
    await requireTenant(tenantId);
    // The chain recomputed and checked against every signed checkpoint (docs/admin-api.md).
    res.json(await verifyAuditTrail(db, await checkpointKey(masterKey), tenantId));
  });

  return router;
}
