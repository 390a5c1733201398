import type { NextFunction, Request, Response } from 'express';
import { z } from 'zod';
import { BadRequestError, DomainError, NotFoundError } from '../errors.js';
import { type Intent } from './intents.js';
import { csrfMatches, type PortalPrincipal } from './portal-sessions.js';

/**
 * How does a portal handler read its form and its caller? Parsing of
 * url-encoded forms (zod; a field sent twice arrives as an array and is
 * refused like any wrong type), the session a request carries, the tenant a
 * path names (checked against the session), and the CSRF token.
 */

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export function parseForm<S extends z.ZodType>(schema: S, req: Request): z.infer<S> {
  const result = schema.safeParse(req.body ?? {});
  if (!result.success) {
    const message = result.error.issues
      .map((i) => `${i.path.length ? i.path.join('.') : 'form'}: ${i.message}`)
      .join('; ');
    throw new BadRequestError(message);
  }
  return result.data;
}

export function sessionOf(res: Response): PortalPrincipal {
  const session = res.locals.portalSession as PortalPrincipal | undefined;
  if (!session) throw new Error('portal route reached without a session');
  return session;
}

export function uuidParam(value: unknown, what: string): string {
  if (typeof value !== 'string' || !UUID.test(value)) throw new NotFoundError(what);
  return value;
}

/**
 * The tenant named by the path, when this session may act on it for this
 * intent. Another tenant answers 404, exactly like one that does not exist;
 * an intent the session lacks answers 403.
 */
export function portalTenant(
  req: Request,
  res: Response,
  intent: Intent | readonly Intent[] | 'home',
): string {
  const session = sessionOf(res);
  const tenantId = uuidParam(req.params.tenantId, 'Tenant');
  // idor check: a setup-link session reaches its own tenant only
  if (session.kind !== 'operator' && session.tenantId !== tenantId) throw new NotFoundError('Tenant');
  // A list: any one of them will do (the test sign-in serves `sso` and `certificate_renewal`).
  const anyOf: readonly string[] = intent === 'home' ? [] : typeof intent === 'string' ? [intent] : intent;
  if (intent !== 'home' && !anyOf.some((i) => session.intents.includes(i as Intent)))
    throw new DomainError('forbidden', 'This link does not allow that; ask for a link that includes it');
  return tenantId;
}

export function requireOperator(res: Response): void {
  if (sessionOf(res).kind !== 'operator') throw new DomainError('forbidden', 'Only the operator can do this');
}

/** Every state-changing portal request carries the session's synchronizer token (403 otherwise, nothing done). */
export function checkCsrf(req: Request, res: Response, next: NextFunction): void {
  if (req.method !== 'POST') return next();
  const body = req.body as Record<string, unknown> | undefined;
  if (!csrfMatches(sessionOf(res), body?._csrf))
    return next(
      new DomainError('forbidden', 'The form expired or did not come from this portal; reload the page'),
    );
  next();
}

export const nonEmpty = (max: number) => z.string().trim().min(1).max(max);
