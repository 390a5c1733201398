import express, { type Express } from 'express';
import helmet from 'helmet';
import { pinoHttp } from 'pino-http';
import type { Logger } from 'pino';
import { adminRouter } from './admin/admin.router.js';
import type { TenantAdminResolver } from './admin/auth.js';
import type { Config } from './config/config.js';
import type { Secrets } from './config/secrets.js';
import type { Database } from './db/database.js';
import { jsonErrorHandler, jsonNotFound } from './http/error-handler.js';
import { healthRouter } from './http/health.router.js';
import { redactUrl } from './http/logger.js';
import { createHttpMetrics, type HttpMetrics } from './http/metrics.js';
import { requestId } from './http/request-context.js';

export interface AppDeps {
  config: Config;
  db: Database;
  secrets: Secrets;
  logger: Logger;
  metrics?: HttpMetrics;
  /** Tenant admins' bearer tokens -> principal (filled by the sign-in issue's token service). */
  resolveTenantAdmin?: TenantAdminResolver;
}

/** JSON bodies, including SCIM's media type (RFC 7644 §3.1). */
const JSON_TYPES = ['application/json', 'application/scim+json', 'application/*+json'];

/** The whole HTTP surface. main.ts and tests build it the same way. */
export function createApp(deps: AppDeps): Express {
  const { config, db, logger } = deps;
  const metrics = deps.metrics ?? createHttpMetrics();
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', config.trustProxy);

  app.use(requestId);
  app.use(
    pinoHttp({
      logger,
      genReqId: (req) => (req as express.Request).requestId,
      customProps: (req) => ({
        request_id: (req as express.Request).requestId,
        tenant_id: (req as express.Request).tenantId,
      }),
      serializers: {
        req: (req: { method: string; url: string; id: unknown }) => ({
          id: req.id,
          method: req.method,
          url: redactUrl(req.url),
        }),
      },
      autoLogging: { ignore: (req) => req.url === '/healthz' || req.url === '/metrics' },
    }),
  );
  app.use(metrics.middleware);
  app.use(helmet());
  app.use(express.json({ limit: config.bodyLimit, type: JSON_TYPES }));
  app.use(express.urlencoded({ limit: config.bodyLimit, extended: false }));

  app.use(healthRouter(db, metrics));
  app.use(
    '/admin/v1',
    adminRouter({ config, db, secrets: deps.secrets, resolveTenantAdmin: deps.resolveTenantAdmin }),
  );

  app.use(jsonNotFound);
  app.use(jsonErrorHandler);
  return app;
}
