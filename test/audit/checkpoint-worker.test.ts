import { randomBytes } from 'node:crypto';
import { recordAudit } from '../../src/audit/audit.service.js';
import {
  deriveCheckpointKey,
  openCheckpoint,
  type CheckpointSigningKey,
} from '../../src/audit/checkpoint-key.js';
import { runCheckpoints, startCheckpoints } from '../../src/audit/checkpoint-worker.js';
import { publishCheckpointWebhook } from '../../src/admin/audit-checkpoints.router.js';
import { PLATFORM_TENANT_ID } from '../../src/db/database.js';
import { parseConfig } from '../../src/config/config.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { createTenant } from '../support/factories.js';
import { registerWebhookApp } from '../webhooks/support.js';

/**
 * The periodic checkpoint pass (src/audit/checkpoint-worker.ts): which trails
 * it signs, that a second pass (another node, the next interval) over
 * unchanged heads signs nothing, and that each new checkpoint leaves the
 * database as a log line and an `audit.checkpoint` webhook event.
 */
let t: TestDatabase;
let key: CheckpointSigningKey;
const masterKey = randomBytes(32);
const operator = { type: 'operator' as const, id: 'operator' };

const record = (tenantId: string, action: string) =>
  t.db.withTenant(tenantId, (em) => recordAudit(em, tenantId, { actor: operator, action }));

const checkpointsOf = (tenantId: string) =>
  t.db.withTenant(tenantId, (em) =>
    em.query<{ seq: string; signature: string }[]>(
      'SELECT seq, signature FROM audit_checkpoints ORDER BY seq',
    ),
  );

beforeAll(async () => {
  t = await createTestDatabase();
  key = await deriveCheckpointKey(masterKey);
});
afterAll(() => t.close());

describe('checkpoint worker', () => {
  it('signs every grown trail once, the platform trail included, and publishes each to the log and webhooks', async () => {
    await registerWebhookApp(t.db, masterKey, 'http://127.0.0.1:9/hooks');
    const acme = await createTenant(t.db, 'acme');
    const globex = await createTenant(t.db, 'globex');
    const quiet = await createTenant(t.db, 'quiet'); // no events: nothing to sign
    await record(acme, 'a.1');
    await record(acme, 'a.2');
    await record(globex, 'g.1');
    await record(PLATFORM_TENANT_ID, 'app.created');
    const lines: Record<string, unknown>[] = [];
    const log = { info: (fields: Record<string, unknown>) => lines.push(fields), error: () => undefined };
    const options = { db: t.db, key, publish: publishCheckpointWebhook, logger: log as never };

    expect(await runCheckpoints(options)).toBe(3);
    expect((await checkpointsOf(acme)).map((c) => Number(c.seq))).toEqual([2]);
    expect((await checkpointsOf(globex)).map((c) => Number(c.seq))).toEqual([1]);
    expect(await checkpointsOf(quiet)).toEqual([]);
    const [platform] = await checkpointsOf(PLATFORM_TENANT_ID);
    // The platform trail (apps, keys) holds the webhook app's creation and app.created.
    expect(await openCheckpoint(key.publicJwk, platform!.signature)).toMatchObject({
      tenant_id: PLATFORM_TENANT_ID,
      seq: Number(platform!.seq),
    });

    // Unchanged heads: nothing new, whoever runs the pass next.
    expect(await runCheckpoints(options)).toBe(0);
    await record(acme, 'a.3');
    expect(await runCheckpoints(options)).toBe(1);
    expect((await checkpointsOf(acme)).map((c) => Number(c.seq))).toEqual([2, 3]);

    // The log: tenant, seq, hash, key id and signature; nothing else.
    expect(lines).toHaveLength(4);
    for (const line of lines)
      expect(Object.keys(line.audit_checkpoint as object).sort()).toEqual(
        ['created_at', 'hash', 'key_id', 'seq', 'signature', 'tenant_id'].sort(),
      );
    // The webhook stream: one event per tenant checkpoint (the platform trail has no tenant to send under).
    const events = await t.db.withTenant(acme, (em) =>
      em.query<{ event_type: string; payload: { data: { seq: number; signature: string } } }[]>(
        `SELECT event_type, payload FROM webhook_outbox WHERE event_type = 'audit.checkpoint' ORDER BY created_at`,
      ),
    );
    expect(events.map((e) => e.payload.data.seq)).toEqual([2, 3]);
    expect(await openCheckpoint(key.publicJwk, events[1]!.payload.data.signature)).toMatchObject({
      tenant_id: acme,
      seq: 3,
    });
  });

  it('runs on its interval and stops cleanly', async () => {
    const tenantId = await createTenant(t.db, 'ticking');
    await record(tenantId, 'x.1');
    const job = startCheckpoints({ db: t.db, key, intervalMs: 60_000 });
    expect(await job.runNow()).toBeGreaterThanOrEqual(1);
    await job.stop();
    expect(await job.runNow()).toBeNull();
    expect((await checkpointsOf(tenantId)).map((c) => Number(c.seq))).toEqual([1]);
  });

  it('reads GATEHOUSE_AUDIT_CHECKPOINT_INTERVAL (default one hour) and refuses nonsense', () => {
    const base = {};
    expect(parseConfig(base).auditCheckpoints.intervalSeconds).toBe(3600);
    expect(
      parseConfig({ ...base, GATEHOUSE_AUDIT_CHECKPOINT_INTERVAL: '60' }).auditCheckpoints.intervalSeconds,
    ).toBe(60);
    for (const bad of ['0', '-5', 'hourly', '99999999'])
      expect(() => parseConfig({ ...base, GATEHOUSE_AUDIT_CHECKPOINT_INTERVAL: bad })).toThrow(
        /GATEHOUSE_AUDIT_CHECKPOINT_INTERVAL/,
      );
  });
});
