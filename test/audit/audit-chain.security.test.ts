import { recordAudit, verifyAuditChain } from '../../src/audit/audit.service.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { createTenant } from '../support/factories.js';

let t: TestDatabase;
let acme: string;
let globex: string;

const operator = { type: 'operator' as const, id: 'operator' };

beforeAll(async () => {
  t = await createTestDatabase();
  acme = await createTenant(t.db, 'acme');
  globex = await createTenant(t.db, 'globex');
  for (const action of ['tenant.created', 'domain.added', 'domain.verified']) {
    await t.db.withTenant(acme, (em) =>
      recordAudit(em, acme, {
        actor: operator,
        action,
        target: { type: 'tenant', id: acme },
        after: { n: action },
      }),
    );
  }
  await t.db.withTenant(globex, (em) =>
    recordAudit(em, globex, { actor: operator, action: 'tenant.created' }),
  );
});
afterAll(() => t.close());

describe('audit trail', () => {
  it('chains each tenant separately and verifies intact chains', async () => {
    expect(await verifyAuditChain(t.db, acme)).toEqual({ valid: true, checked: 3, firstBrokenSeq: null });
    expect(await verifyAuditChain(t.db, globex)).toEqual({ valid: true, checked: 1, firstBrokenSeq: null });
    const rows = await t.db.withTenant(acme, (em) =>
      em.query('SELECT seq, prev_hash, hash FROM audit_events ORDER BY seq'),
    );
    expect(rows.map((r: { seq: string }) => Number(r.seq))).toEqual([1, 2, 3]);
    expect(rows[1].prev_hash).toBe(rows[0].hash);
  });

  it('chains concurrent writers without gaps or forks', async () => {
    const tenant = await createTenant(t.db);
    await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        t.db.withTenant(tenant, (em) =>
          recordAudit(em, tenant, { actor: operator, action: `concurrent.${i}` }),
        ),
      ),
    );
    expect(await verifyAuditChain(t.db, tenant)).toEqual({ valid: true, checked: 12, firstBrokenSeq: null });
  });

  it('refuses UPDATE and DELETE, even as the owner', async () => {
    await expect(
      t.db.withTenant(acme, (em) => em.query(`UPDATE audit_events SET action = 'x'`)),
    ).rejects.toThrow(/permission denied|append-only/);
    await expect(t.db.withTenant(acme, (em) => em.query('DELETE FROM audit_events'))).rejects.toThrow(
      /permission denied|append-only/,
    );
    // The owner is under forced RLS too: it sets the tenant so the rows are there to refuse.
    const asOwnerInAcme = (sql: string) =>
      t.asOwner(`BEGIN; SET LOCAL app.tenant_id = '${acme}'; ${sql}; COMMIT`);
    await expect(asOwnerInAcme(`UPDATE audit_events SET action = 'x'`)).rejects.toThrow(/append-only/);
    await expect(asOwnerInAcme('DELETE FROM audit_events')).rejects.toThrow(/append-only/);
    await expect(asOwnerInAcme('TRUNCATE audit_events')).rejects.toThrow(/append-only/);
    expect(await verifyAuditChain(t.db, acme)).toMatchObject({ valid: true, checked: 3 });
  });

  it("hides one tenant's events from another", async () => {
    const seen = await t.db.withTenant(globex, (em) =>
      em.query('SELECT DISTINCT tenant_id FROM audit_events'),
    );
    expect(seen).toEqual([{ tenant_id: globex }]);
  });

  it('detects a row altered behind the triggers by the table owner', async () => {
    const tenant = await createTenant(t.db);
    for (const action of ['a', 'b', 'c']) {
      await t.db.withTenant(tenant, (em) =>
        recordAudit(em, tenant, { actor: operator, action, after: { ok: true } }),
      );
    }
    // The owner can switch the guard off: the chain is what catches it.
    await t.asOwner(`
      BEGIN;
      SET LOCAL app.tenant_id = '${tenant}';
      ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only;
      UPDATE audit_events SET after = '{"ok": false}' WHERE tenant_id = '${tenant}' AND seq = 2;
      ALTER TABLE audit_events ENABLE TRIGGER audit_events_append_only;
      COMMIT;`);
    expect(await verifyAuditChain(t.db, tenant)).toEqual({ valid: false, checked: 1, firstBrokenSeq: 2 });
  });

  it('detects a deleted row', async () => {
    const tenant = await createTenant(t.db);
    for (const action of ['a', 'b', 'c']) {
      await t.db.withTenant(tenant, (em) => recordAudit(em, tenant, { actor: operator, action }));
    }
    await t.asOwner(`
      BEGIN;
      SET LOCAL app.tenant_id = '${tenant}';
      ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only;
      DELETE FROM audit_events WHERE tenant_id = '${tenant}' AND seq = 2;
      ALTER TABLE audit_events ENABLE TRIGGER audit_events_append_only;
      COMMIT;`);
    expect(await verifyAuditChain(t.db, tenant)).toMatchObject({ valid: false, firstBrokenSeq: 3 });
  });

  it('never stores secret-looking fields', async () => {
    const tenant = await createTenant(t.db);
    await t.db.withTenant(tenant, (em) =>
      recordAudit(em, tenant, {
        actor: operator,
        action: 'connection.created',
        after: { name: 'okta', clientSecret: 's3cret', nested: { token_hash: 'h', SAMLResponse: 'PD94' } },
      }),
    );
    const [row] = await t.db.withTenant(tenant, (em) =>
      em.query('SELECT after::text AS after FROM audit_events'),
    );
    expect(row.after).not.toMatch(/s3cret|PD94|"h"/);
    expect(JSON.parse(row.after)).toEqual({
      name: 'okta',
      clientSecret: '[redacted]',
      nested: { token_hash: '[redacted]', SAMLResponse: '[redacted]' },
    });
  });
});
