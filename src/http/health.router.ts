import { Router } from 'express';
import type { Database } from '../db/database.js';
import type { HttpMetrics } from './metrics.js';

export function healthRouter(db: Database, metrics: HttpMetrics): Router {
  const router = Router();

  // Liveness: the process answers; says nothing of its dependencies.
  router.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });

  // Readiness: the database answers and every known migration is applied.
  router.get('/readyz', async (req, res) => {
    try {
      await db.ping();
      const pending = await db.pendingMigrations();
      if (pending.length > 0) {
        res.status(503).json({ status: 'unavailable', reason: 'migrations_pending', pending });
        return;
      }
      res.json({ status: 'ready' });
    } catch (err) {
      req.log.warn({ err }, 'readiness check failed');
      res.status(503).json({ status: 'unavailable', reason: 'database_unreachable' });
    }
  });

  router.get('/metrics', async (_req, res) => {
    res.setHeader('Content-Type', metrics.registry.contentType);
    res.send(await metrics.registry.metrics());
  });

  return router;
}
