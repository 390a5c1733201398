import request from 'supertest';
import { buildTestApp, type TestApp } from '../support/app.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';

let t: TestDatabase;
let a: TestApp;
beforeAll(async () => {
  t = await createTestDatabase();
  a = buildTestApp(t);
});
afterAll(() => t.close());

describe('HTTP skeleton', () => {
  it('echoes a well-formed X-Request-Id and makes one otherwise', async () => {
    const given = await request(a.app).get('/healthz').set('X-Request-Id', 'req-123');
    expect(given.headers['x-request-id']).toBe('req-123');
    const bad = await request(a.app).get('/healthz').set('X-Request-Id', 'no spaces\tor tabs');
    expect(bad.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('answers readiness when the database is reachable and migrated', async () => {
    const res = await request(a.app).get('/readyz');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ status: 'ready' });
  });

  it('answers 503 while a known migration is not applied', async () => {
    // The last migration's row goes away (as on a database an older release migrated), then comes back.
    const [last] = await t.asOwner<{ id: number; timestamp: string; name: string }>(
      'SELECT id, timestamp, name FROM gatehouse_migrations ORDER BY id DESC LIMIT 1',
    );
    await t.asOwner('DELETE FROM gatehouse_migrations WHERE id = $1', [last!.id]);
    try {
      const res = await request(a.app).get('/readyz');
      expect(res.status).toBe(503);
      expect(res.body).toEqual({
        status: 'unavailable',
        reason: 'migrations_pending',
        pending: [last!.name],
      });
    } finally {
      await t.asOwner('INSERT INTO gatehouse_migrations (id, timestamp, name) VALUES ($1, $2, $3)', [
        last!.id,
        last!.timestamp,
        last!.name,
      ]);
    }
    expect((await request(a.app).get('/readyz')).status).toBe(200);
  });

  it('answers unknown paths with a JSON 404', async () => {
    const res = await request(a.app).get('/no/such/thing');
    expect(res.status).toBe(404);
    expect(res.body).toMatchObject({ code: 'not_found', request_id: res.headers['x-request-id'] });
  });

  it('answers malformed JSON with 400 and no parser message', async () => {
    const res = await request(a.app).post('/anything').set('Content-Type', 'application/json').send('{"a":');
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ code: 'bad_request', message: 'Malformed JSON in the request body' });
    expect(JSON.stringify(res.body)).not.toMatch(/Unexpected|SyntaxError|at /);
  });

  it('parses application/scim+json as JSON and enforces the body limit', async () => {
    const bad = await request(a.app).post('/x').set('Content-Type', 'application/scim+json').send('{oops');
    expect(bad.status).toBe(400);
    const big = await request(a.app)
      .post('/x')
      .set('Content-Type', 'application/json')
      .send(JSON.stringify({ a: 'x'.repeat(1_100_000) }));
    expect(big.status).toBe(413);
    expect(big.body.code).toBe('payload_too_large');
  });

  it('sets security headers', async () => {
    const res = await request(a.app).get('/healthz');
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.headers['x-frame-options']).toBe('SAMEORIGIN');
    expect(res.headers['x-powered-by']).toBeUndefined();
  });

  it('exports request counts and latency by route and status', async () => {
    await request(a.app).get('/readyz');
    const res = await request(a.app).get('/metrics');
    expect(res.status).toBe(200);
    expect(res.text).toMatch(
      /gatehouse_http_requests_total\{method="GET",route="\/readyz",status_code="200"\} \d+/,
    );
    expect(res.text).toMatch(
      /gatehouse_http_request_duration_seconds_bucket\{le="0.005",method="GET",route="\/readyz"/,
    );
  });

  it('keeps credentials, codes and SAML messages out of the logs', async () => {
    await request(a.app)
      .get('/oauth/callback?code=SECRET_CODE_1&state=s&SAMLResponse=PHNhbWw%2B')
      .set('Authorization', 'Bearer SECRET_BEARER_2')
      .set('Cookie', 'sid=SECRET_COOKIE_3');
    const logs = a.logs();
    expect(logs).toMatch(/\/oauth\/callback/);
    expect(logs).not.toMatch(/SECRET_CODE_1|SECRET_BEARER_2|SECRET_COOKIE_3|PHNhbWw/);
    expect(logs).toMatch(/"request_id":"[0-9a-f-]{36}"/);
  });
});
