import express from 'express';
import request from 'supertest';
import { createDataSource } from '../../src/db/data-source.js';
import { Database } from '../../src/db/database.js';
import { ENTITIES } from '../../src/entities.js';
import { healthRouter } from '../../src/http/health.router.js';
import { createHttpMetrics } from '../../src/http/metrics.js';
import { createLogger } from '../../src/http/logger.js';
import { buildTestApp } from '../support/app.js';
import { freshSecrets } from '../support/gatehouse-node.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';

/**
 * /readyz is honest (issue 11, "Readiness is honest"): a node that cannot open
 * its signing keys — another master key than the one they were sealed with —
 * is not ready, instead of answering 500 to every token request.
 */
let t: TestDatabase;
beforeAll(async () => {
  t = await createTestDatabase();
});
afterAll(() => t.close());

it('is ready with the master key the signing keys were sealed with, and not with another one', async () => {
  const first = buildTestApp(t);
  await request(first.app).get('/readyz').expect(200, { status: 'ready' });
  // The keys now exist, sealed under the first node's master key.
  await request(first.app).get('/.well-known/jwks.json').expect(200);

  const wrongKey = buildTestApp(t, {}, { secrets: freshSecrets() }); // another master key
  const res = await request(wrongKey.app).get('/readyz').expect(503);
  expect(res.body).toEqual({ status: 'unavailable', reason: 'signing_keys_unreadable' });
  // Liveness is not readiness.
  await request(wrongKey.app).get('/healthz').expect(200);
});

it('is not ready when a new login as the runtime role fails, even while pooled connections still work', async () => {
  const ds = createDataSource({ url: t.appUrl, entities: ENTITIES, poolSize: 2 });
  await ds.initialize();
  const db = new Database(ds);
  const app = express();
  const log = createLogger('silent');
  app.use((req, _res, next) => {
    req.log = log;
    next();
  });
  app.use(healthRouter(db, createHttpMetrics()));
  try {
    await request(app).get('/readyz').expect(200, { status: 'ready' });
    // The role's credentials as another node (or an operator) changed them: new logins fail.
    const wrong = new URL(t.appUrl);
    wrong.password = 'not-the-password';
    Object.assign(ds.options, { url: wrong.toString() });
    await db.ping(); // the warm pool still answers…
    const res = await request(app).get('/readyz').expect(503); // …but readiness asks for a fresh login
    expect(res.body).toEqual({ status: 'unavailable', reason: 'database_unreachable' });
  } finally {
    await db.close();
  }
});
