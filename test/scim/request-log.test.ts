import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import request from 'supertest';
import { scimPathTemplate } from '../../src/scim/scim-request-log.js';
import { runCleanup } from '../../src/sessions/cleanup.js';
import { buildAdminTestApp, type AdminTestApp } from '../support/admin.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { fuzzRuns, fuzzSeed } from './hardening-support.js';
import { GROUP_SCHEMA, newUser, scimClient, waitUntil, type ScimClient } from './support.js';

/**
 * Issue 10, "provisioning log for support": every authenticated SCIM request
 * leaves one scim_requests row (method, path template, status, scimType,
 * duration, resource, token, request id) and nothing that names a person or a
 * secret; the tenant's admin lists it at /admin/v1/tenants/{id}/scim-requests,
 * newest first, by status, with a cursor. The app is built as main.ts builds
 * it; rows are read through the admin API or, for the "whole row as text"
 * checks, under the tenant's RLS context.
 */

let t: TestDatabase;
let a: AdminTestApp;
let acme: string;
let globex: string;
let acmeToken: { id: string; token: string };
let globexToken: { id: string; token: string };
let c: ScimClient;

interface LoggedRequest {
  id: string;
  created_at: string;
  method: string;
  path: string;
  status: number;
  scim_type: string | null;
  duration_ms: number;
  resource_type: string | null;
  resource_id: string | null;
  scim_token_id: string;
  request_id: string;
}

async function scimToken(tenantId: string): Promise<{ id: string; token: string }> {
  const res = await a.op().post(`/admin/v1/tenants/${tenantId}/scim-tokens`).send({ description: 'idp' });
  expect(res.status).toBe(201);
  return res.body as { id: string; token: string };
}

beforeAll(async () => {
  t = await createTestDatabase();
  a = buildAdminTestApp(t);
  acme = await a.createTenant('acme-log', 'Acme');
  globex = await a.createTenant('globex-log', 'Globex');
  acmeToken = await scimToken(acme);
  globexToken = await scimToken(globex);
  c = scimClient(a.app, acme, acmeToken.token);
});
afterAll(() => t.close());

/** Every row of the tenant's log, newest first, through the admin API as the operator. */
async function logOf(tenantId: string, query = ''): Promise<LoggedRequest[]> {
  const rows: LoggedRequest[] = [];
  let cursor: string | null = null;
  do {
    const qs: string = `?limit=100${query}${cursor ? `&cursor=${cursor}` : ''}`;
    const res = await a.op().get(`/admin/v1/tenants/${tenantId}/scim-requests${qs}`);
    expect(res.status).toBe(200);
    const body = res.body as { data: LoggedRequest[]; next_cursor: string | null };
    rows.push(...body.data);
    cursor = body.next_cursor;
  } while (cursor);
  return rows;
}

/** The rows carrying these request ids, once all of them are written (after the responses). */
async function logged(tenantId: string, requestIds: string[]): Promise<Map<string, LoggedRequest>> {
  let found = new Map<string, LoggedRequest>();
  await waitUntil(
    async () => {
      found = new Map((await logOf(tenantId)).map((r) => [r.request_id, r]));
      return requestIds.every((id) => found.has(id));
    },
    `log rows ${requestIds.join(', ')}`,
  );
  return found;
}

/** Whole rows as PostgreSQL prints them, under the tenant's RLS context. */
const rowsAsText = (tenantId: string) =>
  t.db.withTenant(tenantId, (em) =>
    em
      .query<{ row: string }[]>('SELECT r::text AS row FROM scim_requests r')
      .then((rows) => rows.map((r) => r.row)),
  );

const rid = (label: string) => `${label}-${randomUUID()}`;

describe('SCIM request log', () => {
  it('logs created, refused, missing and conflicting requests with method, path template, status, scimType, resource and token', async () => {
    const ids = {
      create: rid('create'),
      badFilter: rid('bad-filter'),
      missing: rid('missing'),
      conflict: rid('conflict'),
      groups: rid('groups'),
    };
    const created = await c.post('/Users', newUser('ann.log@acme.test')).set('X-Request-Id', ids.create);
    expect(created.status).toBe(201);
    const userId = (created.body as { id: string }).id;
    const badFilter = await c.get('/Users?filter=userName%20eq').set('X-Request-Id', ids.badFilter);
    expect([badFilter.status, badFilter.body.scimType]).toEqual([400, 'invalidFilter']);
    const missingId = randomUUID();
    const missing = await c.get(`/Users/${missingId}`).set('X-Request-Id', ids.missing);
    expect(missing.status).toBe(404);
    const conflict = await c.post('/Users', newUser('ann.log@acme.test')).set('X-Request-Id', ids.conflict);
    expect([conflict.status, conflict.body.scimType]).toEqual([409, 'uniqueness']);
    expect((await c.get('/Groups').set('X-Request-Id', ids.groups)).status).toBe(200);

    const rows = await logged(acme, Object.values(ids));
    const common = { scim_token_id: acmeToken.id };
    expect(rows.get(ids.create)).toMatchObject({
      ...common,
      method: 'POST',
      path: '/Users',
      status: 201,
      scim_type: null,
      resource_type: 'User',
      resource_id: userId,
    });
    expect(rows.get(ids.badFilter)).toMatchObject({
      ...common,
      method: 'GET',
      path: '/Users',
      status: 400,
      scim_type: 'invalidFilter',
      resource_id: null,
    });
    expect(rows.get(ids.missing)).toMatchObject({
      ...common,
      method: 'GET',
      path: '/Users/{id}',
      status: 404,
      resource_type: 'User',
      resource_id: missingId,
    });
    expect(rows.get(ids.conflict)).toMatchObject({
      ...common,
      method: 'POST',
      path: '/Users',
      status: 409,
      scim_type: 'uniqueness',
      resource_id: null,
    });
    expect(rows.get(ids.groups)).toMatchObject({ path: '/Groups', status: 200, resource_type: 'Group' });
    for (const row of rows.values()) {
      expect(Number.isInteger(row.duration_ms) && row.duration_ms >= 0).toBe(true);
      expect(Object.keys(row).sort()).toEqual(
        [
          'created_at',
          'duration_ms',
          'id',
          'method',
          'path',
          'request_id',
          'resource_id',
          'resource_type',
          'scim_token_id',
          'scim_type',
          'status',
        ].sort(),
      );
    }
    // Newest first.
    const all = await logOf(acme);
    const times = all.map((r) => Date.parse(r.created_at));
    expect([...times].sort((x, y) => y - x)).toEqual(times);
  });

  it('never stores a userName, email, filter value, path as sent or token in a row', async () => {
    const email = `secret.person+${randomUUID().slice(0, 6)}@acme.test`;
    const requestIds = [rid('pii-create'), rid('pii-filter'), rid('pii-path'), rid('pii-put')];
    const created = await c
      .post('/Users', newUser(email, { displayName: 'Secret Person' }))
      .set('X-Request-Id', requestIds[0] ?? '');
    expect(created.status).toBe(201);
    const filter = encodeURIComponent(`userName eq "${email}"`);
    expect((await c.get(`/Users?filter=${filter}`).set('X-Request-Id', requestIds[1] ?? '')).status).toBe(
      200,
    );
    expect((await c.get(`/Users/${email}`).set('X-Request-Id', requestIds[2] ?? '')).status).toBe(404);
    const put = await c
      .put(`/Users/${(created.body as { id: string }).id}`, newUser(email, { displayName: 'Still Secret' }))
      .set('X-Request-Id', requestIds[3] ?? '');
    expect(put.status).toBe(200);
    await logged(acme, requestIds);

    const rows = (await rowsAsText(acme)).filter((row) => requestIds.some((id) => row.includes(id)));
    expect(rows).toHaveLength(4);
    for (const needle of [
      email,
      'secret.person',
      'Secret Person',
      'Still Secret',
      acmeToken.token,
      'gh_scim_',
    ])
      expect(rows.filter((row) => row.toLowerCase().includes(needle.toLowerCase()))).toEqual([]);
  });

  it('keeps the log row of a failed request whose changes rolled back', async () => {
    const first = await c.post('/Users', newUser('first.rb@acme.test')).expect(201);
    const second = await c.post('/Users', newUser('second.rb@acme.test')).expect(201);
    const secondId = (second.body as { id: string }).id;
    const before = await t.db.withTenant(acme, (em) =>
      em.query<unknown[]>('SELECT u::text FROM users u WHERE id = $1', [secondId]),
    );
    const auditBefore = await t.db.withTenant(acme, (em) =>
      em.query<{ n: number }[]>('SELECT count(*)::int AS n FROM audit_events'),
    );
    const requestId = rid('rolled-back');
    // Every attribute replaced, and the userName of another person: the uniqueness check fails in the write.
    const res = await c
      .put(
        `/Users/${secondId}`,
        newUser('first.rb@acme.test', { displayName: 'Replaced', name: { givenName: 'X', familyName: 'Y' } }),
      )
      .set('X-Request-Id', requestId);
    expect([res.status, res.body.scimType]).toEqual([409, 'uniqueness']);
    expect(first.status).toBe(201);

    const rows = await logged(acme, [requestId]);
    expect(rows.get(requestId)).toMatchObject({
      method: 'PUT',
      path: '/Users/{id}',
      status: 409,
      scim_type: 'uniqueness',
      resource_id: secondId,
    });
    expect(
      await t.db.withTenant(acme, (em) => em.query('SELECT u::text FROM users u WHERE id = $1', [secondId])),
    ).toEqual(before);
    expect(
      await t.db.withTenant(acme, (em) => em.query('SELECT count(*)::int AS n FROM audit_events')),
    ).toEqual(auditBefore);
  });

  it('filters by status class and code, and pages newest first with a cursor', async () => {
    const requestIds = [rid('page-a'), rid('page-b'), rid('page-c')];
    for (const id of requestIds) await c.get(`/Users/${randomUUID()}`).set('X-Request-Id', id).expect(404);
    await logged(acme, requestIds);

    const all = await logOf(acme);
    const errors = await logOf(acme, '&status=4xx');
    expect(errors.length).toBeGreaterThanOrEqual(3);
    expect(errors.every((r) => r.status >= 400 && r.status < 500)).toBe(true);
    expect(errors).toEqual(all.filter((r) => r.status >= 400 && r.status < 500));
    const notFound = await logOf(acme, '&status=404');
    expect(notFound).toEqual(all.filter((r) => r.status === 404));
    expect(await logOf(acme, '&status=5xx')).toEqual([]);

    // Pages of 2 walk the same rows, once each, in the same order.
    const paged: LoggedRequest[] = [];
    let cursor: string | null = null;
    do {
      const qs: string = `?limit=2${cursor ? `&cursor=${cursor}` : ''}`;
      const res = await a.op().get(`/admin/v1/tenants/${acme}/scim-requests${qs}`).expect(200);
      const body = res.body as { data: LoggedRequest[]; next_cursor: string | null; limit: number };
      expect(body.data.length).toBeLessThanOrEqual(2);
      expect(body.limit).toBe(2);
      paged.push(...body.data);
      cursor = body.next_cursor;
    } while (cursor);
    expect(paged).toEqual(all);

    for (const query of ['?cursor=bm90LWEtY3Vyc29y', '?status=4x', '?status=600', '?limit=0', '?limit=101']) {
      const res = await a.op().get(`/admin/v1/tenants/${acme}/scim-requests${query}`);
      expect({ query, status: res.status, code: res.body.code }).toEqual({
        query,
        status: 400,
        code: 'bad_request',
      });
    }
  });

  it('logs nothing for unauthenticated requests, and nothing when the log is turned off', async () => {
    const wrongToken = rid('wrong-token');
    const res = await request(a.app)
      .get(`/scim/v2/${acme}/Users`)
      .set('Authorization', `Bearer ${globexToken.token}`)
      .set('X-Request-Id', wrongToken);
    expect(res.status).toBe(401);

    const off = buildAdminTestApp(t, { GATEHOUSE_SCIM_REQUEST_LOG_DAYS: '0' });
    const unlogged = rid('log-off');
    await scimClient(off.app, acme, acmeToken.token).get('/Groups').set('X-Request-Id', unlogged).expect(200);
    const later = rid('after');
    await c.get('/Groups').set('X-Request-Id', later).expect(200);

    const rows = await logged(acme, [later]);
    expect(rows.has(wrongToken)).toBe(false);
    expect(rows.has(unlogged)).toBe(false);
    const globexRows = await logOf(globex);
    expect(globexRows.filter((r) => r.request_id === wrongToken)).toEqual([]);
  });

  it("answers 404 to tenant B's admin reading tenant A's SCIM request log, and shows B none of A's rows", async () => {
    const acmeOnly = rid('acme-only');
    await c
      .post('/Groups', { schemas: [GROUP_SCHEMA], displayName: 'Acme staff' })
      .set('X-Request-Id', acmeOnly);
    const globexOnly = rid('globex-only');
    await scimClient(a.app, globex, globexToken.token)
      .get('/Users')
      .set('X-Request-Id', globexOnly)
      .expect(200);
    await logged(acme, [acmeOnly]);
    await logged(globex, [globexOnly]);

    const globexAdmin = a.tenantAdmin(globex, randomUUID());
    for (const query of ['', '?status=4xx', '?limit=100']) {
      const res = await globexAdmin.get(`/admin/v1/tenants/${acme}/scim-requests${query}`);
      expect([res.status, res.body.code]).toEqual([404, 'not_found']);
      expect(res.text).not.toContain(acmeOnly);
    }
    // B's own log holds B's rows only, also on a page that follows a cursor.
    const own = await globexAdmin.get(`/admin/v1/tenants/${globex}/scim-requests?limit=1`).expect(200);
    const ownRows = (own.body as { data: LoggedRequest[] }).data;
    expect(ownRows.map((r) => r.scim_token_id)).toEqual([globexToken.id]);
    const acmeRows = await logOf(acme);
    const acmeRowIds = new Set(acmeRows.map((r) => r.id));
    expect((await logOf(globex)).filter((r) => acmeRowIds.has(r.id) || r.request_id === acmeOnly)).toEqual(
      [],
    );
    // A cursor taken from A's log, replayed on B's, still shows only B's rows.
    const acmePage = await a.op().get(`/admin/v1/tenants/${acme}/scim-requests?limit=1`).expect(200);
    const acmeCursor = (acmePage.body as { next_cursor: string }).next_cursor;
    const replay = await globexAdmin
      .get(`/admin/v1/tenants/${globex}/scim-requests?cursor=${acmeCursor}`)
      .expect(200);
    for (const row of (replay.body as { data: LoggedRequest[] }).data)
      expect(acmeRowIds.has(row.id)).toBe(false);
  });

  it('writes rows that expire after GATEHOUSE_SCIM_REQUEST_LOG_DAYS and that the cleanup sweep removes', async () => {
    const requestId = rid('retention');
    await c.get('/Groups').set('X-Request-Id', requestId).expect(200);
    await logged(acme, [requestId]);
    const [kept] = await t.db.withTenant(acme, (em) =>
      em.query<{ days: number }[]>(
        `SELECT extract(epoch FROM expires_at - created_at) / 86400 AS days FROM scim_requests WHERE request_id = $1`,
        [requestId],
      ),
    );
    expect(Number(kept?.days)).toBe(14);

    // Two old rows, written as the middleware writes them, but 20 days ago.
    const old = [rid('old-1'), rid('old-2')];
    await t.db.withTenant(acme, (em) =>
      em.query(
        `INSERT INTO scim_requests (tenant_id, created_at, expires_at, method, path, status, duration_ms,
                                    scim_token_id, request_id)
         SELECT $1, now() - interval '20 days', now() - interval '6 days', 'GET', '/Users', 200, 3, $2, x
           FROM unnest($3::text[]) x`,
        [acme, acmeToken.id, old],
      ),
    );
    const listed = new Set((await logOf(acme)).map((r) => r.request_id));
    expect(old.filter((id) => listed.has(id))).toEqual([]);

    const counts = await runCleanup(
      { db: t.db, graceMs: 3_600_000, outboxRetentionMs: 7 * 86_400_000, batchSize: 1 },
      new Date(),
    );
    expect(counts.scim_requests).toBe(2);
    const remaining = await t.db.withTenant(acme, (em) =>
      em.query<{ request_id: string }[]>('SELECT request_id FROM scim_requests'),
    );
    const ids = new Set(remaining.map((r) => r.request_id));
    expect(old.filter((id) => ids.has(id))).toEqual([]);
    expect(ids.has(requestId)).toBe(true);
  });
});

describe('SCIM request log failures', () => {
  it('answers as usual and warns with request ids only when the row cannot be written', async () => {
    const email = `unwritten.${randomUUID().slice(0, 6)}@acme.test`;
    const requestId = rid('unwritable');
    // The runtime role loses INSERT: every write of the log fails in PostgreSQL.
    await t.asOwner('REVOKE INSERT ON scim_requests FROM gatehouse_app');
    try {
      const res = await c.post('/Users', newUser(email)).set('X-Request-Id', requestId);
      expect(res.status).toBe(201);
      await waitUntil(
        () => a.logs().includes('SCIM request log write failed'),
        'the warning of the failed write',
      );
    } finally {
      await t.asOwner('GRANT INSERT ON scim_requests TO gatehouse_app');
    }
    const warning = a
      .logs()
      .split('\n')
      .filter((line) => line.includes('SCIM request log write failed'))
      .find((line) => line.includes(requestId));
    expect(warning).toBeDefined();
    expect(JSON.parse(warning ?? '{}')).toMatchObject({ level: 40, code: '42501' });
    expect(warning).not.toContain(email);
    expect(warning).not.toContain(acmeToken.token);
    // The person was created all the same, and the node still answers.
    const found = await c.get(`/Users?filter=${encodeURIComponent(`userName eq "${email}"`)}`).expect(200);
    expect((found.body as { totalResults: number }).totalResults).toBe(1);
    expect((await rowsAsText(acme)).filter((row) => row.includes(requestId))).toEqual([]);
  });
});

describe('SCIM request log paths (property)', () => {
  const segment = fc.oneof(
    fc.constantFrom('Users', 'groups', 'USERS', '.search', 'Bulk', 'Schemas', 'Me', 'ResourceTypes', 'x'),
    fc.uuid(),
    fc.emailAddress(),
    // Dot segments would leave /scim/v2/{tenantId} before the request is sent.
    fc
      .string({ maxLength: 20 })
      .filter((s) => s !== '.' && s !== '..')
      .map((s) => encodeURIComponent(s)),
  );
  // Every value carries an `@`, which no row may hold: a leak cannot hide behind a coincidence.
  const queryValue = fc.oneof(
    fc.emailAddress().map((e) => `userName eq "${e}"`),
    fc.stringMatching(/^[A-Za-z0-9._ -]{1,12}@[A-Za-z0-9._ -]{1,12}$/),
  );
  const scimRequest = fc.record({
    segments: fc.array(segment, { minLength: 0, maxLength: 4 }),
    query: fc.array(
      fc.tuple(fc.constantFrom('filter', 'attributes', 'userName', 'q', 'count', 'x'), queryValue),
      { minLength: 1, maxLength: 3 },
    ),
  });
  const TEMPLATE =
    /^\/(?:\{unknown\}|(?:Users|Groups|Bulk|Me|ServiceProviderConfig|Schemas|ResourceTypes|\.search)(?:\/(?:\{id\}|\.search)(?:\/\{…\})?)?)?$/;

  it('reduces any path and query to a template with no query and no client string', () => {
    fc.assert(
      fc.property(scimRequest, ({ segments, query }) => {
        const qs = query.map(([k, v]) => `${k}=${encodeURIComponent(v)}`).join('&');
        const target = scimPathTemplate(`/${segments.join('/')}?${qs}`);
        expect(target.path).toMatch(TEMPLATE);
        for (const [, v] of query) expect(target.path).not.toContain(v);
        expect(target.path).not.toMatch(/@|%40|\?/i);
        if (target.resourceId !== null) expect(segments[1]?.toLowerCase()).toBe(target.resourceId);
      }),
      { numRuns: fuzzRuns(1000), seed: fuzzSeed(0x10c) },
    );
  });

  it('never puts the query string of a real request into its row', async () => {
    const requestIds: string[] = [];
    const values: string[] = [];
    await fc.assert(
      fc.asyncProperty(scimRequest, async ({ segments, query }) => {
        const requestId = rid('prop');
        const qs = query.map(([k, v]) => `${k}=${encodeURIComponent(v)}`).join('&');
        const res = await request(a.app)
          .get(`/scim/v2/${globex}/${segments.join('/')}?${qs}`)
          .set('Authorization', `Bearer ${globexToken.token}`)
          .set('X-Request-Id', requestId);
        expect(res.status).toBeLessThan(500);
        requestIds.push(requestId);
        values.push(...query.map(([, v]) => v));
      }),
      { numRuns: fuzzRuns(25), seed: fuzzSeed(0x10d) },
    );
    await logged(globex, requestIds);
    const rows = (await rowsAsText(globex)).filter((row) => requestIds.some((id) => row.includes(id)));
    expect(rows).toHaveLength(requestIds.length);
    for (const row of rows) {
      const leaked = values.filter((v) => row.includes(v) || row.includes(encodeURIComponent(v)));
      expect({ row, leaked, at: /@|%40/i.test(row) }).toEqual({ row, leaked: [], at: false });
    }
    const listed = await logOf(globex);
    for (const r of listed) expect(r.path).toMatch(TEMPLATE);
  }, 180_000); // a bounded fuzz budget; the shared CI machine is slow, not the code

  it('answers any limit, cursor and status query with 200 rows that match it or a 400 bad_request', async () => {
    const nasty = fc.oneof(
      fc.string({ maxLength: 30 }),
      fc.string({ unit: 'binary', maxLength: 30 }),
      fc.constantFrom('4xx', '404', '2xx', '5xx', '0', '-1', '100', '1e2', '__proto__', '4XX', 'ÿ'),
      fc.base64String({ maxLength: 80 }),
    );
    const query = fc.dictionary(fc.constantFrom('limit', 'cursor', 'status', 'offset', 'x'), nasty, {
      maxKeys: 4,
    });
    await fc.assert(
      fc.asyncProperty(query, async (q) => {
        const res = await a.op().get(`/admin/v1/tenants/${acme}/scim-requests`).query(q);
        expect([200, 400]).toContain(res.status);
        if (res.status === 400) {
          expect(res.body.code).toBe('bad_request');
          return;
        }
        const body = res.body as { data: LoggedRequest[]; limit: number };
        expect(body.data.length).toBeLessThanOrEqual(body.limit);
        const status = q.status;
        if (status !== undefined && /xx$/.test(status))
          for (const r of body.data) expect(String(r.status)[0]).toBe(status[0]);
        else if (status !== undefined) for (const r of body.data) expect(String(r.status)).toBe(status);
      }),
      { numRuns: fuzzRuns(150), seed: fuzzSeed(0x10e) },
    );
  });
});
