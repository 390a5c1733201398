import { createHash, timingSafeEqual } from 'node:crypto';
import type { RequestHandler } from 'express';
import { rateLimit } from 'express-rate-limit';
import passport from 'passport';
import { Strategy as BearerStrategy } from 'passport-http-bearer';
import { DomainError } from '../errors.js';
import type { SharedLimiterOptions } from '../http/rate-limit-store.js';
import type { AdminPrincipal } from './principal.js';

const digest = (value: string) => createHash('sha256').update(value).digest();

/** Resolves a bearer token that is not the operator's (tenant admin access tokens, sign-in issue). */
export type TenantAdminResolver = (token: string) => Promise<AdminPrincipal | null>;

/**
 * Bearer authentication for /admin/v1 through passport (docs/architecture.md): the
 * operator token, compared in constant time, or a tenant admin's token.
 */
export function adminAuthentication(
  adminToken: string,
  resolveTenantAdmin?: TenantAdminResolver,
): RequestHandler {
  const expected = digest(adminToken);
  const authenticator = new passport.Passport();
  authenticator.use(
    'admin-bearer',
    new BearerStrategy((token, done) => {
      if (timingSafeEqual(digest(token), expected)) {
        done(null, { kind: 'operator' } satisfies AdminPrincipal);
        return;
      }
      if (!resolveTenantAdmin) {
        done(null, false);
        return;
      }
      resolveTenantAdmin(token).then(
        (principal) => done(null, principal ?? false),
        (error: unknown) => done(error),
      );
    }),
  );
  return (req, res, next) => {
    (
      authenticator.authenticate(
        'admin-bearer',
        { session: false },
        (error: unknown, principal: AdminPrincipal | false) => {
          if (error) return next(error);
          if (!principal) {
            res.setHeader('WWW-Authenticate', 'Bearer realm="gatehouse-admin", error="invalid_token"');
            return next(new DomainError('unauthorized', 'Missing or invalid bearer token'));
          }
          req.principal = principal;
          next();
        },
      ) as RequestHandler
    )(req, res, next);
  };
}

/**
 * Repeated bad tokens from one address are slowed down: only failed
 * authentications count, and past the limit every request is answered 429.
 */
export function failedAuthLimiter(options: {
  limit: number;
  windowMs: number;
  /** Where failures are counted: shared by every node (src/http/rate-limit-store.ts). */
  shared: SharedLimiterOptions;
}): RequestHandler {
  return rateLimit({
    ...options.shared,
    windowMs: options.windowMs,
    limit: options.limit,
    skipSuccessfulRequests: true,
    // Counted as failed: what the authenticator refused.
    requestWasSuccessful: (_req, res) => res.statusCode !== 401,
    standardHeaders: 'draft-7',
    legacyHeaders: false,
    handler: (req, res) => {
      res.status(429).json({
        code: 'rate_limited',
        message: 'Too many failed authentication attempts',
        request_id: req.requestId,
      });
    },
  });
}
