import request from 'supertest';
import { buildTestApp } from '../support/app.js';
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

  const wrongKey = buildTestApp(t); // fresh secrets: another master key
  const res = await request(wrongKey.app).get('/readyz').expect(503);
  expect(res.body).toEqual({ status: 'unavailable', reason: 'signing_keys_unreadable' });
  // Liveness is not readiness.
  await request(wrongKey.app).get('/healthz').expect(200);
});
