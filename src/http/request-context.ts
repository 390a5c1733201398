import { randomUUID } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

declare module 'express-serve-static-core' {
  interface Request {
    /** Echoed in X-Request-Id, logged, written to audit events. */
    requestId: string;
    /** Set once a credential or path has fixed the tenant; logged as tenant_id. */
    tenantId?: string;
  }
}

/** Accepts a well-formed X-Request-Id or makes one, and echoes it back. */
export function requestId(req: Request, res: Response, next: NextFunction): void {
  const given = req.header('x-request-id');
  req.requestId = given && REQUEST_ID.test(given) ? given : randomUUID();
  res.setHeader('X-Request-Id', req.requestId);
  next();
}
