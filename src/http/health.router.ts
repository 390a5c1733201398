import { createHash, timingSafeEqual } from 'node:crypto';
import { Router, type RequestHandler } from 'express';
import type { Database } from '../db/database.js';
import type { NotificationBus } from '../db/notification-bus.js';
import type { HttpMetrics } from './metrics.js';

const digest = (value: string) => createHash('sha256').update(value, 'utf8').digest();

/**
 * GATEHOUSE_METRICS_TOKEN: when set, a scrape must present it as a bearer
 * token (RFC 6750 §2.1). Both sides are hashed first, so the comparison is
 * constant-time whatever the presented length.
 */
export function metricsAuthorization(token: string | undefined): RequestHandler {
  if (token === undefined) return (_req, _res, next) => next();
  const expected = digest(token);
  return (req, res, next) => {
    const m = /^Bearer ([\x21-\x7e]+)$/i.exec(req.header('authorization') ?? '');
    if (m?.[1] !== undefined && timingSafeEqual(digest(m[1]), expected)) return next();
    // RFC 6750 §3: no error code when no credentials were presented.
    res.setHeader(
      'WWW-Authenticate',
      m ? 'Bearer realm="metrics", error="invalid_token"' : 'Bearer realm="metrics"',
    );
    res.status(401).json({
      code: 'unauthorized',
      message: 'A valid metrics bearer token is required',
      request_id: req.requestId,
    });
  };
}

/** How long the LISTEN connection may be down before the node says it is not ready. */
export const LISTEN_GRACE_MS = 10_000;

export function healthRouter(
  db: Database,
  metrics: HttpMetrics,
  options: {
    metricsToken?: string;
    notifications?: Pick<NotificationBus, 'downForMs'>;
    /** The node's token signing keys: readiness loads (and so decrypts) them, cached like any use. */
    signingKeys?: { jwks(): Promise<unknown> };
  } = {},
): Router {
  const router = Router();

  // Liveness: the process answers; says nothing of its dependencies.
  router.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });

  // Readiness: the database answers, every known migration is applied, and the LISTEN connection
  // (revocations from other nodes) has not been down beyond a grace period.
  router.get('/readyz', async (req, res) => {
    if ((options.notifications?.downForMs() ?? 0) > LISTEN_GRACE_MS) {
      res.status(503).json({ status: 'unavailable', reason: 'listen_connection_down' });
      return;
    }
    try {
      // A fresh login, not a warm pooled connection (db.canConnect).
      await db.canConnect();
      const pending = await db.pendingMigrations();
      if (pending.length > 0) {
        res.status(503).json({ status: 'unavailable', reason: 'migrations_pending', pending });
        return;
      }
      // A node that cannot open its signing keys (another master key) would answer 500 to every
      // token request; db/installation.ts refuses such a start, and this says so if it ever happens.
      try {
        await options.signingKeys?.jwks();
      } catch (err) {
        req.log.error({ err }, 'readiness: the signing keys cannot be opened');
        res.status(503).json({ status: 'unavailable', reason: 'signing_keys_unreadable' });
        return;
      }
      res.json({ status: 'ready' });
    } catch (err) {
      req.log.warn({ err }, 'readiness check failed');
      res.status(503).json({ status: 'unavailable', reason: 'database_unreachable' });
    }
  });

  router.get('/metrics', metricsAuthorization(options.metricsToken), async (_req, res) => {
    res.setHeader('Content-Type', metrics.registry.contentType);
    res.send(await metrics.registry.metrics());
  });

  return router;
}
