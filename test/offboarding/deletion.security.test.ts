import { randomUUID } from 'node:crypto';
import { checkpointKey } from '../../src/audit/checkpoint-key.js';
import { verifyAuditTrail } from '../../src/audit/checkpoints.service.js';
import { deleteTenantWithRecord } from '../../src/offboarding/deletion.js';
import { runPurgeSweep } from '../../src/offboarding/purge-sweep.js';
import { startWebhookDelivery, type WebhookDelivery } from '../../src/webhooks/webhook-delivery.js';
import { GROUP_SCHEMA, issueToken, newUser, scimClient } from '../scim/support.js';
import { buildAdminTestApp, type AdminTestApp } from '../support/admin.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { registerWebhookApp, startWebhookReceiver, type WebhookReceiver } from '../webhooks/support.js';
import { scanDatabase } from './deletion-scan.js';

/**
 * Deleting a tenant with a record, and purging it (issue 12): at deletion
 * everything stops, apps hear `tenant.deleted`, pending payloads naming
 * people go, a final checkpoint is signed; the rows stay unreachable until
 * the purge, which leaves none of the tenant's personal data in any table.
 */
let t: TestDatabase;
let a: AdminTestApp;
let receiver: WebhookReceiver;
let worker: WebhookDelivery | undefined;
const RETENTION = 3600;

beforeAll(async () => {
  t = await createTestDatabase();
  a = buildAdminTestApp(t, { GATEHOUSE_TENANT_RETENTION: String(RETENTION) });
  receiver = await startWebhookReceiver();
  receiver.secret = (await registerWebhookApp(t.db, a.secrets.masterKey, receiver.url)).secret;
});
afterAll(async () => {
  await worker?.stop();
  await receiver.close();
  await t.close();
});

/** A tenant with people, a group and a domain, made through SCIM and the admin API; the values that name them. */
async function populatedTenant(label: string) {
  const tag = randomUUID().slice(0, 8);
  const slug = `${label}-${tag}`;
  const tenantId = await a.createTenant(slug, `${label} Corp`);
  const scim = scimClient(a.app, tenantId, (await issueToken(t.db, tenantId)).token);
  const people = [
    { userName: `zelda.${tag}@${label}.test`, given: `Zeldarina${tag}`, family: `Quuxington${tag}` },
    { userName: `yorick.${tag}@${label}.test`, given: `Yorickson${tag}`, family: `Plumbottom${tag}` },
  ];
  const ids: string[] = [];
  for (const p of people) {
    const res = await scim
      .post(
        '/Users',
        newUser(p.userName, {
          name: { givenName: p.given, familyName: p.family },
          displayName: `${p.given} ${p.family}`,
          externalId: `ext-${p.given}`,
        }),
      )
      .expect(201);
    ids.push(res.body.id as string);
  }
  await scim
    .post('/Groups', {
      schemas: [GROUP_SCHEMA],
      displayName: `Secret Society ${tag}`,
      members: ids.map((value) => ({ value })),
    })
    .expect(201);
  const domain = `${label}-${tag}.test`;
  await a.op().post(`/admin/v1/tenants/${tenantId}/domains`).send({ domain }).expect(201);
  const values = people.flatMap((p) => [p.userName, p.given, p.family, `ext-${p.given}`]);
  return { tenantId, slug, scim, ids, values, domain };
}

/** Home realm discovery's pre-tenant lookup, as the runtime role calls it. */
async function resolveDomain(domain: string): Promise<string | null> {
  const [row] = await t.asApp<{ tenant: string | null }>('SELECT resolve_tenant_by_domain($1) AS tenant', [
    domain,
  ]);
  return row?.tenant ?? null;
}

const deletion = (tenantId: string) => a.op().get(`/admin/v1/tenants/${tenantId}/deletion`);

describe('deleting a tenant with a record', () => {
  it('revokes at once, tells the apps with tenant.deleted, drops payloads naming people and signs a final checkpoint', async () => {
    const doomed = await populatedTenant('doomed');
    const pending = await t.db.withTenant(doomed.tenantId, (em) =>
      em.query<{ event_type: string }[]>('SELECT event_type FROM webhook_outbox'),
    );
    // The control: user and group events naming the people were waiting for delivery.
    expect(pending.map((r) => r.event_type)).toEqual(
      expect.arrayContaining(['user.created', 'group.created']),
    );

    await a.op().delete(`/admin/v1/tenants/${doomed.tenantId}`).expect(204);

    const record = (await deletion(doomed.tenantId).expect(200)).body;
    expect(record).toMatchObject({ id: doomed.tenantId, slug: doomed.slug, status: 'deleted' });
    expect(Date.parse(record.purge_after) - Date.parse(record.deleted_at)).toBe(RETENTION * 1000);
    const [head] = await t.db.withTenant(doomed.tenantId, (em) =>
      em.query<{ seq: string; hash: string; action: string }[]>(
        'SELECT seq, hash, action FROM audit_events ORDER BY seq DESC LIMIT 1',
      ),
    );
    // The final checkpoint signs the head: the tenant.deleted event itself.
    expect(head?.action).toBe('tenant.deleted');
    expect(record.final_checkpoint).toMatchObject({ seq: Number(head?.seq), hash: head?.hash });

    const left = await t.db.withTenant(doomed.tenantId, (em) =>
      em.query<{ event_type: string; payload: unknown }[]>('SELECT event_type, payload FROM webhook_outbox'),
    );
    expect([...new Set(left.map((r) => r.event_type))].sort()).toEqual([
      'audit.checkpoint',
      'tenant.deleted',
    ]);
    for (const value of doomed.values)
      expect(JSON.stringify(left).toLowerCase()).not.toContain(value.toLowerCase());

    // The app's receiver, a real HTTP server, gets tenant.deleted signed; never a user or group event.
    worker = startWebhookDelivery({ db: t.db, masterKey: a.secrets.masterKey, pollIntervalMs: 100 });
    await receiver.waitFor(2);
    const [told] = receiver.ofType('tenant.deleted');
    expect(told?.verified).toBe(true);
    expect(told?.event).toMatchObject({
      type: 'tenant.deleted',
      tenant_id: doomed.tenantId,
      data: {
        object: 'tenant',
        id: doomed.tenantId,
        slug: doomed.slug,
        deleted_at: record.deleted_at,
        purge_after: record.purge_after,
      },
    });
    expect(receiver.received.map((w) => w.event.type).filter((type) => /^(user|group)\./.test(type))).toEqual(
      [],
    );

    // The SCIM tokens are revoked, and the trail verifies against its checkpoints.
    const tokens = await t.db.withTenant(doomed.tenantId, (em) =>
      em.query<{ revoked_at: Date | null }[]>('SELECT revoked_at FROM scim_tokens'),
    );
    expect(tokens.every((r) => r.revoked_at !== null)).toBe(true);
    expect(
      (await a.op().get(`/admin/v1/tenants/${doomed.tenantId}/audit-events/verify`).expect(200)).body,
    ).toMatchObject({ valid: true, first_broken_seq: null, checkpoint_mismatch_seq: null });
  });

  it('keeps the rows during retention but unreachable: SCIM, SSO resolution and admin writes refuse the tenant', async () => {
    const kept = await populatedTenant('kept');
    await t.db.withTenant(kept.tenantId, (em) => em.query('UPDATE domains SET verified_at = now()'));
    expect(await resolveDomain(kept.domain)).toBe(kept.tenantId); // the control
    await a.op().delete(`/admin/v1/tenants/${kept.tenantId}`).expect(204);

    const users = await t.db.withTenant(kept.tenantId, (em) =>
      em.query<{ n: number }[]>('SELECT count(*)::int AS n FROM users'),
    );
    expect(users[0]?.n).toBe(2); // still there, for the operator's export
    await kept.scim.get('/Users').expect(401);
    await a.op().post(`/admin/v1/tenants/${kept.tenantId}/domains`).send({ domain: 'late.test' }).expect(404);
    await a.op().patch(`/admin/v1/tenants/${kept.tenantId}`).send({ name: 'Back' }).expect(404);
    await a.op().delete(`/admin/v1/tenants/${kept.tenantId}`).expect(404);
    // SSO starts from a verified email domain (home realm discovery): it no longer resolves to the tenant.
    expect(await resolveDomain(kept.domain)).toBeNull();
  });

  it('refuses a purge before purge_after without force with 409 and changes nothing; force purges every row', async () => {
    const gone = await populatedTenant('gone');
    const survivor = await populatedTenant('survivor');
    // The control: the scan finds every value while the tenant exists.
    expect(new Set((await scanDatabase(t, gone.values)).map((s) => s.value))).toEqual(
      new Set(gone.values.map((v) => v.toLowerCase())),
    );
    await a.op().delete(`/admin/v1/tenants/${gone.tenantId}`).expect(204);

    const before = (await deletion(gone.tenantId).expect(200)).body;
    const early = await a.op().post(`/admin/v1/tenants/${gone.tenantId}/purge`).send({});
    expect(early.status).toBe(409);
    expect(early.body).toMatchObject({ code: 'conflict' });
    expect((await deletion(gone.tenantId).expect(200)).body).toEqual(before);
    await a.op().post(`/admin/v1/tenants/${survivor.tenantId}/purge`).send({}).expect(409); // not deleted

    const purged = (
      await a.op().post(`/admin/v1/tenants/${gone.tenantId}/purge?force=true`).send({}).expect(200)
    ).body;
    expect(purged).toMatchObject({ id: gone.tenantId, slug: gone.slug, status: 'purged' });
    expect(purged.final_checkpoint).toEqual(before.final_checkpoint);

    // No table holds any of the purged tenant's people, in any column; the other tenant is whole.
    expect(await scanDatabase(t, gone.values)).toEqual([]);
    expect(new Set((await scanDatabase(t, survivor.values)).map((s) => s.value))).toEqual(
      new Set(survivor.values.map((v) => v.toLowerCase())),
    );
    const trail = await t.db.withTenant(gone.tenantId, (em) =>
      em.query<{ n: number }[]>('SELECT count(*)::int AS n FROM audit_events'),
    );
    expect(trail[0]?.n).toBe(0); // GATEHOUSE_TENANT_PURGE_AUDIT=delete (the default)
    // The tombstone keeps the slug; the platform trail records the purge, with no personal data.
    await a.op().post('/admin/v1/tenants').send({ slug: gone.slug, name: 'Again' }).expect(409);
    const recorded = await t.db.withTenant('00000000-0000-0000-0000-000000000000', (em) =>
      em.query<{ after: Record<string, unknown> }[]>(
        `SELECT after FROM audit_events WHERE action = 'tenant.purged' AND target_id = $1`,
        [gone.tenantId],
      ),
    );
    expect(recorded).toHaveLength(1);
    expect(recorded[0]?.after).toMatchObject({ slug: gone.slug, audit: 'delete', forced: true });
    await a.op().post(`/admin/v1/tenants/${gone.tenantId}/purge?force=true`).send({}).expect(409);
  });

  it('the sweep purges a tenant past its retention, keeping a pseudonymised trail that still verifies', async () => {
    const old = await populatedTenant('old');
    const fresh = await populatedTenant('fresh');
    const key = await checkpointKey(a.secrets.masterKey);
    const ctx = { actor: { type: 'operator' as const, id: 'test' } };
    await deleteTenantWithRecord({ db: t.db, retentionSeconds: 0, checkpointKey: key }, old.tenantId, ctx);
    await deleteTenantWithRecord(
      { db: t.db, retentionSeconds: RETENTION, checkpointKey: key },
      fresh.tenantId,
      ctx,
    );

    expect(await runPurgeSweep({ db: t.db, purgeAudit: 'pseudonymise', checkpointKey: key })).toBe(1);
    expect((await deletion(old.tenantId).expect(200)).body.status).toBe('purged');
    expect((await deletion(fresh.tenantId).expect(200)).body.status).toBe('deleted');

    expect(await scanDatabase(t, old.values)).toEqual([]);
    const kept = await t.db.withTenant(old.tenantId, (em) =>
      em.query<{ n: number }[]>('SELECT count(*)::int AS n FROM audit_events'),
    );
    expect(kept[0]?.n).toBeGreaterThan(0);
    expect(await verifyAuditTrail(t.db, key, old.tenantId)).toMatchObject({
      valid: true,
      first_broken_seq: null,
      erased_unverifiable_seqs: [],
      checkpoint_mismatch_seq: null,
    });
    // A second pass finds nothing left to do.
    expect(await runPurgeSweep({ db: t.db, purgeAudit: 'pseudonymise', checkpointKey: key })).toBe(0);
  });
});

describe('who can delete and purge, and what the runtime role can do to the trail', () => {
  it("refuses a tenant's own admin the deletion record, purge and deletion with 403, and another tenant's with 404", async () => {
    const own = await populatedTenant('own');
    const other = await populatedTenant('other');
    const admin = a.tenantAdmin(own.tenantId, own.ids[0] ?? '');
    await a.op().delete(`/admin/v1/tenants/${other.tenantId}`).expect(204);
    const before = (await deletion(other.tenantId).expect(200)).body;

    for (const [method, path, status] of [
      ['get', `/admin/v1/tenants/${own.tenantId}/deletion`, 403],
      ['post', `/admin/v1/tenants/${own.tenantId}/purge?force=true`, 403],
      ['delete', `/admin/v1/tenants/${own.tenantId}`, 403],
      ['get', `/admin/v1/tenants/${other.tenantId}/deletion`, 404],
      ['post', `/admin/v1/tenants/${other.tenantId}/purge?force=true`, 404],
      ['post', `/admin/v1/tenants/${other.slug}/purge?force=true`, 404],
      ['delete', `/admin/v1/tenants/${other.tenantId}`, 404],
    ] as const) {
      const res = method === 'post' ? await admin.post(path).send({}) : await admin[method](path);
      expect({ path, status: res.status }).toEqual({ path, status });
    }
    expect((await a.op().get(`/admin/v1/tenants/${own.tenantId}`).expect(200)).body.status).toBe('active');
    expect((await deletion(other.tenantId).expect(200)).body).toEqual(before);
  });

  it('the runtime role still cannot UPDATE or DELETE audit events, nor purge a live or another tenant', async () => {
    const live = await populatedTenant('live');
    const dead = await populatedTenant('dead');
    await a.op().delete(`/admin/v1/tenants/${dead.tenantId}`).expect(204);
    await expect(t.asApp('UPDATE audit_events SET action = action')).rejects.toThrow(/permission denied/);
    await expect(t.asApp('DELETE FROM audit_events')).rejects.toThrow(/permission denied/);
    // The flag alone is nothing: the guard also wants the tables' owner.
    await expect(
      t.db.withTenant(live.tenantId, async (em) => {
        await em.query(`SELECT set_config('gatehouse.audit_rewrite', 'on', true)`);
        await em.query('DELETE FROM audit_events');
      }),
    ).rejects.toThrow(/permission denied/);
    await expect(
      t.db.withTenant(live.tenantId, (em) => em.query(`SELECT tenant_purge($1, 'delete')`, [live.tenantId])),
    ).rejects.toThrow(/not deleted and due/);
    // Deleted but within retention, and not forced.
    await expect(
      t.db.withTenant(dead.tenantId, (em) => em.query(`SELECT tenant_purge($1, 'delete')`, [dead.tenantId])),
    ).rejects.toThrow(/not deleted and due/);
    await expect(
      t.db.withTenant(live.tenantId, (em) => em.query(`SELECT tenant_purge($1, 'delete')`, [dead.tenantId])),
    ).rejects.toThrow(/not the current tenant/);
    await expect(
      t.db.withTenant(live.tenantId, (em) =>
        em.query(`SELECT audit_erase_subject($1, $2::text[])`, [dead.tenantId, dead.values]),
      ),
    ).rejects.toThrow(/not the current tenant/);
    // The owner, without switching the guard off, is refused as before.
    await expect(
      t.asOwner(
        `BEGIN; SET LOCAL app.tenant_id = '${live.tenantId}'; UPDATE audit_events SET action = 'x'; COMMIT`,
      ),
    ).rejects.toThrow(/append-only/);
    expect(await scanDatabase(t, dead.values)).not.toEqual([]);
  });
});
