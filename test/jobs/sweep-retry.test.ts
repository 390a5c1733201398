import { pino } from 'pino';
import request from 'supertest';
import { startMetadataRefresh } from '../../src/connections/metadata-refresh-sweep.js';
import { outboundPolicy } from '../../src/outbound/pinned-request.js';
import { startCleanup } from '../../src/sessions/cleanup.js';
import { buildTestApp, type TestApp } from '../support/app.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { createTenantWithConnection } from '../support/oauth-fixtures.js';
import { certificateUntil, metadataXml } from '../connections/metadata-refresh-support.js';

/**
 * Do the cleanup and the metadata refresh sweeps, run by the one loop
 * (src/periodic-job.ts), survive a pass that fails? Each pass here fails for
 * real: the owner takes a privilege the sweep needs away from the runtime role
 * (this file's own database), the failure is logged, the privilege comes back,
 * and the timer's next pass does the work. Nothing is faked.
 */
const DAY = 24 * 3600_000;
let t: TestDatabase;
let a: TestApp;

beforeAll(async () => {
  t = await createTestDatabase();
  a = buildTestApp(t);
});
afterAll(() => t.close());

interface LogLine {
  level: number;
  msg: string;
  err?: { message: string };
}

function capturedLogger() {
  const lines: LogLine[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
  return { logger, lines };
}

/** Resolves when `check` holds (the test's timeout bounds it). */
async function until(check: () => Promise<boolean> | boolean): Promise<void> {
  while (!(await check())) await new Promise((resolve) => setTimeout(resolve, 20));
}

describe('a sweep whose pass fails', () => {
  it('cleanup: logs "cleanup sweep failed" and deletes the expired rows at a later tick', async () => {
    const tenant = await createTenantWithConnection(t.db, 'sweep-retry');
    await t.db.withTenant(tenant.tenantId, (em) =>
      em.query(
        `INSERT INTO saml_assertion_ids (tenant_id, connection_id, assertion_id, expires_at)
         VALUES ($1, $2, '_expired', now() - interval '2 days')`,
        [tenant.tenantId, tenant.connectionId],
      ),
    );
    const left = async () =>
      (
        await t.db.withTenant(tenant.tenantId, (em) =>
          em.query<{ n: string }[]>(`SELECT count(*) AS n FROM saml_assertion_ids`),
        )
      )[0]?.n;
    // The pass starts with the platform table: without DELETE on it the whole pass throws.
    await t.asOwner('REVOKE DELETE ON authorization_requests FROM gatehouse_app');
    const { logger, lines } = capturedLogger();
    const job = startCleanup({
      db: t.db,
      logger,
      intervalMs: 25,
      graceMs: 3600_000,
      outboxRetentionMs: 7 * DAY,
    });
    try {
      expect(await job.runNow()).toBeNull();
      const failed = lines.find((l) => l.msg === 'cleanup sweep failed');
      expect(failed?.level).toBe(50);
      expect(failed?.err?.message).toMatch(/permission denied/);
      expect(await left()).toBe('1');
      await t.asOwner('GRANT DELETE ON authorization_requests TO gatehouse_app');
      // Nobody calls runNow again: the timer's next pass cleans up.
      await until(async () => (await left()) === '0');
      await until(() => lines.some((l) => l.msg === 'expired sign-in state cleaned up'));
    } finally {
      await job.stop();
      await t.asOwner('GRANT DELETE ON authorization_requests TO gatehouse_app');
    }
  });

  it('metadata refresh: logs "metadata refresh sweep failed" and sends the expiry notice at a later tick', async () => {
    const op = () => request.agent(a.app).set('Authorization', `Bearer ${a.secrets.adminToken}`);
    const tenantId = (await op().post('/admin/v1/tenants').send({ slug: 'expiring', name: 'Expiring' })).body
      .id as string;
    const pem = await certificateUntil(new Date(Date.now() + 10 * DAY), 'expiring');
    const created = await op()
      .post(`/admin/v1/tenants/${tenantId}/connections`)
      .send({
        type: 'saml',
        name: 'IdP',
        metadata_xml: metadataXml('https://expiring.idp.test/metadata', 'https://expiring.idp.test/sso', [
          pem,
        ]),
      });
    expect(created.status).toBe(201);
    const notices = async () =>
      (
        await t.db.withTenant(tenantId, (em) =>
          em.query<{ n: string }[]>(
            `SELECT count(*) AS n FROM audit_events WHERE action = 'connection.certificate_expiring'`,
          ),
        )
      )[0]?.n;
    // The sweep's first statement asks metadata_refresh_due(): without EXECUTE on it the pass throws.
    const fn = 'FUNCTION metadata_refresh_due(timestamptz, integer)';
    await t.asOwner(`REVOKE EXECUTE ON ${fn} FROM gatehouse_app`);
    const { logger, lines } = capturedLogger();
    const job = startMetadataRefresh({
      db: t.db,
      fetch: outboundPolicy(a.config.outboundFetch),
      overlapMs: 7 * DAY,
      intervalMs: 25,
      logger,
    });
    try {
      expect(await job.runNow()).toBeNull();
      const failed = lines.find((l) => l.msg === 'metadata refresh sweep failed');
      expect(failed?.level).toBe(50);
      expect(failed?.err?.message).toMatch(/permission denied/);
      expect(await notices()).toBe('0');
      await t.asOwner(`GRANT EXECUTE ON ${fn} TO gatehouse_app`);
      await until(async () => (await notices()) === '1');
      await until(() => lines.some((l) => l.msg === 'IdP metadata and certificates checked'));
    } finally {
      await job.stop();
      await t.asOwner(`GRANT EXECUTE ON ${fn} TO gatehouse_app`);
    }
  });
});
