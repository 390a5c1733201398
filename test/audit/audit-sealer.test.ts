import fc from 'fast-check';
import pg from 'pg';
import { recordAudit, verifyAuditChain } from '../../src/audit/audit.service.js';
import { listAuditEvents } from '../../src/audit/audit-events.service.js';
import { sealInTransaction, sealPendingTenants, sealTrail } from '../../src/audit/audit-sealer.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { createTenant } from '../support/factories.js';
import { testEnv } from '../support/test-env.js';
import { fuzzRuns, fuzzSeed } from '../scim/hardening-support.js';

/**
 * The audit chain no longer serialises a tenant's writers (issue 13): events
 * are inserted unchained under the tenant's chain key held SHARED (writers
 * never wait on each other), and audit_seal, holding it EXCLUSIVELY, links
 * them in insertion order once every writer of that tenant has ended — and
 * only those of that tenant: other tenants and databases hold nothing back.
 * Writers here are real connections as the runtime role, held open to
 * interleave with each other and with the sealer.
 */
let t: TestDatabase;
const writers: pg.Client[] = [];

beforeAll(async () => {
  t = await createTestDatabase();
  for (let i = 0; i < 4; i += 1) {
    const client = new pg.Client({ connectionString: t.appUrl });
    await client.connect();
    writers.push(client);
  }
});
afterAll(async () => {
  await Promise.all(writers.map((c) => c.end()));
  await t.close();
});

const writer = (i: number): pg.Client => {
  const c = writers[i];
  if (!c) throw new Error(`no writer ${i}`);
  return c;
};

async function begin(c: pg.Client, tenantId: string): Promise<void> {
  await c.query(`BEGIN; SELECT set_config('app.tenant_id', '${tenantId}', true)`);
}

/** An event inserted as the service does (recordAudit's statement); returns its id. */
async function insertEvent(c: pg.Client, tenantId: string, action: string): Promise<string> {
  const { rows } = await c.query<{ id: string }>(
    `INSERT INTO audit_events (tenant_id, actor_type, action, after) VALUES ($1, 'system', $2, $3) RETURNING id`,
    [tenantId, action, JSON.stringify({ action })],
  );
  return rows[0]!.id;
}

interface Sealed {
  id: string;
  action: string;
  seq: string | null;
  insert_no: string;
}

const events = (tenantId: string) =>
  t.db.withTenant(tenantId, (em) =>
    em.query<Sealed[]>(
      'SELECT id, action, seq, insert_no FROM audit_events WHERE tenant_id = $1 ORDER BY seq, insert_no',
      [tenantId],
    ),
  );

const sealOnce = (tenantId: string) => t.db.withTenant(tenantId, (em) => sealInTransaction(em, tenantId));

describe('audit sealer', () => {
  it('lets two transactions of one tenant insert while the other is open, and chains both after they commit', async () => {
    const tenantId = await createTenant(t.db);
    const [a, b] = [writer(0), writer(1)];
    await begin(a, tenantId);
    await insertEvent(a, tenantId, 'first');
    // A is open and holds the tenant's chain key in SHARED mode only, which no writer waits on.
    const [{ pid }] = (await a.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows as [
      { pid: number },
    ];
    const held = await t.asOwner<{ mode: string; granted: boolean }>(
      `SELECT mode, granted FROM pg_locks WHERE pid = $1 AND locktype = 'advisory'`,
      [pid],
    );
    expect(held).toEqual([{ mode: 'ShareLock', granted: true }]);
    // B's insert returns while A is still uncommitted (with the old trigger it waited for A's COMMIT).
    await begin(b, tenantId);
    await insertEvent(b, tenantId, 'second');
    // …and A is still open, with its xid, uncommitted (the runtime role sees its own sessions).
    const state = await t.asApp<{ state: string; has_xid: boolean }>(
      `SELECT state, backend_xid IS NOT NULL AS has_xid FROM pg_stat_activity WHERE pid = $1`,
      [pid],
    );
    expect(state).toEqual([{ state: 'idle in transaction', has_xid: true }]);
    await b.query('COMMIT');
    await a.query('COMMIT');

    expect(await sealTrail(t.db, tenantId)).toMatchObject({ unsealed: 0, busy: false, headSeq: 2 });
    expect(await verifyAuditChain(t.db, tenantId)).toEqual({ valid: true, checked: 2, firstBrokenSeq: null });
    // A inserted first (smaller insert_no): it is seq 1 although it committed last.
    expect((await events(tenantId)).map((e) => [e.action, Number(e.seq)])).toEqual([
      ['first', 1],
      ['second', 2],
    ]);
  });

  it('keeps committed events unsealed while another writer of the tenant is open, and reports it busy', async () => {
    const tenantId = await createTenant(t.db);
    const [early, late] = [writer(0), writer(1)];
    await begin(early, tenantId);
    await insertEvent(early, tenantId, 'early');
    await begin(late, tenantId);
    await insertEvent(late, tenantId, 'late');
    await late.query('COMMIT');

    // 'late' is committed and visible, but 'early' (inserted before it) could still commit: the
    // seal cannot take the tenant's key before 'early' ends (it waits lock_timeout, then says busy).
    expect(await sealOnce(tenantId)).toMatchObject({ sealed: 0, unsealed: 1, busy: true, headSeq: 0 });
    expect(await verifyAuditChain(t.db, tenantId)).toEqual({ valid: true, checked: 0, firstBrokenSeq: null });

    await early.query('COMMIT');
    expect(await sealTrail(t.db, tenantId)).toMatchObject({ unsealed: 0, headSeq: 2 });
    expect((await events(tenantId)).map((e) => [e.action, Number(e.seq)])).toEqual([
      ['early', 1],
      ['late', 2],
    ]);
  });

  it('seals an event recorded through recordAudit after its transaction commits, without a read asking', async () => {
    const tenantId = await createTenant(t.db);
    await t.db.withTenant(tenantId, (em) =>
      recordAudit(em, tenantId, { actor: { type: 'system', id: null }, action: 'sealed.on.commit' }),
    );
    // The writer's node seals in the background right after COMMIT (the request does not wait):
    // look until it has. Nothing else in this database writes for this tenant, so it cannot stay busy.
    let rows: { seq: string | null }[] = [];
    for (let i = 0; i < 100; i += 1) {
      rows = await t.db.withTenant(tenantId, (em) => em.query('SELECT seq FROM audit_events'));
      if (rows[0]?.seq != null) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(rows).toEqual([{ seq: '1' }]);
  });

  it('never seals a rolled-back event, and the periodic pass seals what no writer sealed', async () => {
    const tenantId = await createTenant(t.db);
    const c = writer(2);
    await begin(c, tenantId);
    await insertEvent(c, tenantId, 'rolled.back');
    await c.query('ROLLBACK');
    await begin(c, tenantId);
    const kept = await insertEvent(c, tenantId, 'kept');
    await c.query('COMMIT');
    // Inserted on a plain connection: no writer's seal ran. The periodic pass finds the tenant.
    let passes = 0;
    while ((await events(tenantId))[0]?.seq == null && passes < 100) {
      await sealPendingTenants(t.db);
      passes += 1;
    }
    expect(await events(tenantId)).toEqual([expect.objectContaining({ id: kept, action: 'kept', seq: '1' })]);
  });

  it('refuses to let the runtime role seal or change an event itself', async () => {
    const tenantId = await createTenant(t.db);
    const other = await createTenant(t.db);
    const c = writer(3);
    await begin(c, tenantId);
    const id = await insertEvent(c, tenantId, 'target');
    await c.query('COMMIT');
    const asApp = (sql: string) =>
      t.asApp(`BEGIN; SELECT set_config('app.tenant_id', '${tenantId}', true); ${sql}; COMMIT`);
    // No UPDATE grant, with or without the sealer's flag.
    await expect(
      asApp(`UPDATE audit_events SET seq = 1, prev_hash = repeat('0', 64), hash = repeat('a', 64)`),
    ).rejects.toThrow(/permission denied/);
    await expect(
      asApp(`SELECT set_config('gatehouse.audit_seal', 'on', true);
             UPDATE audit_events SET seq = 1, prev_hash = repeat('0', 64), hash = repeat('a', 64)`),
    ).rejects.toThrow(/permission denied/);
    await expect(asApp('DELETE FROM audit_events')).rejects.toThrow(/permission denied/);
    // audit_seal seals only the transaction's own tenant.
    await expect(asApp(`SELECT * FROM audit_seal('${other}', 10, true)`)).rejects.toThrow(
      /not the current tenant/,
    );
    // The owner with the sealer's flag may set an unsealed event's links, and nothing else: the
    // content it tried to change is put back.
    await t
      .asOwner(
        `BEGIN; SET LOCAL app.tenant_id = '${tenantId}';
                     SELECT set_config('gatehouse.audit_seal', 'on', true);
                     UPDATE audit_events SET action = 'changed' WHERE id = '${id}'; COMMIT`,
      )
      .catch((error: unknown) => expect(String(error)).toMatch(/append-only/));
    expect((await events(tenantId)).map((e) => e.action)).toEqual(['target']);
    expect(await sealTrail(t.db, tenantId)).toMatchObject({ unsealed: 0, headSeq: 1 });
    // Sealed: no second seal and no change, flag or not.
    for (const flag of ['on', 'off'])
      await expect(
        t.asOwner(`BEGIN; SET LOCAL app.tenant_id = '${tenantId}';
                   SELECT set_config('gatehouse.audit_seal', '${flag}', true);
                   UPDATE audit_events SET seq = 5, action = 'changed' WHERE id = '${id}'; COMMIT`),
      ).rejects.toThrow(/append-only/);
    expect(await verifyAuditChain(t.db, tenantId)).toEqual({ valid: true, checked: 1, firstBrokenSeq: null });
  });

  it('names links the owner sealed by hand that the database would not have computed', async () => {
    const tenantId = await createTenant(t.db);
    const c = writer(1);
    await begin(c, tenantId);
    const id = await insertEvent(c, tenantId, 'hand.sealed');
    await c.query('COMMIT');
    await t.asOwner(`BEGIN; SET LOCAL app.tenant_id = '${tenantId}';
                     SELECT set_config('gatehouse.audit_seal', 'on', true);
                     UPDATE audit_events SET seq = 1, prev_hash = repeat('0', 64), hash = repeat('a', 64)
                      WHERE id = '${id}'; COMMIT`);
    expect(await verifyAuditChain(t.db, tenantId)).toEqual({ valid: false, checked: 0, firstBrokenSeq: 1 });
  });

  it('detects a sealed event rewritten by the owner behind the guard', async () => {
    const tenantId = await createTenant(t.db);
    const c = writer(0);
    for (const action of ['a', 'b', 'c']) {
      await begin(c, tenantId);
      await insertEvent(c, tenantId, action);
      await c.query('COMMIT');
    }
    await sealTrail(t.db, tenantId);
    await t.asOwner(`
      BEGIN;
      SET LOCAL app.tenant_id = '${tenantId}';
      ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only;
      UPDATE audit_events SET action = 'forged' WHERE tenant_id = '${tenantId}' AND seq = 2;
      ALTER TABLE audit_events ENABLE TRIGGER audit_events_append_only;
      COMMIT;`);
    expect(await verifyAuditChain(t.db, tenantId)).toEqual({ valid: false, checked: 1, firstBrokenSeq: 2 });
  });
});

describe('audit sealer, per-tenant horizon', () => {
  it("seals and lists a tenant's events while another database of the cluster and another tenant hold transactions open", async () => {
    const tenantA = await createTenant(t.db);
    const tenantB = await createTenant(t.db);
    // A long transaction with an xid in another database of the same cluster (a report, pg_dump):
    // it holds back the cluster's snapshot xmin, which the first sealer waited for.
    const elsewhere = new pg.Client({ connectionString: testEnv('adminUrl') });
    await elsewhere.connect();
    const b = writer(2);
    try {
      await elsewhere.query('BEGIN');
      const [{ xid }] = (await elsewhere.query<{ xid: string }>('SELECT pg_current_xact_id()::text AS xid'))
        .rows as [{ xid: string }];
      // …and an open writer of another tenant in this database, with an event inserted.
      await begin(b, tenantB);
      await insertEvent(b, tenantB, 'b.open');

      // Tenant A writes as the service does; its node's background seal needs no read.
      for (const action of ['a.one', 'a.two'])
        await t.db.withTenant(tenantA, (em) =>
          recordAudit(em, tenantA, { actor: { type: 'system', id: null }, action }),
        );
      let rows: Sealed[] = [];
      for (let i = 0; i < 100; i += 1) {
        rows = await events(tenantA);
        if (rows.every((r) => r.seq !== null)) break;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      expect(rows.map((r) => [r.action, r.seq])).toEqual([
        ['a.one', '1'],
        ['a.two', '2'],
      ]);
      // The other database's transaction is still open and older than A's events.
      expect(
        await t.asOwner<{ open: boolean }>(
          `SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE backend_xid::text = $1) AS open`,
          [xid],
        ),
      ).toEqual([{ open: true }]);
      // Listing and verifying A answer with both events, sealed.
      const page = await listAuditEvents(t.db, tenantA, { order: 'asc', limit: 10, offset: 0 });
      expect(page.data.map((e) => [e.action, e.seq])).toEqual([
        ['a.one', 1],
        ['a.two', 2],
      ]);
      expect(await sealTrail(t.db, tenantA)).toMatchObject({ unsealed: 0, busy: false, headSeq: 2 });
      expect(await verifyAuditChain(t.db, tenantA)).toEqual({
        valid: true,
        checked: 2,
        firstBrokenSeq: null,
      });

      // B's own open writer is what holds B's committed event back, and only B's.
      const later = writer(3);
      await begin(later, tenantB);
      await insertEvent(later, tenantB, 'b.committed');
      await later.query('COMMIT');
      expect(await sealOnce(tenantB)).toMatchObject({ sealed: 0, unsealed: 1, busy: true });
      await b.query('COMMIT');
      expect(await sealTrail(t.db, tenantB)).toMatchObject({ unsealed: 0, busy: false, headSeq: 2 });
      expect((await events(tenantB)).map((e) => [e.action, e.seq])).toEqual([
        ['b.open', '1'],
        ['b.committed', '2'],
      ]);
    } finally {
      await b.query('ROLLBACK').catch(() => undefined);
      await elsewhere.query('ROLLBACK').catch(() => undefined);
      await elsewhere.end();
    }
  });
});

describe('audit sealer (property)', () => {
  type Step = { kind: 'writer'; index: number } | { kind: 'seal' };
  const plan = fc.record({
    writers: fc.array(fc.record({ events: fc.integer({ min: 1, max: 3 }), commit: fc.boolean() }), {
      minLength: 2,
      maxLength: 4,
    }),
    steps: fc.array(
      fc.oneof(
        { weight: 4, arbitrary: fc.record({ kind: fc.constant('writer' as const), index: fc.nat(3) }) },
        { weight: 1, arbitrary: fc.record({ kind: fc.constant('seal' as const) }) },
      ),
      { maxLength: 30 },
    ),
  });

  it('random interleavings of writers, rollbacks and seals end in one gapless chain of exactly the committed events', async () => {
    await fc.assert(
      fc.asyncProperty(plan, async ({ writers: specs, steps }) => {
        const tenantId = await createTenant(t.db);
        // Each writer's program: BEGIN, its inserts, then COMMIT or ROLLBACK.
        const progress = specs.map(() => 0);
        const committed = new Set<string>();
        const written = specs.map(() => [] as string[]);
        const advance = async (i: number): Promise<void> => {
          const spec = specs[i]!;
          const c = writer(i);
          const at = progress[i]!;
          if (at > spec.events + 1) return;
          progress[i] = at + 1;
          if (at === 0) await begin(c, tenantId);
          else if (at <= spec.events) written[i]!.push(await insertEvent(c, tenantId, `w${i}.e${at}`));
          else if (spec.commit) {
            await c.query('COMMIT');
            for (const id of written[i]!) committed.add(id);
          } else await c.query('ROLLBACK');
        };
        try {
          for (const step of steps as Step[]) {
            if (step.kind === 'seal') await sealOnce(tenantId);
            else if (step.index < specs.length) await advance(step.index);
          }
          for (let i = 0; i < specs.length; i += 1)
            while (progress[i]! <= specs[i]!.events + 1) await advance(i);
        } finally {
          // A failed step leaves no writer inside a transaction for the next run (or shrink).
          for (const c of writers) await c.query('ROLLBACK').catch(() => undefined);
        }

        const final = await sealTrail(t.db, tenantId);
        const rows = await events(tenantId);
        const verified = await verifyAuditChain(t.db, tenantId);
        expect(final.unsealed).toBe(0);
        expect(verified).toEqual({ valid: true, checked: committed.size, firstBrokenSeq: null });
        // Gapless, each committed event exactly once, nothing rolled back.
        expect(rows.map((r) => Number(r.seq))).toEqual(rows.map((_, i) => i + 1));
        expect(rows.map((r) => r.id).sort()).toEqual([...committed].sort());
        // The order is the committed events' insertion order, whenever the seals ran.
        const byInsertion = [...rows].sort((x, y) => Number(x.insert_no) - Number(y.insert_no));
        expect(rows.map((r) => r.id)).toEqual(byInsertion.map((r) => r.id));
      }),
      { numRuns: fuzzRuns(12), seed: fuzzSeed(1767200000) },
    );
  });
});
