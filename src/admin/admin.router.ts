import { Router } from 'express';
import type { Config } from '../config/config.js';
import type { Secrets } from '../config/secrets.js';
import type { Database } from '../db/database.js';
import { jsonErrorHandler, jsonNotFound } from '../http/error-handler.js';
import { adminAuthentication, failedAuthLimiter, type TenantAdminResolver } from './auth.js';
import { sharedLimiterOptions } from '../http/rate-limit-store.js';
import { tenantsRouter } from './tenants.router.js';
import { offboardingRouter } from './offboarding.router.js';
import { createTxtResolver } from '../tenants/dns-verifier.js';
import { auditEventsRouter } from './audit-events.router.js';
import { auditCheckpointsRouter } from './audit-checkpoints.router.js';
import { exportsRouter } from './exports.router.js';
import { tenantImportsRouter } from './tenant-imports.router.js';
import { domainsRouter } from './domains.router.js';
import { roleMappingsRouter } from './role-mappings.router.js';
import { scimTokensRouter } from './scim-tokens.router.js';
import { scimRequestsRouter } from './scim-requests.router.js';
import { loginTracesRouter } from './login-traces.router.js';
import { deliveriesRouter } from './deliveries.router.js';
import { outboundPolicy } from '../outbound/pinned-request.js';
import { appsRouter } from './apps.router.js';
import { adminInputGuard } from './input-guard.js';
import { connectionsRouter } from './connections.router.js';
import type { SigningKeyStore } from '../tokens/keys/key-store.js';
import { signingKeysRouter } from './signing-keys.router.js';
import { portalLinksRouter } from './portal-links.router.js';
import { setupLinksRouter } from './setup-links.router.js';
import { spKeysRouter } from './sp-keys.router.js';
import { clientKeysRouter } from './client-keys.router.js';
import { metadataRefreshRouter } from './metadata-refresh.router.js';
import { metadataRenewalRouter } from './metadata-renewal.router.js';

export interface AdminDeps {
  config: Config;
  db: Database;
  secrets: Secrets;
  resolveTenantAdmin?: TenantAdminResolver;
  /** Token signing keys (src/tokens): /signing-keys and rotation on command. */
  signingKeys?: SigningKeyStore;
}

/**
 * /admin/v1: JSON over HTTPS for the operator and tenant admins. Every change
 * writes an audit event in its own transaction. Errors are `{ code, message }`.
 */
export function adminRouter(deps: AdminDeps): Router {
  const router = Router();
  const shared = sharedLimiterOptions(deps.config, deps.db, 'admin-auth'); // issue 11: counted for all nodes
  router.use(failedAuthLimiter({ limit: deps.config.adminAuthFailureLimit, windowMs: 60_000, shared }));
  router.use(adminAuthentication(deps.secrets.adminToken, deps.resolveTenantAdmin));
  // Issue 8: prototype keys, deep nesting and unstorable text, before any schema or service.
  router.use(adminInputGuard);
  router.use(offboardingRouter({ db: deps.db, config: deps.config, masterKey: deps.secrets.masterKey }));
  router.use(tenantsRouter(deps.db));
  router.use(
    domainsRouter(
      deps.db,
      createTxtResolver({ servers: deps.config.dnsServers, timeoutMs: deps.config.dnsTimeoutMs }),
    ),
  );
  router.use(roleMappingsRouter(deps.db));
  router.use(scimTokensRouter(deps.db, deps.config));
  router.use(scimRequestsRouter(deps.db));
  router.use(loginTracesRouter(deps.db, deps.secrets.masterKey)); // issue 15
  router.use(deliveriesRouter(deps.db));
  router.use(auditEventsRouter(deps.db, deps.secrets.masterKey));
  router.use(auditCheckpointsRouter(deps.db, deps.secrets.masterKey));
  router.use(exportsRouter(deps.db, deps.secrets.masterKey, deps.config));
  router.use(tenantImportsRouter(deps.db));
  router.use(
    connectionsRouter({
      db: deps.db,
      baseUrl: deps.config.baseUrl,
      masterKey: deps.secrets.masterKey,
      fetch: outboundPolicy(deps.config.outboundFetch),
      xmlLimits: deps.config.sso.xmlLimits,
    }),
  );
  const connectionDeps = {
    db: deps.db,
    baseUrl: deps.config.baseUrl,
    masterKey: deps.secrets.masterKey,
    fetch: outboundPolicy(deps.config.outboundFetch),
    xmlLimits: deps.config.sso.xmlLimits,
  };
  router.use(clientKeysRouter(connectionDeps)); // issue 16
  router.use(
    metadataRefreshRouter({
      ...connectionDeps,
      certOverlapMs: deps.config.metadataRefresh.certOverlapSeconds * 1000,
    }),
  );
  router.use(metadataRenewalRouter(connectionDeps, deps.config)); // issue 15: the portal's renewal, by API
  router.use(spKeysRouter({ db: deps.db, config: deps.config, masterKey: deps.secrets.masterKey }));
  router.use(appsRouter(deps.db, deps.secrets.masterKey, deps.config.outboundFetch));
  router.use(portalLinksRouter(deps.db, deps.config.baseUrl), setupLinksRouter(deps.db, deps.config)); // issue 15
  if (deps.signingKeys) router.use(signingKeysRouter(deps.signingKeys));
  router.use(jsonNotFound);
  router.use(jsonErrorHandler);
  return router;
}
