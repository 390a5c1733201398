import { Router } from 'express';
import type { Config } from '../config/config.js';
import type { Secrets } from '../config/secrets.js';
import type { Database } from '../db/database.js';
import { jsonErrorHandler, jsonNotFound } from '../http/error-handler.js';
import { adminAuthentication, failedAuthLimiter, type TenantAdminResolver } from './auth.js';
import { tenantsRouter } from './tenants.router.js';

export interface AdminDeps {
  config: Config;
  db: Database;
  secrets: Secrets;
  resolveTenantAdmin?: TenantAdminResolver;
}

/**
 * /admin/v1: JSON over HTTPS for the operator and tenant admins. Every change
 * writes an audit event in its own transaction. Errors are `{ code, message }`.
 */
export function adminRouter(deps: AdminDeps): Router {
  const router = Router();
  router.use(failedAuthLimiter({ limit: deps.config.adminAuthFailureLimit, windowMs: 60_000 }));
  router.use(adminAuthentication(deps.secrets.adminToken, deps.resolveTenantAdmin));
  router.use(tenantsRouter(deps.db));
  router.use(jsonNotFound);
  router.use(jsonErrorHandler);
  return router;
}
