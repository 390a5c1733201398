import { Router, type Request } from 'express';
import { z } from 'zod';
import type { Database } from '../db/database.js';
import { NotFoundError } from '../errors.js';
import { findLoginTrace, listLoginTraces, viewRawResponse } from '../sso/login-trace-store.js';
import { auditContext } from './principal.js';
import { tenantIdParam } from './tenants.router.js';
import { parseQuery, uuidParam } from './validation.js';

/**
 * GET /admin/v1/tenants/{id}/login-traces: what happened in a tenant's
 * sign-ins, step by step (issue 15; src/sso/login-trace-store.ts), newest
 * first, found by the support reference an error page showed. Keyset paging
 * (`cursor`, `next_cursor`) like the SCIM request log: traces are written
 * while they are read. A kept raw response is opened one at a time, audited.
 */
const listQuery = z.object({
  limit: z.coerce.number().int().min(1).max(100).default(25),
  cursor: z.string().min(1).max(200).optional(),
  support_ref: z
    .string()
    .regex(/^[A-Za-z0-9._:-]{1,128}$/, 'a support reference as the error page shows it')
    .optional(),
  connection_id: z.uuid().optional(),
  outcome: z
    .string()
    .regex(/^[a-z0-9_]{1,64}$/, 'success, failure, or a reason code such as saml_signature_invalid')
    .optional(),
});

function traceIdParam(req: Request): string {
  const parsed = uuidParam.safeParse(req.params.traceId);
  if (!parsed.success) throw new NotFoundError('Login trace');
  return parsed.data;
}

/** Read-only: traces are written by sign-ins and removed by the retention sweep. */
export function loginTracesRouter(db: Database, masterKey: Buffer): Router {
  const router = Router();

  router.get('/tenants/:tenantId/login-traces', async (req, res) => {
    const tenantId = tenantIdParam(req);
    const q = parseQuery(listQuery, req);
    const page = await listLoginTraces(db, tenantId, {
      limit: q.limit,
      cursor: q.cursor,
      supportRef: q.support_ref,
      connectionId: q.connection_id,
      outcome: q.outcome,
    });
    res.json({ ...page, limit: q.limit });
  });

  router.get('/tenants/:tenantId/login-traces/:traceId', async (req, res) => {
    const tenantId = tenantIdParam(req);
    const trace = await findLoginTrace(db, tenantId, traceIdParam(req));
    if (!trace) throw new NotFoundError('Login trace');
    res.json(trace);
  });

  router.get('/tenants/:tenantId/login-traces/:traceId/raw-response', async (req, res) => {
    const tenantId = tenantIdParam(req);
    const traceId = traceIdParam(req);
    // Opening it writes login_trace.raw_response_viewed in the same transaction.
    const xml = await viewRawResponse(db, masterKey, tenantId, traceId, auditContext(req));
    if (xml === null) throw new NotFoundError('Raw response');
    res.set('Cache-Control', 'no-store').json({ trace_id: traceId, saml_response: xml });
  });

  return router;
}
