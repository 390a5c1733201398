import express, { type Express } from 'express';
import helmet from 'helmet';
import type { Logger } from 'pino';
import { adminRouter } from './admin/admin.router.js';
import { spMetadataRouter } from './connections/sp-metadata.router.js';
import type { TenantAdminResolver } from './admin/auth.js';
import type { Config } from './config/config.js';
import type { Secrets } from './config/secrets.js';
import type { Database } from './db/database.js';
import type { NotificationBus } from './db/notification-bus.js';
import { jsonErrorHandler, jsonNotFound, retryAfterOnUnavailable } from './http/error-handler.js';
import { healthRouter } from './http/health.router.js';
import { siteRouter } from './http/site.router.js';
import { createHttpMetrics, type ServiceMetrics } from './http/metrics.js';
import { traceRequests } from './observability/request-spans.js';
import { requestId } from './http/request-context.js';
import { requestLogger } from './http/request-log.js';
import { scimErrorHandler, scimRouter } from './scim/scim.router.js';
import type { AuthorizationCompleter, LoginFlow } from './sso/login-handoff.js';
import { createSso, type UnsolicitedLoginCompleter } from './sso/sso.js';
import { createAuthorizationCompleter } from './tokens/authorize/completer.js';
import { oauthProviderRouter } from './tokens/oauth.router.js';
import { loginDiscoveryLimiter } from './tokens/rate-limits.js';
import { useCounterKey } from './http/rate-limit-store.js';
import { createSigningKeyStore, type SigningKeyStore } from './tokens/keys/key-store.js';
import { createTenantAdminResolver } from './admin/tenant-admin-token.js';
import { portalRouter } from './portal/portal.router.js';
import { withPortalTestLogins } from './portal/test-login.js';
import { outboundPolicy } from './outbound/pinned-request.js';
import { createTxtResolver } from './tenants/dns-verifier.js';

export interface AppDeps {
  config: Config;
  db: Database;
  secrets: Secrets;
  logger: Logger;
  /** This app's Prometheus registry; main.ts passes one with process, pool and outbox metrics. */
  metrics?: ServiceMetrics;
  /** Tenant admins' bearer tokens -> principal (filled by the sign-in issue's token service). */
  resolveTenantAdmin?: TenantAdminResolver;
  /** Token signing keys + JWKS (src/tokens); one per process, made here when not given. */
  signingKeys?: SigningKeyStore;
  /** The IdP side of a login (src/sso), given the completer that answers the app. */
  createLoginFlow?: (completer: AuthorizationCompleter) => LoginFlow;
  /** Replaces the completer the IdP side hands finished logins to (tests of src/sso alone). */
  authorizationCompleter?: AuthorizationCompleter & Partial<UnsolicitedLoginCompleter>;
  /** This node's LISTEN/NOTIFY connection (src/db/notification-bus.ts); SCIM caches verified tokens only with it. */
  notifications?: NotificationBus;
}

/** JSON bodies, including SCIM's media type (RFC 7644 §3.1). */
const JSON_TYPES = ['application/json', 'application/scim+json', 'application/*+json'];

/** The whole HTTP surface. main.ts and tests build it the same way. */
export function createApp(deps: AppDeps): Express {
  const { config, db, logger } = deps;
  const metrics = deps.metrics ?? createHttpMetrics();
  const app = express();
  app.disable('x-powered-by');
  // Before any limiter is built: the shared counters key their rows by HMAC under the master key.
  useCounterKey(db, deps.secrets.masterKey);
  app.set('trust proxy', config.trustProxy);

  app.use(requestId);
  app.use(retryAfterOnUnavailable);
  app.use(requestLogger(logger));
  app.use(metrics.middleware);
  // Our own spans for SCIM operations and the IdP answers (no-ops unless tracing started).
  app.use(traceRequests);
  app.use(helmet());
  // Every browser page's brand, the shared stylesheet and script, and the home page `/` (issue 15).
  app.use(siteRouter(config));
  // SCIM reads its own bodies (any JSON or no Content-Type) and routes before parsing (405 on discovery).
  app.use(
    '/scim/v2/:tenantId',
    scimRouter({ config, db, notifications: deps.notifications }),
    scimErrorHandler,
  );
  app.use(express.json({ limit: config.bodyLimit, type: JSON_TYPES }));
  app.use(express.urlencoded({ limit: config.bodyLimit, extended: false }));

  const signingKeys = deps.signingKeys ?? createSigningKeyStore(config, db, deps.secrets.masterKey);
  app.use(
    healthRouter(db, metrics, {
      metricsToken: config.metrics.token,
      notifications: deps.notifications,
      signingKeys,
    }),
  );
  const resolveTenantAdmin =
    deps.resolveTenantAdmin ?? createTenantAdminResolver({ config, db, keys: signingKeys });
  app.use('/admin/v1', adminRouter({ config, db, secrets: deps.secrets, resolveTenantAdmin, signingKeys }));
  const completer = createAuthorizationCompleter({ config, db, metrics: metrics.logins });
  const sso = createSso({
    config,
    db,
    secrets: deps.secrets,
    // Issue 15: the portal's test sign-ins end on the portal; every other login as before.
    completer: withPortalTestLogins(deps.authorizationCompleter ?? completer, deps.secrets.masterKey),
    metrics: metrics.logins,
  });
  const loginFlow = deps.createLoginFlow?.(completer) ?? sso.loginFlow;
  // The Admin Portal (issue 15): server-rendered pages over the admin services; test sign-ins through sso.
  app.use(
    portalRouter({
      config,
      db,
      masterKey: deps.secrets.masterKey,
      fetch: outboundPolicy(config.outboundFetch),
      dns: createTxtResolver({ servers: config.dnsServers, timeoutMs: config.dnsTimeoutMs }),
      loginFlow: sso.loginFlow,
    }),
  );
  app.use(oauthProviderRouter({ config, db, keys: signingKeys, loginFlow }));
  // Home realm discovery probes (which domains have SSO), per address (src/tokens/rate-limits.ts).
  app.use('/login', loginDiscoveryLimiter(config, db));
  app.use(sso.router);

  app.use(
    spMetadataRouter({
      db,
      baseUrl: config.baseUrl,
      masterKey: deps.secrets.masterKey,
      spSigningCertificate: sso.spSigningCertificate,
    }),
  );

  app.use(jsonNotFound);
  app.use(jsonErrorHandler);
  return app;
}
