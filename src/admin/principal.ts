import type { Request } from 'express';
import type { AuditActor } from '../audit/audit.service.js';
import { NotFoundError } from '../errors.js';

/**
 * Who calls the admin API: the operator (every tenant), or a tenant admin
 * (a user with role `admin`, signed in through Gatehouse; their tenant only).
 */
export type AdminPrincipal =
  { kind: 'operator' } | { kind: 'tenant_admin'; tenantId: string; userId: string };

declare module 'express-serve-static-core' {
  interface Request {
    principal?: AdminPrincipal;
  }
}

export function principalOf(req: Request): AdminPrincipal {
  if (!req.principal) throw new Error('admin route reached without authentication');
  return req.principal;
}

export function isOperator(req: Request): boolean {
  return req.principal?.kind === 'operator';
}

/**
 * "Operator, or admin of this tenant". Another tenant's resources answer 404,
 * exactly like a resource that does not exist.
 */
export function authorizeTenant(req: Request, tenantId: string): void {
  const p = principalOf(req);
  // idor check: a tenant admin reaches their own tenant only
  if (p.kind === 'tenant_admin' && p.tenantId !== tenantId) throw new NotFoundError('Tenant');
  req.tenantId = tenantId;
}

export function auditActor(req: Request): AuditActor {
  const p = principalOf(req);
  return p.kind === 'operator' ? { type: 'operator', id: 'operator' } : { type: 'user', id: p.userId };
}

/** Actor, request id and source IP for audit events written by this request. */
export function auditContext(req: Request): {
  actor: AuditActor;
  requestId: string;
  sourceIp: string | undefined;
} {
  return { actor: auditActor(req), requestId: req.requestId, sourceIp: req.ip };
}
