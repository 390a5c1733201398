import { randomUUID } from 'node:crypto';
import { runCleanup, startCleanup } from '../../src/sessions/cleanup.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { createPerson, createTenantWithConnection } from '../support/oauth-fixtures.js';

/**
 * The periodic cleanup: in every tenant, what expired (past the grace period)
 * goes and what is still live stays; rows of both outboxes (back-channel
 * logouts, webhooks) go only when delivered or given up past their retention.
 */
let t: TestDatabase;
let appId: string;

const HOUR = 3600_000;
const GRACE = HOUR;
const RETENTION = 7 * 24 * HOUR;
const now = new Date();
const ago = (ms: number) => new Date(now.getTime() - ms);
const ahead = (ms: number) => new Date(now.getTime() + ms);

beforeAll(async () => {
  t = await createTestDatabase();
  appId = randomUUID();
  await t.db.withPlatform((em) =>
    em.query(`INSERT INTO apps (id, name, redirect_uris) VALUES ($1, 'Main app', '{https://app.test/cb}')`, [
      appId,
    ]),
  );
});
afterAll(() => t.close());

/** One tenant with an expired (past grace) and a live row in every table the cleanup covers. */
async function tenantWithState(slug: string) {
  const tenant = await createTenantWithConnection(t.db, slug);
  const person = await createPerson(t.db, tenant, `alice@${slug}.test`);
  const sessionId = randomUUID();
  const expired = ago(2 * GRACE);
  const withinGrace = ago(GRACE / 2);
  const live = ahead(HOUR);
  await t.db.withTenant(tenant.tenantId, async (em) => {
    const q = (sql: string, params: unknown[]) => em.query(sql, params);
    await q(
      `INSERT INTO sessions (tenant_id, id, user_id, app_id, connection_id, expires_at) VALUES ($1, $2, $3, $4, $5, $6)`,
      [tenant.tenantId, sessionId, person.userId, appId, tenant.connectionId, ahead(12 * HOUR)],
    );
    for (const [label, expiresAt] of [
      ['expired', expired],
      ['grace', withinGrace],
      ['live', live],
    ] as const) {
      await q(
        `INSERT INTO authorization_codes (tenant_id, session_id, app_id, code_hash, redirect_uri, scope, expires_at, used_at)
         VALUES ($1, $2, $3, $4, 'https://app.test/cb', 'openid', $5, $6)`,
        [
          tenant.tenantId,
          sessionId,
          appId,
          `code-${label}`,
          expiresAt,
          label === 'expired' ? ago(3 * GRACE) : null,
        ],
      );
      await q(
        `INSERT INTO refresh_tokens (tenant_id, session_id, app_id, token_hash, scope, expires_at)
         VALUES ($1, $2, $3, $4, 'openid', $5)`,
        [tenant.tenantId, sessionId, appId, `refresh-${label}`, expiresAt],
      );
      await q(
        `INSERT INTO saml_requests (tenant_id, id, connection_id, login_id, browser_hash, expires_at)
         VALUES ($1, $2, $3, 'login', 'browser', $4)`,
        [tenant.tenantId, `_req-${label}`, tenant.connectionId, expiresAt],
      );
      await q(
        `INSERT INTO saml_assertion_ids (tenant_id, connection_id, assertion_id, expires_at) VALUES ($1, $2, $3, $4)`,
        [tenant.tenantId, tenant.connectionId, `_assertion-${label}`, expiresAt],
      );
      await q(
        `INSERT INTO oidc_login_states (tenant_id, state, connection_id, login_id, browser_hash, nonce, code_verifier_enc, expires_at)
         VALUES ($1, $2, $3, 'login', 'browser', 'nonce', 'sealed', $4)`,
        [tenant.tenantId, `state-${label}`, tenant.connectionId, expiresAt],
      );
    }
    // Outbox: finished long ago (goes), finished recently, and still pending however old (both stay).
    const outbox = [
      ['delivered', ago(RETENTION + HOUR), ago(RETENTION + HOUR)],
      ['failed', null, ago(RETENTION + HOUR)],
      ['delivered', ago(HOUR), ago(HOUR)],
      ['pending', null, ago(RETENTION + HOUR)],
    ] as const;
    for (const [status, deliveredAt, nextAttemptAt] of outbox) {
      await q(
        `INSERT INTO logout_outbox (tenant_id, session_id, user_id, app_id, status, delivered_at, next_attempt_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)`,
        [tenant.tenantId, randomUUID(), person.userId, appId, status, deliveredAt, nextAttemptAt],
      );
    }
  });
  await webhookRows(tenant.tenantId, outboxRows);
  return tenant;
}

/** Outbox rows: finished long ago (go), finished recently, and still pending however old (both stay). */
const outboxRows = [
  ['delivered', ago(RETENTION + HOUR), ago(RETENTION + HOUR)],
  ['failed', null, ago(RETENTION + HOUR)],
  ['failed', null, ago(HOUR)],
  ['delivered', ago(HOUR), ago(HOUR)],
  ['pending', null, ago(RETENTION + HOUR)],
] as const;

async function webhookRows(tenantId: string, rows: readonly (readonly [string, Date | null, Date])[]) {
  await t.db.withTenant(tenantId, async (em) => {
    for (const [status, deliveredAt, nextAttemptAt] of rows) {
      await em.query(
        `INSERT INTO webhook_outbox (tenant_id, event_id, event_type, app_id, payload, status, delivered_at, next_attempt_at)
         VALUES ($1, $2, 'user.updated', $3, '{}', $4, $5, $6)`,
        [tenantId, randomUUID(), appId, status, deliveredAt, nextAttemptAt],
      );
    }
  });
}

async function remaining(tenantId: string) {
  return t.db.withTenant(tenantId, async (em) => {
    const list = async (sql: string) => (await em.query<{ v: string }[]>(sql)).map((r) => r.v).sort();
    return {
      codes: await list('SELECT code_hash AS v FROM authorization_codes'),
      refresh: await list('SELECT token_hash AS v FROM refresh_tokens'),
      saml: await list('SELECT id AS v FROM saml_requests'),
      assertions: await list('SELECT assertion_id AS v FROM saml_assertion_ids'),
      oidc: await list('SELECT state AS v FROM oidc_login_states'),
      outbox: await list(
        `SELECT status || ':' || CASE WHEN COALESCE(delivered_at, next_attempt_at) < now() - interval '1 day' THEN 'old' ELSE 'new' END AS v FROM logout_outbox`,
      ),
      webhooks: await list(
        `SELECT status || ':' || CASE WHEN COALESCE(delivered_at, next_attempt_at) < now() - interval '1 day' THEN 'old' ELSE 'new' END AS v FROM webhook_outbox`,
      ),
    };
  });
}

async function authorizationRequest(expiresAt: Date): Promise<string> {
  const id = randomUUID();
  await t.db.withPlatform((em) =>
    em.query(
      `INSERT INTO authorization_requests (id, app_id, redirect_uri, scope, browser_hash, expires_at)
       VALUES ($1, $2, 'https://app.test/cb', 'openid', 'browser', $3)`,
      [id, appId, expiresAt],
    ),
  );
  return id;
}

describe('cleanup of expired sign-in state', () => {
  it('deletes expired rows in every tenant and keeps live ones, those within the grace period and pending logouts', async () => {
    const acme = await tenantWithState('acme');
    const globex = await tenantWithState('globex');
    const oldRequest = await authorizationRequest(ago(2 * GRACE));
    const liveRequest = await authorizationRequest(ahead(HOUR));

    const counts = await runCleanup(
      { db: t.db, graceMs: GRACE, outboxRetentionMs: RETENTION, batchSize: 1 },
      now,
    );

    expect(counts).toMatchObject({
      authorization_requests: 1,
      authorization_codes: 2,
      refresh_tokens: 2,
      saml_requests: 2,
      saml_assertion_ids: 2,
      oidc_login_states: 2,
      logout_outbox: 4,
      webhook_outbox: 4,
    });
    for (const tenant of [acme, globex]) {
      expect(await remaining(tenant.tenantId)).toEqual({
        codes: ['code-grace', 'code-live'],
        refresh: ['refresh-grace', 'refresh-live'],
        saml: ['_req-grace', '_req-live'],
        assertions: ['_assertion-grace', '_assertion-live'],
        oidc: ['state-grace', 'state-live'],
        outbox: ['delivered:new', 'pending:old'],
        webhooks: ['delivered:new', 'failed:new', 'pending:old'],
      });
    }
    const requests = await t.db.withPlatform((em) =>
      em.query<{ id: string }[]>('SELECT id FROM authorization_requests WHERE id = ANY($1::uuid[])', [
        [oldRequest, liveRequest],
      ]),
    );
    expect(requests.map((r) => r.id)).toEqual([liveRequest]);
  });

  it('finds nothing to do on a second sweep, and two nodes sweeping at once delete each row once', async () => {
    await tenantWithState('initech');
    const [a, b] = await Promise.all([
      runCleanup({ db: t.db, graceMs: GRACE, outboxRetentionMs: RETENTION, batchSize: 2 }, now),
      runCleanup({ db: t.db, graceMs: GRACE, outboxRetentionMs: RETENTION, batchSize: 2 }, now),
    ]);
    expect(a.authorization_codes + b.authorization_codes).toBe(1);
    expect(a.saml_assertion_ids + b.saml_assertion_ids).toBe(1);
    expect(a.logout_outbox + b.logout_outbox).toBe(2);
    expect(a.webhook_outbox + b.webhook_outbox).toBe(2);
    const again = await runCleanup({ db: t.db, graceMs: GRACE, outboxRetentionMs: RETENTION }, now);
    expect(again).toMatchObject({ tenants: 0, authorization_codes: 0, logout_outbox: 0, webhook_outbox: 0 });
  });

  it('visits a tenant whose only finished rows are old webhook deliveries, and keeps its pending and recent ones', async () => {
    const only = await createTenantWithConnection(t.db, 'wonka');
    const untouched = await createTenantWithConnection(t.db, 'stark');
    await webhookRows(only.tenantId, outboxRows);
    await webhookRows(untouched.tenantId, outboxRows.slice(2));
    const due = await t.asApp<{ tenant_id: string }>(
      `SELECT cleanup_due_tenants(now() - interval '1 hour', now() - interval '7 days', 100) AS tenant_id`,
    );
    expect(due.map((r) => r.tenant_id)).toEqual([only.tenantId]);

    const counts = await runCleanup({ db: t.db, graceMs: GRACE, outboxRetentionMs: RETENTION }, now);

    expect(counts).toMatchObject({ tenants: 1, webhook_outbox: 2, logout_outbox: 0 });
    expect((await remaining(only.tenantId)).webhooks).toEqual(['delivered:new', 'failed:new', 'pending:old']);
    expect((await remaining(untouched.tenantId)).webhooks).toEqual([
      'delivered:new',
      'failed:new',
      'pending:old',
    ]);
  });

  it('lists tenants with expired rows only through the resolver, never their rows', async () => {
    const acme = await tenantWithState('umbrella');
    const due = await t.asApp<{ tenant_id: string }>(
      `SELECT cleanup_due_tenants(now() - interval '1 hour', now() - interval '7 days', 100) AS tenant_id`,
    );
    expect(due.map((r) => r.tenant_id)).toContain(acme.tenantId);
    // Outside withTenant the runtime role still sees no tenant rows.
    expect(await t.asApp('SELECT * FROM authorization_codes')).toEqual([]);
  });

  it('runs as a job that can be triggered and stopped', async () => {
    const tenant = await tenantWithState('hooli');
    const job = startCleanup({
      db: t.db,
      intervalMs: 3600_000,
      graceMs: GRACE,
      outboxRetentionMs: RETENTION,
    });
    const counts = await job.runNow();
    await job.stop();
    expect(counts?.authorization_codes).toBeGreaterThanOrEqual(1);
    expect((await remaining(tenant.tenantId)).codes).toEqual(['code-grace', 'code-live']);
    expect(await job.runNow()).toBeNull();
  });
});
