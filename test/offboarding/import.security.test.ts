import { sealTrail } from '../../src/audit/audit-sealer.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { createTenant } from '../support/factories.js';

/**
 * The audit import mode (migrations/1765900000000-tenant-exports.ts) is a
 * setting any role can turn on for its transaction, the runtime role
 * included. It must give the caller no say over what links the chain: with
 * it on, the database still numbers the event, links it to the previous one
 * and computes its hash; a planted digest only breaks verification.
 */
let t: TestDatabase;
let tenantId: string;

beforeAll(async () => {
  t = await createTestDatabase();
  tenantId = await createTenant(t.db, 'import-mode');
});
afterAll(() => t.close());

const chain = (id = tenantId) =>
  t.db.withTenant(id, (em) =>
    em.query<{ seq: string; prev_hash: string; hash: string; check: string }[]>(
      `SELECT seq, prev_hash, hash, audit_event_hash(e) AS check FROM audit_events e WHERE tenant_id = $1 ORDER BY seq`,
      [id],
    ),
  );
/** Issue 13: events written outside recordAudit wait for a seal, so the trail is sealed before it is verified. */
const verify = async (id: string) => {
  await sealTrail(t.db, id);
  const rows = await t.db.withTenant(id, (em) =>
    em.query<{ first_broken_seq: string | null }[]>('SELECT first_broken_seq FROM audit_verify_chain($1)', [
      id,
    ]),
  );
  return rows[0]?.first_broken_seq ?? null;
};

describe('audit import mode', () => {
  it('lets the runtime role choose no seq, link or hash of an event it appends', async () => {
    await t.db.withTenant(tenantId, async (em) => {
      await em.query(`SELECT set_config('gatehouse.audit_import', 'on', true)`);
      for (const seq of [7, 1]) {
        await em.query(
          `INSERT INTO audit_events (tenant_id, seq, id, actor_type, action, prev_hash, hash)
           VALUES ($1, $2, gen_random_uuid(), 'system', 'planted', $3, $3)`,
          [tenantId, seq, 'f'.repeat(64)],
        );
      }
    });
    const rows = await chain();
    expect(rows.map((r) => Number(r.seq))).toEqual([1, 2]);
    expect(rows[0]?.prev_hash).toBe('0'.repeat(64));
    expect(rows[1]?.prev_hash).toBe(rows[0]?.hash);
    // Each hash is the database's own over the stored row, never the planted one.
    for (const r of rows) expect(r.hash).toBe(r.check);
    expect(rows.map((r) => r.hash)).not.toContain('f'.repeat(64));
  });

  it('keeps the append-only guard: the runtime role still cannot change or delete an event', async () => {
    for (const sql of [`UPDATE audit_events SET action = 'x'`, 'DELETE FROM audit_events']) {
      await expect(
        t.db.withTenant(tenantId, async (em) => {
          await em.query(`SELECT set_config('gatehouse.audit_import', 'on', true)`);
          await em.query(sql);
        }),
      ).rejects.toThrow(/append-only|permission denied/);
    }
    expect((await chain()).length).toBe(2);
  });

  it('answers a planted content digest with a broken chain at that event, not a valid one', async () => {
    const columns = await t.asOwner<{ column_name: string }>(
      `SELECT column_name FROM information_schema.columns WHERE table_name = 'audit_events' AND column_name = 'content_digest'`,
    );
    // The chain commits to a salted digest of the personal fields (chain v2, issue 12's erasure).
    expect(columns).toHaveLength(1);
    const other = await createTenant(t.db, 'import-mode-digest');
    await t.db.withTenant(other, async (em) => {
      await em.query(
        `INSERT INTO audit_events (tenant_id, actor_type, action, prev_hash, hash)
                      VALUES ($1, 'system', 'genuine', '', '')`,
        [other],
      );
      await em.query(`SELECT set_config('gatehouse.audit_import', 'on', true)`);
      await em.query(
        `INSERT INTO audit_events (tenant_id, seq, id, actor_type, action, actor_id, prev_hash, hash,
                                   pii_salt, content_digest)
         VALUES ($1, 0, gen_random_uuid(), 'system', 'planted', 'someone', '', '', '\\x00'::bytea, $2)`,
        [other, 'a'.repeat(64)],
      );
    });
    expect(await verify(other)).toBe('2');
  });
});
