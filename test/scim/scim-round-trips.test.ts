import SCIMMY from 'scimmy';
import request from 'supertest';
import { createApp } from '../../src/app.js';
import { parseConfig } from '../../src/config/config.js';
import { createDataSource } from '../../src/db/data-source.js';
import { Database } from '../../src/db/database.js';
import { NotificationBus } from '../../src/db/notification-bus.js';
import { ENTITIES } from '../../src/entities.js';
import { verifyAuditChain } from '../../src/audit/audit.service.js';
import { createLogger } from '../../src/http/logger.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { installationSecrets } from '../support/gatehouse-node.js';
import { RoundTripCounter, unitsOf, type Tally } from '../support/round-trips.js';
import { BASE_URL, createTenant, GROUP_SCHEMA, issueToken, newUser, patchOp, SCIM } from './support.js';

/**
 * How many times one SCIM write goes to PostgreSQL before its answer (issue
 * 13, "Few round trips per request"), counted on the node's real pool by
 * test/support/round-trips.ts, and how many times scimmy coerces a resource
 * through its schema ("Less CPU per request"), counted by wrapping the real
 * schema definitions' `coerce` (instrumentation: the real method runs).
 *
 * Every request pays one statement outside a transaction: the shared per-tenant
 * limit's counter (src/http/rate-limit-store.ts). The token is verified from
 * the node's cache (its LISTEN connection is up). The request log is written
 * after the answer, batched with other requests (afterResponse, not bounded).
 * A transaction costs BEGIN with the tenant setting (one trip), its statements,
 * and COMMIT. Upper bounds: a change that adds a trip fails here.
 */

const counter = new RoundTripCounter();
let t: TestDatabase;
let db: Database;
let notifications: NotificationBus;
let handler: ReturnType<RoundTripCounter['wrap']>;
let tenantId: string;
let token: string;

/** Each coerce call, as `Schema:direction`, since the last request began. */
const coerced: string[] = [];
for (const [name, schema] of [
  ['User', SCIMMY.Schemas.User],
  ['Group', SCIMMY.Schemas.Group],
] as const) {
  const definition = schema.definition as unknown as { coerce: (...args: unknown[]) => unknown };
  const coerce = definition.coerce.bind(definition);
  definition.coerce = (...args: unknown[]) => {
    // The direction argument: 'in', 'out', or absent ('both', scimmy's default).
    coerced.push(`${name}:${typeof args[1] === 'string' ? args[1] : 'both'}`);
    return coerce(...args);
  };
}

beforeAll(async () => {
  t = await createTestDatabase();
  const dataSource = createDataSource({ url: t.appUrl, entities: ENTITIES, poolSize: 5 });
  await dataSource.initialize();
  counter.countDataSource(dataSource);
  db = new Database(dataSource);
  notifications = new NotificationBus({ url: t.appUrl });
  await notifications.start();
  const config = parseConfig({ GATEHOUSE_BASE_URL: BASE_URL, LOG_LEVEL: 'silent' });
  const app = createApp({
    config,
    db,
    secrets: installationSecrets(t),
    logger: createLogger(config.logLevel),
    notifications,
  });
  handler = counter.wrap(app);
  tenantId = await createTenant(t);
  await t.db.withTenant(tenantId, (em) =>
    em.query(
      `INSERT INTO domains (tenant_id, domain, verification_token, verified_at, verification_method)
       VALUES ($1, 'acme.test', 'x', now(), 'manual')`,
      [tenantId],
    ),
  );
  token = (await issueToken(t.db, tenantId)).token;
  // The first request verifies the token (argon2id, one read); later ones find it cached.
  expect((await send('get', '/Users?count=1')).res.status).toBe(200);
});
afterAll(async () => {
  await notifications.close();
  await db.close();
  await t.close();
});

async function send(method: 'post' | 'put' | 'patch' | 'delete' | 'get', path: string, body?: unknown) {
  const from = counter.tallies.length;
  coerced.length = 0;
  const agent = request(handler);
  let req = agent[method](`/scim/v2/${tenantId}${path}`)
    .set('Authorization', `Bearer ${token}`)
    .set('Accept', SCIM);
  if (body !== undefined) req = req.set('Content-Type', SCIM).send(JSON.stringify(body));
  const res = await req;
  const [tally] = counter.since(from);
  if (!tally) throw new Error('the request was not counted');
  return { res, tally, coerced: [...coerced] };
}

/** At most `bound` round trips; the statements are in the message when not. */
function within(tally: Tally, bound: number): void {
  if (tally.roundTrips > bound)
    throw new Error(
      `${tally.request}: ${tally.roundTrips} trips > ${bound}\n  ${tally.statements.join('\n  ')}`,
    );
  expect(tally.roundTrips).toBeGreaterThan(0);
}

describe('SCIM writes, round trips to PostgreSQL before the answer', () => {
  let userId: string;

  it('POST /Users: the limit counter, then BEGIN, one statement (row, webhook event, audit event) and COMMIT in one trip', async () => {
    const { res, tally } = await send('post', '/Users', newUser('alice@acme.test', { externalId: 'a-1' }));
    expect(res.status).toBe(201);
    userId = res.body.id as string;
    // Before issue 13: 7 (the limit, BEGIN, domain check, INSERT, webhook, audit, COMMIT); 4 before pipelining.
    within(tally, 2);
    expect(unitsOf(tally)).toBe(2);
    expect(tally.transactions).toBe(1);
    // What the one statement wrote, each once: the row (email verified by the tenant's domain) and its event.
    const [row] = await t.db.withTenant(tenantId, (em) =>
      em.query<{ email_verified: boolean; events: string }[]>(
        `SELECT u.email_verified, (SELECT count(*) FROM audit_events a
            WHERE a.target_id = u.id::text AND a.action = 'scim.user.created') AS events
           FROM users u WHERE u.id = $1`,
        [userId],
      ),
    );
    expect(row).toEqual({ email_verified: true, events: '1' });
  });

  it('PUT /Users/{id}: the limit, BEGIN with the read (groups, locked), one statement with COMMIT: within 3', async () => {
    const { res, tally } = await send(
      'put',
      `/Users/${userId}`,
      newUser('alice@acme.test', { externalId: 'a-2' }),
    );
    expect(res.status).toBe(200);
    // Before issue 13: 8 (read, UPDATE, webhook, audit and the groups read each a trip); 5 before pipelining.
    within(tally, 3);
    expect(unitsOf(tally)).toBe(2);
  });

  it('PATCH /Users/{id} of a field: within 3', async () => {
    const { res, tally } = await send(
      'patch',
      `/Users/${userId}`,
      patchOp({ op: 'replace', value: { displayName: 'Alice A.' } }),
    );
    expect(res.status).toBe(200);
    expect(res.body.displayName).toBe('Alice A.');
    // Before issue 13: 8; 5 before pipelining.
    within(tally, 3);
  });

  it('POST /Groups with members: the limit counter, then BEGIN, one statement and COMMIT in one trip', async () => {
    const { res, tally } = await send('post', '/Groups', {
      schemas: [GROUP_SCHEMA],
      displayName: 'Platform',
      members: [{ value: userId }],
    });
    expect(res.status).toBe(201);
    expect(res.body.members).toEqual([expect.objectContaining({ value: userId })]);
    // Before issue 13: 9 (the group, the members check, the members, webhook, audit, the members read); 4 before pipelining.
    within(tally, 2);
    expect(unitsOf(tally)).toBe(2);
  });

  it('an unknown member leaves nothing behind (the one statement, sent with its COMMIT, writes nothing)', async () => {
    const { res } = await send('post', '/Groups', {
      schemas: [GROUP_SCHEMA],
      displayName: 'Ghosts',
      members: [{ value: userId }, { value: '00000000-0000-4000-8000-000000000000' }],
    });
    expect(res.status).toBe(400);
    const rows = await t.db.withTenant(tenantId, (em) =>
      em.query<{ n: string }[]>(
        `SELECT (SELECT count(*) FROM groups WHERE display_name = 'Ghosts')
              + (SELECT count(*) FROM audit_events WHERE action = 'scim.group.created'
                   AND after->>'display_name' = 'Ghosts') AS n`,
      ),
    );
    expect(rows).toEqual([{ n: '0' }]);
  });

  it('PATCH active=false and DELETE: held where they are', async () => {
    const deactivated = await send(
      'patch',
      `/Users/${userId}`,
      patchOp({ op: 'replace', value: { active: false } }),
    );
    expect(deactivated.res.status).toBe(200);
    const deleted = await send('delete', `/Users/${userId}`);
    expect(deleted.res.status).toBe(204);
    // Not yet cut (docs/scaling.md): a status change revokes sessions, queues logouts and ends
    // memberships through sessions/ and groups.service, one statement each.
    within(deactivated.tally, 6);
    within(deleted.tally, 9);
    for (const r of [deactivated, deleted]) expect(unitsOf(r.tally)).toBe(2);
  });
});

describe('SCIM reads, round trips to PostgreSQL before the answer', () => {
  let userId: string;
  beforeAll(async () => {
    const created = await send('post', '/Users', newUser('reader@acme.test', { externalId: 'r-1' }));
    userId = created.res.body.id as string;
    const group = await send('post', '/Groups', {
      schemas: [GROUP_SCHEMA],
      displayName: 'Readers',
      members: [{ value: userId }],
    });
    expect(group.res.status).toBe(201);
  });

  it('GET /Users/{id}: the limit, BEGIN with the user, the groups with COMMIT: within 3', async () => {
    const { res, tally } = await send('get', `/Users/${userId}`);
    expect(res.status).toBe(200);
    expect(res.body.groups).toEqual([
      expect.objectContaining({ value: expect.any(String), display: 'Readers' }),
    ]);
    // Before: 4 (the groups read and COMMIT each a trip of their own).
    within(tally, 3);
    expect(unitsOf(tally)).toBe(2);
  });

  it('GET /Users?filter=userName eq: the limit, BEGIN with the page, the groups with COMMIT: within 3', async () => {
    const filter = encodeURIComponent('userName eq "READER@acme.test"');
    const { res, tally } = await send('get', `/Users?filter=${filter}`);
    expect(res.status).toBe(200);
    expect(res.body.totalResults).toBe(1);
    expect(res.body.Resources[0].groups).toEqual([expect.objectContaining({ display: 'Readers' })]);
    within(tally, 3);
    expect(unitsOf(tally)).toBe(2);
  });

  it('GET /Groups/{id}: the limit, BEGIN with the group, the members with COMMIT: within 3', async () => {
    const group = await send('post', '/Groups', {
      schemas: [GROUP_SCHEMA],
      displayName: 'Readers too',
      members: [{ value: userId }],
    });
    const { res, tally } = await send('get', `/Groups/${group.res.body.id as string}`);
    expect(res.status).toBe(200);
    expect(res.body.members).toEqual([expect.objectContaining({ value: userId })]);
    // Before: 4 (the members read and COMMIT each a trip of their own).
    within(tally, 3);
    expect(unitsOf(tally)).toBe(2);
  });

  it('PUT /Groups/{id} (Okta replaces members): the members as stored go with COMMIT, one trip fewer', async () => {
    const group = await send('post', '/Groups', {
      schemas: [GROUP_SCHEMA],
      displayName: 'Pushed',
      members: [],
    });
    const id = group.res.body.id as string;
    const { res, tally } = await send('put', `/Groups/${id}`, {
      schemas: [GROUP_SCHEMA],
      displayName: 'Pushed',
      members: [{ value: userId }],
    });
    expect(res.status).toBe(200);
    expect(res.body.members).toEqual([expect.objectContaining({ value: userId })]);
    // Before: 11. Still the most of any SCIM write (members checked, removed, added, the group
    // updated, its event): docs/scaling.md.
    within(tally, 10);
    expect(unitsOf(tally)).toBe(2);
  });

  it('GET /Users?filter=… matching nobody: within 3, and the transaction still ends', async () => {
    const filter = encodeURIComponent('externalId eq "nobody"');
    const { res, tally } = await send('get', `/Users?filter=${filter}`);
    expect(res.status).toBe(200);
    expect(res.body.totalResults).toBe(0);
    within(tally, 3);
  });
});

describe('SCIM writes, scimmy coercions per request', () => {
  it('POST and PUT coerce the body once inbound and render once outbound', async () => {
    const created = await send('post', '/Users', newUser('bob@acme.test'));
    expect(created.res.status).toBe(201);
    expect(created.coerced).toEqual(['User:in', 'User:out']);
    const replaced = await send(
      'put',
      `/Users/${created.res.body.id as string}`,
      newUser('bob@acme.test', { title: 'Eng' }),
    );
    expect(replaced.res.status).toBe(200);
    expect(replaced.coerced).toEqual(['User:in', 'User:out']);
  });

  it('PATCH validates the patched whole once inbound (before issue 13 the result was coerced once more)', async () => {
    const created = await send('post', '/Users', newUser('carol@acme.test'));
    const patched = await send(
      'patch',
      `/Users/${created.res.body.id as string}`,
      patchOp({ op: 'replace', path: 'title', value: 'Lead' }),
    );
    expect(patched.res.status).toBe(200);
    expect(patched.res.body.title).toBe('Lead');
    // The stored user rendered as the PatchOp's target, scimmy's working copy, the patched whole
    // validated as inbound, the answer rendered: before, a finaliser coerced the copy once more.
    expect(patched.coerced).toEqual(['User:out', 'User:both', 'User:in', 'User:out']);
    expect(patched.coerced.filter((c) => c === 'User:in')).toHaveLength(1);
  });
});

it('the events written inside the composed statements are chained like any other (the chain verifies)', async () => {
  const result = await verifyAuditChain(t.db, tenantId);
  expect(result).toMatchObject({ valid: true, firstBrokenSeq: null });
  expect(result.checked).toBeGreaterThanOrEqual(6);
});
