import { gzipSync } from 'node:zlib';
import { checkpointKey } from '../../src/audit/checkpoint-key.js';
import { requestExport } from '../../src/offboarding/exports.service.js';
import { buildAdminTestApp, type AdminTestApp } from '../support/admin.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { issueToken, scimClient } from '../scim/support.js';
import {
  archiveOf,
  binary,
  importArchive,
  produceExports,
  secondInstallation,
  seedTenant,
  type SeededTenant,
} from './export-support.js';

/**
 * Issue 12, done-when: "an exported archive re-imports into an empty
 * Gatehouse as the same tenant". A tenant built through the admin API and
 * SCIM is exported (worker pass, download once), then imported into a second
 * installation on a database of its own; the same SCIM answers, a valid
 * audit trail with the imported checkpoints, and the same hashes.
 */

let t1: TestDatabase;
let t2: TestDatabase;
let a: AdminTestApp;
let seeded: SeededTenant;

beforeAll(async () => {
  t1 = await createTestDatabase();
  t2 = await createTestDatabase();
  a = buildAdminTestApp(t1);
  seeded = await seedTenant(t1, a, 'acme-export');
});
afterAll(async () => {
  await t1.close();
  await t2.close();
});

const path = (tenantId: string, rest = '') => `/admin/v1/tenants/${tenantId}/exports${rest}`;
const byId = (list: { id: string }[]) => [...list].sort((x, y) => x.id.localeCompare(y.id));

async function actions(t: TestDatabase, tenantId: string): Promise<string[]> {
  const rows = await t.db.withTenant(tenantId, (em) =>
    em.query<{ action: string }[]>('SELECT action FROM audit_events WHERE tenant_id = $1 ORDER BY seq', [
      tenantId,
    ]),
  );
  return rows.map((r) => r.action);
}

describe('tenant export and re-import', () => {
  it('exports a tenant, downloads it once, and re-imports it into an empty Gatehouse as the same tenant', async () => {
    const { tenantId } = seeded;
    const requested = await a.op().post(path(tenantId)).send({});
    expect(requested.status).toBe(202);
    expect(requested.body).toMatchObject({
      status: 'pending',
      tenant_id: tenantId,
      requested_by: 'operator',
    });
    const ttl =
      Date.parse(requested.body.expires_at as string) - Date.parse(requested.body.created_at as string);
    expect(ttl).toBe(7 * 86_400_000);
    const exportId = requested.body.id as string;
    expect((await a.op().get(path(tenantId, `/${exportId}`))).body).toMatchObject({ status: 'pending' });
    const early = await a.op().get(path(tenantId, `/${exportId}/download`));
    expect(early.status).toBe(409);

    expect(await produceExports(t1, a)).toBe(1);
    const ready = await a.op().get(path(tenantId, `/${exportId}`));
    expect(ready.body).toMatchObject({ status: 'ready', downloaded_at: null });
    expect(ready.body.size).toBeGreaterThan(0);

    const download = await a
      .op()
      .get(path(tenantId, `/${exportId}/download`))
      .buffer(true)
      .parse(binary);
    expect(download.status).toBe(200);
    expect(download.headers['content-type']).toMatch(/^application\/gzip/);
    const gzip = download.body as Buffer;
    const again = await a.op().get(path(tenantId, `/${exportId}/download`));
    expect(again.status).toBe(410);
    expect(again.body).toMatchObject({ code: 'export_already_downloaded' });
    expect((await a.op().get(path(tenantId, `/${exportId}`))).body).toMatchObject({ status: 'downloaded' });
    // The server keeps no copy once downloaded.
    const [stored] = await t1.db.withTenant(tenantId, (em) =>
      em.query<{ archive: string | null }[]>('SELECT archive FROM tenant_exports WHERE id = $1', [exportId]),
    );
    expect(stored?.archive).toBeNull();
    const trail = await actions(t1, tenantId);
    expect(trail).toContain('tenant.export_requested');
    expect(trail[trail.length - 1]).toBe('tenant.export_downloaded');

    // The archive: documented shape, SCIM resources, no secret.
    const archive = archiveOf(gzip);
    const text = gunzipText(gzip);
    expect(archive).toMatchObject({ format: 'gatehouse-tenant-export/1', export_id: exportId });
    expect(archive.tenant).toMatchObject({ id: tenantId, slug: 'acme-export' });
    expect((archive.users as unknown[]).length).toBe(2);
    expect(archive.groups).toEqual([
      expect.objectContaining({
        displayName: 'Engineering',
        schemas: ['urn:ietf:params:scim:schemas:core:2.0:Group'],
      }),
    ]);
    const rows = archive.rows as Record<string, Record<string, unknown>[]>;
    const [sealed] = await t1.db.withTenant(tenantId, (em) =>
      em.query<{ enc: string }[]>('SELECT oidc_client_secret_enc AS enc FROM connections WHERE id = $1', [
        seeded.oidcConnectionId,
      ]),
    );
    expect(sealed?.enc).toMatch(/^v1\./);
    for (const leak of ['very-secret-client-secret', '$argon2', sealed?.enc ?? ''])
      expect(text).not.toContain(leak);
    for (const c of archive.connections as Record<string, unknown>[])
      expect(c).not.toHaveProperty('oidc_client_secret_enc');
    for (const token of rows.scim_tokens ?? []) expect(token).not.toHaveProperty('token_hash');
    expect(archive.omitted).toMatchObject({
      connections_needing_secrets: [
        { id: seeded.oidcConnectionId, name: expect.any(String), missing: ['oidc_client_secret_enc'] },
      ],
    });

    // What the source answers, to compare with the copy.
    const source = scimClient(a.app, tenantId, seeded.scimToken);
    const sourceUsers = (await source.get('/Users')).body as { Resources: { id: string }[] };
    const sourceGroups = (await source.get('/Groups')).body as { Resources: { id: string }[] };
    // The archive's people and groups are what the SCIM endpoint serves.
    expect(byId(archive.users as { id: string }[])).toEqual(byId(sourceUsers.Resources));
    expect(byId(archive.groups as { id: string }[])).toEqual(byId(sourceGroups.Resources));
    const sourceHashes = await t1.db.withTenant(tenantId, (em) =>
      em.query<{ seq: string; hash: string }[]>(
        'SELECT seq, hash FROM audit_events WHERE tenant_id = $1 ORDER BY seq',
        [tenantId],
      ),
    );

    const b = secondInstallation(t2, a.secrets);
    const imported = await importArchive(b.op(), gzip);
    expect({ status: imported.status, body: imported.status === 201 ? null : imported.body }).toEqual({
      status: 201,
      body: null,
    });
    expect(imported.body).toMatchObject({
      tenant_id: tenantId,
      slug: 'acme-export',
      counts: {
        tenants: 1,
        domains: 1,
        connections: 2,
        users: 2,
        groups: 1,
        group_members: 2,
        role_mappings: 1,
        identities: 1,
        scim_tokens: 1,
        audit_checkpoints: 1,
      },
      connections_needing_secrets: [{ id: seeded.oidcConnectionId }],
    });
    // A second import of the same tenant: 409, nothing written.
    const twice = await importArchive(b.op(), gzip);
    expect(twice.status).toBe(409);

    // The same tenant answers the same SCIM reads, with a token issued by the new installation.
    const { token } = await issueToken(t2.db, tenantId);
    const copy = scimClient(b.app, tenantId, token);
    const copyUsers = (await copy.get('/Users')).body as typeof sourceUsers;
    const copyGroups = (await copy.get('/Groups')).body as typeof sourceGroups;
    expect(byId(copyUsers.Resources)).toEqual(byId(sourceUsers.Resources));
    expect(byId(copyGroups.Resources)).toEqual(byId(sourceGroups.Resources));
    // The old SCIM token came over revoked: it opens nothing here.
    expect((await scimClient(b.app, tenantId, seeded.scimToken).get('/Users')).status).toBe(401);

    // The trail verifies, checkpoints included, and every hash equals the original's.
    const verify = await b.op().get(`/admin/v1/tenants/${tenantId}/audit-events/verify`);
    expect(verify.body).toMatchObject({ valid: true, checkpoints_checked: 1, forged_checkpoint_seq: null });
    const copyHashes = await t2.db.withTenant(tenantId, (em) =>
      em.query<{ seq: string; hash: string }[]>(
        'SELECT seq, hash FROM audit_events WHERE tenant_id = $1 ORDER BY seq',
        [tenantId],
      ),
    );
    const exported = archive.rows as { audit_events: { seq: number; hash: string }[] };
    expect(exported.audit_events.length).toBeGreaterThan(5);
    expect(copyHashes.slice(0, exported.audit_events.length)).toEqual(
      sourceHashes.slice(0, exported.audit_events.length),
    );
    expect((await actions(t2, tenantId)).pop()).toBe('tenant.imported');

    // Tenant, domain and connections as they were; the one whose secret stayed behind is inactive.
    expect((await b.op().get(`/admin/v1/tenants/${tenantId}`)).body).toMatchObject({
      slug: 'acme-export',
      name: 'acme-export Incorporated',
    });
    const domains = `/admin/v1/tenants/${tenantId}/domains`;
    expect((await b.op().get(domains)).body.data).toEqual((await a.op().get(domains)).body.data);
    expect((await b.op().get(domains)).body.data).toEqual([
      expect.objectContaining({ domain: 'acme-export.test', status: 'verified' }),
    ]);
    const status = async (id: string) =>
      (await b.op().get(`/admin/v1/tenants/${tenantId}/connections/${id}`)).body.status as string;
    expect(await status(seeded.oidcConnectionId)).toBe('inactive');
    expect(await status(seeded.samlConnectionId)).toBe(
      (await a.op().get(`/admin/v1/tenants/${tenantId}/connections/${seeded.samlConnectionId}`)).body.status,
    );
  });

  it('produces each pending export once when two nodes run the worker at the same time', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 3; i++)
      ids.push((await a.op().post(path(seeded.tenantId)).send({})).body.id as string);
    const [one, two] = await Promise.all([produceExports(t1, a), produceExports(t1, a)]);
    expect((one ?? 0) + (two ?? 0)).toBe(3);
    const rows = await t1.db.withTenant(seeded.tenantId, (em) =>
      em.query<{ status: string }[]>('SELECT status FROM tenant_exports WHERE id = ANY($1)', [ids]),
    );
    expect(rows.map((r) => r.status)).toEqual(['ready', 'ready', 'ready']);
    expect(await produceExports(t1, a)).toBe(0);
  });

  it('refuses a download past the expiry with 410 export_expired', async () => {
    const past = new Date(Date.now() - 3_600_000);
    const ctx = { actor: { type: 'operator' as const, id: 'operator' } };
    const created = await requestExport(t1.db, seeded.tenantId, { ttlSeconds: 60, now: past }, ctx);
    expect((await a.op().get(path(seeded.tenantId, `/${created.id}`))).body).toMatchObject({
      status: 'expired',
    });
    const res = await a.op().get(path(seeded.tenantId, `/${created.id}/download`));
    expect(res.status).toBe(410);
    expect(res.body).toMatchObject({ code: 'export_expired' });
    // The worker marks it and never produces it.
    await produceExports(t1, a);
    const [row] = await t1.db.withTenant(seeded.tenantId, (em) =>
      em.query<{ status: string; archive: string | null }[]>(
        'SELECT status, archive FROM tenant_exports WHERE id = $1',
        [created.id],
      ),
    );
    expect(row).toEqual({ status: 'expired', archive: null });
  });

  it('exports a tenant marked deleted, during its retention', async () => {
    const other = await a.createTenant('gone-export', 'Gone');
    // Marked deleted as DELETE /tenants/{id} leaves it for the retention period (the row and its trail stay).
    await t1.db.withPlatform((em) =>
      em.query(`UPDATE tenants SET status = 'deleted', deleted_at = now() WHERE id = $1`, [other]),
    );
    const requested = await a.op().post(path(other)).send({});
    expect(requested.status).toBe(202);
    await produceExports(t1, a);
    const res = await a
      .op()
      .get(path(other, `/${String(requested.body.id)}/download`))
      .buffer(true)
      .parse(binary);
    expect(res.status).toBe(200);
    expect(archiveOf(res.body as Buffer).tenant).toMatchObject({ id: other, status: 'deleted' });
  });

  it('lets the tenant’s own admin request, read and download its export', async () => {
    const admin = a.tenantAdmin(seeded.tenantId, seeded.userIds[0] ?? '');
    const requested = await admin.post(path(seeded.tenantId)).send({});
    expect(requested.status).toBe(202);
    expect(requested.body.requested_by).toBe(`user:${seeded.userIds[0]}`);
    await produceExports(t1, a);
    const res = await admin
      .get(path(seeded.tenantId, `/${String(requested.body.id)}/download`))
      .buffer(true)
      .parse(binary);
    expect(res.status).toBe(200);
    expect(archiveOf(res.body as Buffer).tenant).toMatchObject({ id: seeded.tenantId });
  });

  it('refuses an import whose audit trail was altered with 400 audit_chain_mismatch, writing nothing', async () => {
    const t3 = await createTestDatabase();
    try {
      const gzip = await (async () => {
        const requested = await a.op().post(path(seeded.tenantId)).send({});
        await produceExports(t1, a);
        return (
          await a
            .op()
            .get(path(seeded.tenantId, `/${String(requested.body.id)}/download`))
            .buffer(true)
            .parse(binary)
        ).body as Buffer;
      })();
      const archive = archiveOf(gzip) as { rows: { audit_events: Record<string, unknown>[] } };
      const event = archive.rows.audit_events[2];
      if (!event) throw new Error('no third event');
      event.action = 'forged.action';
      const c = secondInstallation(t3, a.secrets);
      const res = await importArchive(c.op(), gzipSync(JSON.stringify(archive)));
      expect(res.status).toBe(400);
      expect(res.body).toMatchObject({ code: 'audit_chain_mismatch' });
      expect(await t3.db.withPlatform((em) => em.query('SELECT id FROM tenants'))).toEqual([]);
      expect(await actions(t3, seeded.tenantId)).toEqual([]);
      // The public key the archive carries is the source's checkpoint key.
      expect(
        (archive as unknown as { audit: { checkpoint_key: { kid: string } } }).audit.checkpoint_key.kid,
      ).toBe((await checkpointKey(a.secrets.masterKey)).kid);
    } finally {
      await t3.close();
    }
  });
});

function gunzipText(gzip: Buffer): string {
  return JSON.stringify(archiveOf(gzip));
}
