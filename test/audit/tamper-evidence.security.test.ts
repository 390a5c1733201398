import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { compactVerify, importJWK, type JWK } from 'jose';
import { recordAudit, verifyAuditChain } from '../../src/audit/audit.service.js';
import { deriveCheckpointKey, type CheckpointSigningKey } from '../../src/audit/checkpoint-key.js';
import { buildAdminTestApp, type AdminTestApp } from '../support/admin.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { listen, runCli } from '../cli/support.js';
import { fuzzRuns, fuzzSeed } from '../scim/hardening-support.js';

/**
 * Tamper evidence that survives the owner (issue 12): every attack is done for
 * real, as the owner role (the role Gatehouse migrates with), on the migrated
 * database — switch the guard trigger off, rewrite, switch it back on — and
 * verification must name it. The runtime role cannot switch the guard off at all.
 */
let t: TestDatabase;
let a: AdminTestApp;
let key: CheckpointSigningKey;

beforeAll(async () => {
  t = await createTestDatabase();
  a = buildAdminTestApp(t);
  key = await deriveCheckpointKey(a.secrets.masterKey);
});
afterAll(() => t.close());

const operator = { type: 'operator' as const, id: 'operator' };
let tenants = 0;

/** A tenant whose trail holds `n` events (tenant.created, then e.2 … e.n). */
async function trail(n: number): Promise<string> {
  tenants += 1;
  const tenantId = await a.createTenant(`tamper-${tenants}`, `Tamper ${tenants}`);
  for (let i = 2; i <= n; i += 1) {
    await t.db.withTenant(tenantId, (em) =>
      recordAudit(em, tenantId, {
        actor: operator,
        action: `e.${i}`,
        target: { type: 'thing', id: `t${i}` },
        after: { n: i, name: `value ${i}` },
      }),
    );
  }
  return tenantId;
}

const checkpoint = (tenantId: string) =>
  a.op().post(`/admin/v1/tenants/${tenantId}/audit-checkpoints`).send({});
/** The server's verification; every event was sealed by then (issue 13), so the unsealed tail is empty. */
const verify = async (tenantId: string) => {
  const { unsealed, oldest_unsealed_at, ...rest } = (
    await a.op().get(`/admin/v1/tenants/${tenantId}/audit-events/verify`).expect(200)
  ).body as Record<string, unknown>;
  expect({ unsealed, oldest_unsealed_at }).toEqual({ unsealed: 0, oldest_unsealed_at: null });
  return rest;
};

/** Runs `sql` as the owner in the tenant, with both guards switched off (what the owner can do). */
const tamper = (tenantId: string, sql: string) =>
  t.asOwner(`
    BEGIN;
    SET LOCAL app.tenant_id = '${tenantId}';
    ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only;
    ALTER TABLE audit_checkpoints DISABLE TRIGGER audit_checkpoints_append_only;
    ${sql};
    ALTER TABLE audit_events ENABLE TRIGGER audit_events_append_only;
    ALTER TABLE audit_checkpoints ENABLE TRIGGER audit_checkpoints_append_only;
    COMMIT;`);

/** Every hash from seq 1 recomputed in order: a chain consistent with itself again. */
const RECOMPUTE = (tenantId: string) => `
  DO $$ DECLARE r record; prev text := repeat('0', 64); BEGIN
    FOR r IN SELECT seq FROM audit_events WHERE tenant_id = '${tenantId}' ORDER BY seq LOOP
      UPDATE audit_events SET prev_hash = prev WHERE tenant_id = '${tenantId}' AND seq = r.seq;
      -- chain v2: the salted digest of personal fields first (the owner holds the salt)
      UPDATE audit_events e SET content_digest = audit_event_content_digest(e)
       WHERE tenant_id = '${tenantId}' AND seq = r.seq AND e.pii_salt IS NOT NULL;
      UPDATE audit_events e SET hash = audit_event_hash(e)
       WHERE tenant_id = '${tenantId}' AND seq = r.seq RETURNING hash INTO prev;
    END LOOP;
  END $$`;

const intact = {
  valid: true,
  first_broken_seq: null,
  erased_unverifiable_seqs: [],
  forged_checkpoint_seq: null,
  checkpoint_mismatch_seq: null,
  truncated_after_seq: null,
};

describe('signed checkpoints', () => {
  it('signs the head with a key outsiders verify from the published JWK, once per head', async () => {
    const tenantId = await trail(3);
    const first = await checkpoint(tenantId).expect(201);
    expect(first.body).toMatchObject({ tenant_id: tenantId, seq: 3, key_id: key.kid });
    const jwks = (await a.op().get('/admin/v1/audit-checkpoint-key').expect(200)).body as { keys: JWK[] };
    expect(jwks.keys).toEqual([expect.objectContaining({ kty: 'OKP', crv: 'Ed25519', kid: key.kid })]);
    expect(JSON.stringify(jwks)).not.toMatch(/"d"/);
    const verified = await compactVerify(first.body.signature, await importJWK(jwks.keys[0]!, 'EdDSA'), {
      algorithms: ['EdDSA'],
    });
    expect(JSON.parse(new TextDecoder().decode(verified.payload))).toEqual({
      tenant_id: tenantId,
      seq: 3,
      hash: first.body.hash,
      time: first.body.created_at,
    });
    // Unchanged head: the same checkpoint, not a second one.
    expect((await checkpoint(tenantId).expect(200)).body).toEqual(first.body);
    const listed = await a.op().get(`/admin/v1/tenants/${tenantId}/audit-checkpoints`).expect(200);
    expect(listed.body).toMatchObject({ total: 1, data: [first.body] });
    expect(await verify(tenantId)).toEqual({ ...intact, checked: 3, checkpoints_checked: 1 });
  });

  it('lets a tenant admin checkpoint their own trail, and refuses bad input and empty trails', async () => {
    const tenantId = await trail(2);
    const admin = a.tenantAdmin(tenantId, 'u-admin');
    expect((await admin.post(`/admin/v1/tenants/${tenantId}/audit-checkpoints`).send({})).status).toBe(201);
    expect((await admin.get('/admin/v1/audit-checkpoint-key')).body).toMatchObject({ code: 'forbidden' });
    const bad = await checkpoint(tenantId).send({ seq: 1 });
    expect(bad.status).toBe(400);
    expect(bad.body).toMatchObject({ code: 'bad_request' });
    expect((await a.op().get(`/admin/v1/tenants/${tenantId}/audit-checkpoints?limit=0`)).status).toBe(400);
    // A tenant whose trail is empty (created behind the API): nothing to sign.
    const [row] = await t.asOwner<{ id: string }>(
      `INSERT INTO tenants (slug, name) VALUES ('empty-trail', 'Empty') RETURNING id`,
    );
    const empty = await checkpoint(row!.id);
    expect(empty.status).toBe(409);
    expect(empty.body).toMatchObject({ code: 'conflict' });
  });
});

describe('the guard', () => {
  it('cannot be switched off, dropped or bypassed by the runtime role', async () => {
    for (const sql of [
      'ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only',
      'ALTER TABLE audit_events DISABLE TRIGGER ALL',
      'ALTER TABLE audit_checkpoints DISABLE TRIGGER audit_checkpoints_append_only',
      'DROP TRIGGER audit_events_append_only ON audit_events',
      'ALTER TABLE audit_events NO FORCE ROW LEVEL SECURITY',
    ])
      await expect(t.asApp(sql)).rejects.toThrow(/must be owner/);
    await expect(t.asApp('SET session_replication_role = replica')).rejects.toThrow(/permission denied/);
    await expect(t.asApp('UPDATE audit_checkpoints SET seq = seq')).rejects.toThrow(/permission denied/);
    await expect(t.asApp('DELETE FROM audit_checkpoints')).rejects.toThrow(/permission denied/);
    await expect(t.asApp('TRUNCATE audit_checkpoints')).rejects.toThrow(/permission denied/);
    // The owner can switch it off (that is the threat), but not silently: see the attacks below.
    const tenantId = await trail(2);
    await checkpoint(tenantId).expect(201);
    const asOwner = (sql: string) =>
      t.asOwner(`BEGIN; SET LOCAL app.tenant_id = '${tenantId}'; ${sql}; COMMIT`);
    await expect(asOwner('DELETE FROM audit_checkpoints')).rejects.toThrow(/append-only/);
    await expect(asOwner('TRUNCATE audit_checkpoints')).rejects.toThrow(/append-only/);
  });
});

describe('attacks by the owner, named by verification', () => {
  it('an event edited before the latest checkpoint', async () => {
    const tenantId = await trail(5);
    await checkpoint(tenantId).expect(201);
    await tamper(tenantId, `UPDATE audit_events SET after = '{"n": 99}' WHERE seq = 2`);
    expect(await verify(tenantId)).toMatchObject({ valid: false, first_broken_seq: 2, checked: 1 });
  });

  it('an event deleted from the middle', async () => {
    const tenantId = await trail(5);
    await checkpoint(tenantId).expect(201);
    await tamper(tenantId, `DELETE FROM audit_events WHERE seq = 3`);
    expect(await verify(tenantId)).toMatchObject({ valid: false, first_broken_seq: 4, checked: 2 });
  });

  it('the tail truncated (a chain that is intact by itself)', async () => {
    const tenantId = await trail(6);
    await checkpoint(tenantId).expect(201);
    await tamper(tenantId, `DELETE FROM audit_events WHERE seq > 4`);
    expect(await verifyAuditChain(t.db, tenantId)).toEqual({ valid: true, checked: 4, firstBrokenSeq: null });
    expect(await verify(tenantId)).toEqual({
      ...intact,
      valid: false,
      checked: 4,
      checkpoints_checked: 1,
      truncated_after_seq: 4,
    });
  });

  it('the whole chain recomputed after a forged event and the newest event deleted (passed before checkpoints)', async () => {
    const tenantId = await trail(4);
    await checkpoint(tenantId).expect(201); // seq 4
    for (let i = 5; i <= 6; i += 1)
      await t.db.withTenant(tenantId, (em) =>
        recordAudit(em, tenantId, { actor: operator, action: `e.${i}` }),
      );
    await checkpoint(tenantId).expect(201); // seq 6
    await tamper(
      tenantId,
      `UPDATE audit_events SET action = 'e.innocent' WHERE seq = 3;
       DELETE FROM audit_events WHERE seq = 6;
       ${RECOMPUTE(tenantId)}`,
    );
    // The chain alone cannot tell: this is the report.
    expect(await verifyAuditChain(t.db, tenantId)).toEqual({ valid: true, checked: 5, firstBrokenSeq: null });
    expect(await verify(tenantId)).toEqual({
      ...intact,
      valid: false,
      checked: 5,
      checkpoints_checked: 2,
      checkpoint_mismatch_seq: 4,
      truncated_after_seq: 5,
    });
  });

  it('checkpoints forged to match the rewritten chain, re-signed with another key', async () => {
    const tenantId = await trail(4);
    const genuine = (await checkpoint(tenantId).expect(201)).body;
    await tamper(
      tenantId,
      `UPDATE audit_events SET actor_id = 'someone-else' WHERE seq = 2; ${RECOMPUTE(tenantId)}`,
    );
    const [head] = await t.db.withTenant(tenantId, (em) =>
      em.query<{ hash: string }[]>('SELECT hash FROM audit_events WHERE seq = 4'),
    );
    // Another key, even one claiming the genuine key id.
    const forger = await deriveCheckpointKey(Buffer.alloc(32, 7));
    const signature = await forger.sign({
      tenant_id: tenantId,
      seq: 4,
      hash: head!.hash,
      time: genuine.created_at,
    });
    await tamper(
      tenantId,
      `UPDATE audit_checkpoints SET head_hash = '${head!.hash}', signature = '${signature}' WHERE seq = 4`,
    );
    expect(await verify(tenantId)).toEqual({
      ...intact,
      valid: false,
      checked: 4,
      checkpoints_checked: 1,
      forged_checkpoint_seq: 4,
    });
    // A forged checkpoint needs no guard switched off to be inserted: it is named all the same.
    const extra = await forger.sign({
      tenant_id: tenantId,
      seq: 2,
      hash: 'a'.repeat(64),
      time: genuine.created_at,
    });
    await t.db.withTenant(tenantId, (em) =>
      em.query(
        `INSERT INTO audit_checkpoints (tenant_id, seq, head_hash, created_at, signature, key_id)
         VALUES ($1, 2, $2, $3, $4, $5)`,
        [tenantId, 'a'.repeat(64), genuine.created_at, extra, key.kid],
      ),
    );
    expect(await verify(tenantId)).toMatchObject({ valid: false, forged_checkpoint_seq: 2 });
  });

  it('gatehouse audit verify --checkpoints: a rewrite with every database checkpoint deleted, caught from the file', async () => {
    const tenantId = await trail(5);
    await checkpoint(tenantId).expect(201);
    const saved = (await a.op().get(`/admin/v1/tenants/${tenantId}/audit-checkpoints`).expect(200)).body;
    const jwks = (await a.op().get('/admin/v1/audit-checkpoint-key').expect(200)).body;
    const dir = await mkdtemp(path.join(tmpdir(), 'gatehouse-checkpoints-'));
    const server = await listen(a.app);
    try {
      const file = path.join(dir, 'checkpoints.json');
      const keyFile = path.join(dir, 'key.json');
      await writeFile(file, JSON.stringify(saved));
      await writeFile(keyFile, JSON.stringify(jwks));
      const env = { GATEHOUSE_BASE_URL: server.url, GATEHOUSE_ADMIN_TOKEN: a.secrets.adminToken };
      const cli = (...args: string[]) => runCli(['audit', 'verify', '--tenant', tenantId, ...args], env);

      const before = await cli('--checkpoints', file, '--key', keyFile);
      expect(before).toMatchObject({ code: 0, stderr: '' });
      expect(before.json).toEqual({ ...intact, checked: 5, checkpoints_checked: 1 });

      // Rewrite event 2, recompute every hash, drop the newest event and every checkpoint row.
      await tamper(
        tenantId,
        `UPDATE audit_events SET target_id = 'elsewhere' WHERE seq = 2;
         DELETE FROM audit_events WHERE seq = 5;
         ${RECOMPUTE(tenantId)};
         DELETE FROM audit_checkpoints`,
      );
      // The database alone now vouches for the forgery: nothing left inside to compare with.
      expect(await verify(tenantId)).toEqual({ ...intact, checked: 4, checkpoints_checked: 0 });

      const after = await cli('--checkpoints', file, '--key', keyFile);
      expect(after.code).toBe(1);
      expect(after.json).toEqual({
        ...intact,
        valid: false,
        checked: 4,
        checkpoints_checked: 1,
        truncated_after_seq: 4,
      });
      // The key fetched from the server works the same; a checkpoint file that is not one is refused.
      expect((await cli('--checkpoints', file)).json).toMatchObject({ valid: false, truncated_after_seq: 4 });
      await writeFile(path.join(dir, 'bad.json'), '{"data": [{"seq": "x"}]}');
      const bad = await cli('--checkpoints', path.join(dir, 'bad.json'));
      expect(bad.code).toBe(1);
      expect(bad.stderr).toMatch(/not a list of audit checkpoints/);
    } finally {
      await server.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

/** One change an owner can make after a checkpoint, as SQL; every value differs from what is stored (`x-…`). */
type Mutation = { table: 'audit_events' | 'audit_checkpoints'; set: string };

const word = fc.stringMatching(/^[a-z0-9]{1,12}$/).map((v) => `x-${v}`);
const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc
    .tuple(fc.constantFrom('actor_id', 'action', 'target_type', 'target_id', 'request_id', 'source_ip'), word)
    .map(([column, v]) => ({ table: 'audit_events' as const, set: `${column} = '${v}'` })),
  fc
    .constantFrom('before', 'after')
    .chain((column) =>
      word.map((v) => ({ table: 'audit_events' as const, set: `${column} = '{"x": "${v}"}'` })),
    ),
  fc.integer({ min: 1, max: 10 ** 9 }).map((us) => ({
    table: 'audit_events' as const,
    set: `occurred_at = occurred_at + interval '${us} microseconds'`,
  })),
  fc.constantFrom(
    { table: 'audit_events' as const, set: `actor_type = 'system'` },
    { table: 'audit_events' as const, set: 'id = gen_random_uuid()' },
    { table: 'audit_events' as const, set: 'seq = seq + 1000' },
    { table: 'audit_events' as const, set: `prev_hash = repeat('1', 64)` },
    { table: 'audit_events' as const, set: `hash = repeat('2', 64)` },
    { table: 'audit_checkpoints' as const, set: 'seq = seq + 1000' },
    { table: 'audit_checkpoints' as const, set: `head_hash = repeat('3', 64)` },
    { table: 'audit_checkpoints' as const, set: `created_at = created_at + interval '1 millisecond'` },
    { table: 'audit_checkpoints' as const, set: `key_id = 'other-key'` },
  ),
  word.map((v) => ({ table: 'audit_checkpoints' as const, set: `signature = signature || '${v}'` })),
);

describe('any single change after a checkpoint (property)', () => {
  it('is reported by verification, whatever field of whatever event or checkpoint it touches', async () => {
    const runs = Math.min(fuzzRuns(20), 200);
    await fc.assert(
      fc.asyncProperty(mutation, fc.integer({ min: 1, max: 3 }), async (m, seq) => {
        const tenantId = await trail(3);
        await checkpoint(tenantId).expect(201);
        const changed = `UPDATE ${m.table} SET ${m.set} WHERE seq = ${m.table === 'audit_checkpoints' ? 3 : seq}`;
        await tamper(tenantId, changed);
        const result = await verify(tenantId);
        expect({ change: changed, valid: result.valid }).toEqual({ change: changed, valid: false });
      }),
      { numRuns: runs, seed: fuzzSeed(1212) },
    );
  });
});
