import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import type { JWK } from 'jose';
import type { AuditEventView } from '../../src/audit/audit-events.service.js';
import { verifyTrailOffline } from '../../src/audit/offline-verify.js';
import { fuzzRuns, fuzzSeed } from '../scim/hardening-support.js';
import { issueToken, newUser, scimClient, type ScimClient } from '../scim/support.js';
import { buildAdminTestApp, type AdminTestApp } from '../support/admin.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { tenantSnapshot } from '../support/tenant-admin-token.js';
import { registerWebhookApp } from '../webhooks/support.js';
import { scanDatabase } from './deletion-scan.js';

/**
 * Erasing one person (issue 12): the admin endpoint removes
 * the person's name, emails, identifiers and attributes from every table,
 * audit events included, while the rest of the tenant stays; the chain still
 * verifies against checkpoints taken before and after, in the database and
 * offline; events written before chain v2 are listed as unverifiable rather
 * than reported as tampering.
 */
let t: TestDatabase;
let a: AdminTestApp;
let acme: string;
let globex: string;
let scim: ScimClient;
let publicJwk: JWK;
const RUNS = fuzzRuns(40);
const SEED = fuzzSeed(0xe7a5e);

interface Person {
  id: string;
  values: string[];
}

async function person(client: ScimClient, label: string): Promise<Person> {
  const tag = randomUUID().slice(0, 8);
  const userName = `${label}.${tag}@acme.test`;
  const given = `${label}Given${tag}`;
  const family = `${label}Family${tag}`;
  const res = await client
    .post(
      '/Users',
      newUser(userName, {
        name: { givenName: given, familyName: family },
        displayName: `${given} ${family}`,
        externalId: `ext-${label}-${tag}`,
        emails: [
          { value: userName, type: 'work', primary: true },
          { value: `${label}.home.${tag}@home.test`, type: 'home' },
        ],
      }),
    )
    .expect(201);
  return {
    id: res.body.id as string,
    values: [userName, given, family, `ext-${label}-${tag}`, `${label}.home.${tag}@home.test`],
  };
}

/** Every event of the tenant rewritten as chain v1 and re-chained: a trail written before the migration. */
async function makeTrailV1(tenantId: string): Promise<void> {
  await t.asOwner(`
    BEGIN;
    SET LOCAL app.tenant_id = '${tenantId}';
    ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only;
    UPDATE audit_events SET hash_version = 1, pii_salt = NULL, content_digest = NULL
     WHERE tenant_id = '${tenantId}';
    -- Filtered by tenant: the owner reads every tenant's events (it is a member of gatehouse_resolver).
    DO $$ DECLARE r record; prev text := repeat('0', 64); BEGIN
      FOR r IN SELECT seq FROM audit_events WHERE tenant_id = '${tenantId}' ORDER BY seq LOOP
        UPDATE audit_events SET prev_hash = prev WHERE tenant_id = '${tenantId}' AND seq = r.seq;
        UPDATE audit_events e SET hash = audit_event_hash(e)
         WHERE tenant_id = '${tenantId}' AND seq = r.seq RETURNING hash INTO prev;
      END LOOP;
    END $$;
    ALTER TABLE audit_events ENABLE TRIGGER audit_events_append_only;
    COMMIT;`);
}

/** The whole trail as the admin API shows it, page after page (what the CLI fetches). */
async function allEvents(tenantId: string): Promise<AuditEventView[]> {
  const events: AuditEventView[] = [];
  let cursor: string | null = null;
  do {
    const page: { data: AuditEventView[]; next_cursor: string | null } = (
      await a
        .op()
        .get(`/admin/v1/tenants/${tenantId}/audit-events`)
        .query({ order: 'asc', limit: 100, ...(cursor ? { cursor } : {}) })
        .expect(200)
    ).body;
    events.push(...page.data);
    cursor = page.next_cursor;
  } while (cursor);
  return events;
}

const verify = async (tenantId: string) =>
  (await a.op().get(`/admin/v1/tenants/${tenantId}/audit-events/verify`).expect(200)).body;
const checkpoint = (tenantId: string) =>
  a.op().post(`/admin/v1/tenants/${tenantId}/audit-checkpoints`).send({}).expect(201);
const erase = (tenantId: string, userId: string) =>
  a.op().post(`/admin/v1/tenants/${tenantId}/users/${userId}/erasure`).send({});
const found = async (values: string[]) => new Set((await scanDatabase(t, values)).map((s) => s.value));

let legacy: Person;

beforeAll(async () => {
  t = await createTestDatabase();
  a = buildAdminTestApp(t);
  acme = await a.createTenant(`acme-${randomUUID().slice(0, 6)}`, 'Acme');
  globex = await a.createTenant(`globex-${randomUUID().slice(0, 6)}`, 'Globex');
  scim = scimClient(a.app, acme, (await issueToken(t.db, acme)).token);
  // An app that takes webhooks, so events are queued (nothing delivers them in this file).
  await registerWebhookApp(t.db, a.secrets.masterKey, 'https://app.test/webhooks');
  legacy = await person(scim, 'legacy');
  await makeTrailV1(acme);
  publicJwk = (await a.op().get('/admin/v1/audit-checkpoint-key').expect(200)).body.keys[0];
});
afterAll(async () => {
  await t.close();
});

describe('erasing one person', () => {
  it('removes them from every table while the rest of the tenant remains, and the trail verifies before and after', async () => {
    const alice = await person(scim, 'alice');
    const bob = await person(scim, 'bob');
    await scim
      .post('/Groups', {
        schemas: ['urn:ietf:params:scim:schemas:core:2.0:Group'],
        displayName: 'Both',
        members: [{ value: alice.id }, { value: bob.id }],
      })
      .expect(201);
    expect(await found(alice.values)).toEqual(new Set(alice.values.map((v) => v.toLowerCase()))); // control
    await checkpoint(acme);

    const res = await erase(acme, alice.id).expect(200);
    expect(res.body).toMatchObject({ user_id: alice.id, erased_audit_events: expect.any(Number) });
    expect(res.body.erased_audit_events).toBeGreaterThan(0);
    await checkpoint(acme);

    expect(await scanDatabase(t, alice.values)).toEqual([]);
    expect(await found(bob.values)).toEqual(new Set(bob.values.map((v) => v.toLowerCase())));
    await scim.get(`/Users/${alice.id}`).expect(404);
    await scim.get(`/Users/${bob.id}`).expect(200);
    await erase(acme, alice.id).expect(404); // already erased

    const verified = await verify(acme);
    expect(verified).toMatchObject({
      valid: true,
      first_broken_seq: null,
      forged_checkpoint_seq: null,
      checkpoint_mismatch_seq: null,
      truncated_after_seq: null,
    });
    expect(verified.checkpoints_checked).toBeGreaterThanOrEqual(2);

    // Offline, as `gatehouse audit verify --checkpoints` does: every hash and digest recomputed here.
    const events = await allEvents(acme);
    const checkpoints = (await a.op().get(`/admin/v1/tenants/${acme}/audit-checkpoints`).expect(200)).body
      .data;
    expect(await verifyTrailOffline({ tenantId: acme, events, checkpoints, publicJwk })).toMatchObject({
      valid: true,
      first_broken_seq: null,
      checkpoint_mismatch_seq: null,
    });
    // An edit of a clear value that is still there is caught offline through the digest.
    const tampered = events.map((e) =>
      e.action === 'scim.user.created' && e.pii_salt ? { ...e, after: { forged: true } } : e,
    );
    expect(
      (await verifyTrailOffline({ tenantId: acme, events: tampered, checkpoints, publicJwk })).valid,
    ).toBe(false);

    const [erased] = await t.db.withTenant(acme, (em) =>
      em.query<{ after: Record<string, unknown> }[]>(
        `SELECT after FROM audit_events WHERE action = 'user.erased' AND target_id = $1`,
        [alice.id],
      ),
    );
    expect(erased?.after).toMatchObject({ erased_audit_events: res.body.erased_audit_events });
  });

  it('keeps a SCIM-deleted person recognisable until erased, then erases them like anyone else', async () => {
    // SCIM DELETE deprovisions (Okta and Entra send it routinely): the tombstone keeps the identifiers that
    // refuse the person's next sign-in (test/sso/jit-policy.test.ts). Erasure is the explicit, separate step.
    const carol = await person(scim, 'carol');
    await scim.delete(`/Users/${carol.id}`).expect(204);
    expect(await scanDatabase(t, carol.values)).not.toEqual([]);
    await erase(acme, carol.id).expect(200);
    expect(await scanDatabase(t, carol.values)).toEqual([]);
    const [event] = await t.db.withTenant(acme, (em) =>
      em.query<{ payload: { data: Record<string, unknown> } }[]>(
        `SELECT payload FROM webhook_outbox WHERE event_type = 'user.deprovisioned' AND payload -> 'data' ->> 'id' = $1`,
        [carol.id],
      ),
    );
    // Still queued for the app (no worker runs here), now naming nobody.
    expect(event?.payload.data).toMatchObject({ id: carol.id, status: 'deleted', email: null });
    expect((await verify(acme)).valid).toBe(true);
  });

  it('erases on SCIM DELETE itself with GATEHOUSE_SCIM_DELETE_ERASES=true; the app hears user.deprovisioned naming nobody', async () => {
    const erasing = buildAdminTestApp(t, { GATEHOUSE_SCIM_DELETE_ERASES: 'true' });
    const client = scimClient(erasing.app, acme, (await issueToken(t.db, acme)).token);
    const erin = await person(client, 'erin');
    await client.delete(`/Users/${erin.id}`).expect(204);
    expect(await scanDatabase(t, erin.values)).toEqual([]);
    const [event] = await t.db.withTenant(acme, (em) =>
      em.query<{ payload: { data: Record<string, unknown> } }[]>(
        `SELECT payload FROM webhook_outbox WHERE event_type = 'user.deprovisioned' AND payload -> 'data' ->> 'id' = $1`,
        [erin.id],
      ),
    );
    expect(event?.payload.data).toMatchObject({
      id: erin.id,
      status: 'deleted',
      email: null,
      user_name: '[erased]',
    });
    expect((await verify(acme)).valid).toBe(true);
  });

  it('lists an erased event written before chain v2 as unverifiable instead of reporting tampering', async () => {
    const before = (await checkpoint(acme)).body;
    await erase(acme, legacy.id).expect(200);
    expect(await scanDatabase(t, legacy.values)).toEqual([]);
    const verified = await verify(acme);
    expect(verified).toMatchObject({ valid: true, first_broken_seq: null, checkpoint_mismatch_seq: null });
    expect(verified.erased_unverifiable_seqs.length).toBeGreaterThan(0);
    expect(Math.max(...(verified.erased_unverifiable_seqs as number[]))).toBeLessThanOrEqual(before.seq);
    const events = await allEvents(acme);
    const checkpoints = (await a.op().get(`/admin/v1/tenants/${acme}/audit-checkpoints`).expect(200)).body
      .data;
    expect(await verifyTrailOffline({ tenantId: acme, events, checkpoints, publicJwk })).toMatchObject({
      valid: true,
      erased_unverifiable_seqs: verified.erased_unverifiable_seqs,
    });
  });
});

describe('who can erase', () => {
  it("refuses B's admin erasing A's user, by A's path or its own, with 404, leaving A's user and trail as they were", async () => {
    const dave = await person(scim, 'dave');
    const globexAdmin = a.tenantAdmin(globex, randomUUID());
    const before = await tenantSnapshot(t, acme);
    for (const path of [
      `/admin/v1/tenants/${acme}/users/${dave.id}/erasure`,
      `/admin/v1/tenants/${globex}/users/${dave.id}/erasure`,
    ]) {
      const res = await globexAdmin.post(path).send({});
      expect({ path, status: res.status, code: res.body.code }).toEqual({
        path,
        status: 404,
        code: 'not_found',
      });
    }
    // The operator too, when the path names the other tenant: RLS hides A's user from B's transaction.
    await erase(globex, dave.id).expect(404);
    expect(await tenantSnapshot(t, acme)).toEqual(before);
    expect(await found(dave.values)).toEqual(new Set(dave.values.map((v) => v.toLowerCase())));
    // A's own admin may erase A's people.
    await a
      .tenantAdmin(acme, randomUUID())
      .post(`/admin/v1/tenants/${acme}/users/${dave.id}/erasure`)
      .send({})
      .expect(200);
  });

  it('property: any user id, body and caller on the erasure endpoint: never 5xx, a 4xx changes nothing', async () => {
    const erin = await person(scim, 'erin');
    const ids = fc.oneof(
      fc.uuid(),
      fc.constant(erin.id),
      fc.string({ maxLength: 80 }),
      fc.constantFrom('..', '%00', 'null', '__proto__', 'constructor', ' ', `${erin.id}x`),
    );
    const bodies = fc.oneof(
      fc.constant({}),
      fc.object({ maxDepth: 2 }),
      fc.array(fc.jsonValue({ maxDepth: 1 }), { maxLength: 3 }),
    );
    const callers = fc.constantFrom('globex-admin', 'globex-path', 'acme-with-body');
    const statuses = new Map<number, number>();
    await fc.assert(
      fc.asyncProperty(ids, bodies, callers, async (id, body, caller) => {
        const before = await tenantSnapshot(t, acme);
        const path = (tenant: string) =>
          `/admin/v1/tenants/${tenant}/users/${encodeURIComponent(id)}/erasure`;
        const res =
          caller === 'globex-admin'
            ? await a.tenantAdmin(globex, randomUUID()).post(path(acme)).send(body)
            : caller === 'globex-path'
              ? await a.op().post(path(globex)).send(body)
              : // An acme caller with a non-empty body is refused before anything is erased.
                await a
                  .op()
                  .post(path(acme))
                  .send({ ...(body as object), unexpected: true });
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        expect(res.status).toBeLessThan(500);
        expect(res.status).toBeGreaterThanOrEqual(400);
        expect(await tenantSnapshot(t, acme)).toEqual(before);
      }),
      { seed: SEED, numRuns: RUNS },
    );
    expect(await found(erin.values)).toEqual(new Set(erin.values.map((v) => v.toLowerCase())));
    expect([...statuses.keys()].every((s) => s >= 400 && s < 500)).toBe(true);
  });
});
