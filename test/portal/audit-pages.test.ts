import type { AdminTestApp } from '../support/admin.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { buildPortalApp, openPortal, portalSnapshot, setupLink, type PortalBrowser } from './support.js';

/**
 * Issue 15: the portal's audit log (intent `audit_log`) over real HTTP: the
 * tenant's events newest first through the admin API's service, filters and
 * keyset paging, one event's before/after, and "check the chain" giving the
 * admin API's verdict (valid, or broken at the first bad seq).
 */
let t: TestDatabase;
let a: AdminTestApp;
let acme: string;
let globex: string;
let auditor: PortalBrowser;
const mappingIds: string[] = [];

const seqsOf = (text: string) => [...text.matchAll(/\/audit\/events\/(\d+)"/g)].map((m) => Number(m[1]));

beforeAll(async () => {
  t = await createTestDatabase();
  a = buildPortalApp(t);
  acme = await a.createTenant('acme', 'Acme');
  globex = await a.createTenant('globex', 'Globex Secret Name');
  // 55 mappings: more events than one page (50) holds.
  for (let i = 0; i < 55; i++) {
    const res = await a
      .op()
      .post(`/admin/v1/tenants/${acme}/role-mappings`)
      .send({ group: { display_name: `Group ${i}` }, role: 'member' });
    mappingIds.push(String(res.body.id));
  }
  await a.op().delete(`/admin/v1/tenants/${acme}/role-mappings/${mappingIds[0]}`).expect(204);
  await a.op().post(`/admin/v1/tenants/${globex}/domains`).send({ domain: 'globex-secret.example' });
  auditor = await openPortal(a, (await setupLink(a, acme, ['audit_log'])).token);
});
afterAll(() => t.close());

describe('audit log page', () => {
  it('lists the tenant\'s events newest first, 50 a page, and "older" continues where the page ended', async () => {
    const first = await auditor.get(`/portal/t/${acme}/audit`);
    expect(first.status).toBe(200);
    const page1 = seqsOf(first.text);
    expect(page1).toHaveLength(50);
    expect(page1).toEqual([...page1].sort((x, y) => y - x));
    const older = /id="audit-older" href="([^"]+)"/.exec(first.text)?.[1]?.replace(/&amp;/g, '&');
    expect(older).toBeDefined();
    const second = await auditor.get(older!);
    const page2 = seqsOf(second.text);
    // Every event of the trail once, none skipped at the page boundary: the admin API counts the same.
    const total = (await a.op().get(`/admin/v1/tenants/${acme}/audit-events?limit=1`)).body.total as number;
    expect(total).toBeGreaterThan(57);
    expect([...page1, ...page2]).toEqual(Array.from({ length: total }, (_, i) => total - i));
    expect(second.text).not.toContain('id="audit-older"');
    expect(first.text).not.toContain('globex-secret');
  });

  it('filters by action (exact or prefix), actor, target and days', async () => {
    const count = async (query: string) => {
      const res = await auditor.get(`/portal/t/${acme}/audit?${query}`);
      expect({ query, status: res.status }).toEqual({ query, status: 200 });
      return seqsOf(res.text).length;
    };
    expect(await count('action=role_mapping.deleted')).toBe(1);
    expect(await count('action=setup_link.*')).toBe(1);
    expect(await count(`target=${mappingIds[3]}`)).toBe(1);
    expect(await count(`target=${mappingIds[0]}&action=role_mapping.*`)).toBe(2);
    expect(await count('actor=nobody')).toBe(0);
    const today = new Date().toISOString().slice(0, 10);
    const tomorrow = new Date(Date.now() + 86_400_000).toISOString().slice(0, 10);
    const yesterday = new Date(Date.now() - 86_400_000).toISOString().slice(0, 10);
    expect(await count(`from=${tomorrow}`)).toBe(0);
    expect(await count(`to=${yesterday}`)).toBe(0);
    expect(await count(`from=${yesterday}&to=${today}&action=role_mapping.deleted`)).toBe(1);
  });

  it.each([
    ['action=DROP TABLE', /action/],
    ['from=2026-13-45', /from/],
    ['to=0000-01-01', /to/],
    ['before=abc', /before/],
    ['action=a&action=b', /action/],
    ['target=%00', /target/],
  ])('refuses the filter %s with a 400 page, not a 5xx', async (query, message) => {
    const res = await auditor.get(`/portal/t/${acme}/audit?${query}`);
    expect(res.status).toBe(400);
    expect(res.text).toMatch(message);
  });

  it('opens an event with its before and after; an unknown seq is 404', async () => {
    const list = await auditor.get(`/portal/t/${acme}/audit?action=role_mapping.deleted`);
    const [seq] = seqsOf(list.text);
    const res = await auditor.get(`/portal/t/${acme}/audit/events/${seq}`);
    expect(res.status).toBe(200);
    expect(res.text).toContain('role_mapping.deleted');
    expect(/id="audit-before">([^<]*)</.exec(res.text)?.[1]).toContain('Group 0');
    expect(/id="audit-after">([^<]*)</.exec(res.text)?.[1]).toBe('—');
    expect((await auditor.get(`/portal/t/${acme}/audit/events/9999`)).status).toBe(404);
    expect((await auditor.get(`/portal/t/${acme}/audit/events/x1`)).status).toBe(404);
  });

  it('checks the chain: valid with the checkpoints it covered, then broken at the first tampered seq', async () => {
    const tenant = await a.createTenant('tamper', 'Tamper');
    await a.op().post(`/admin/v1/tenants/${tenant}/domains`).send({ domain: 'tamper.example' }).expect(201);
    await a.op().post(`/admin/v1/tenants/${tenant}/audit-checkpoints`).send({}).expect(201);
    const browser = await openPortal(a, (await setupLink(a, tenant, ['audit_log'])).token);
    const ok = await browser.post(`/portal/t/${tenant}/audit/verify`, {});
    expect(ok.status).toBe(200);
    expect(/id="chain-status"[^>]*>([^<]+)</.exec(ok.text)?.[1]).toBe('valid');
    expect(ok.text).toMatch(/against 1 signed checkpoints/);
    expect(/id="chain-latest-checkpoint">(\d+)</.exec(ok.text)?.[1]).toBe('2');

    await t.asOwner(`
      BEGIN;
      SET LOCAL app.tenant_id = '${tenant}';
      ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only;
      UPDATE audit_events SET action = 'domain.verified' WHERE tenant_id = '${tenant}' AND seq = 2;
      ALTER TABLE audit_events ENABLE TRIGGER audit_events_append_only;
      COMMIT;`);
    const broken = await browser.post(`/portal/t/${tenant}/audit/verify`, {});
    expect(/id="chain-status"[^>]*>([^<]+)</.exec(broken.text)?.[1]).toBe('broken');
    expect([...broken.text.matchAll(/class="bad first-bad-seq">(\d+)</g)].map((m) => m[1])).toContain('2');
    // The admin API says the same.
    const api = await a.op().get(`/admin/v1/tenants/${tenant}/audit-events/verify`);
    expect(api.body).toMatchObject({ valid: false, first_broken_seq: 2 });
  });

  it('refuses a link without audit_log (403), and the check without its CSRF token, changing nothing', async () => {
    const sso = await openPortal(a, (await setupLink(a, acme, ['sso'])).token);
    const before = await portalSnapshot(t, acme);
    expect((await sso.get(`/portal/t/${acme}/audit`)).status).toBe(403);
    expect((await sso.get(`/portal/t/${acme}/audit/events/1`)).status).toBe(403);
    expect((await sso.post(`/portal/t/${acme}/audit/verify`, {})).status).toBe(403);
    expect((await auditor.post(`/portal/t/${acme}/audit/verify`, {}, null)).status).toBe(403);
    expect((await auditor.post(`/portal/t/${acme}/audit/verify`, {}, 'x'.repeat(43))).status).toBe(403);
    expect(await portalSnapshot(t, acme)).toEqual(before);
  });

  it("refuses tenant A's session on tenant B's audit pages with 404, showing and changing nothing of B", async () => {
    const every = await openPortal(
      a,
      (await setupLink(a, acme, ['sso', 'dsync', 'domain_verification', 'certificate_renewal', 'audit_log']))
        .token,
    );
    const before = await portalSnapshot(t, globex);
    for (const res of [
      await every.get(`/portal/t/${globex}/audit`),
      await every.get(`/portal/t/${globex}/audit?action=domain.*`),
      await every.get(`/portal/t/${globex}/audit/events/1`),
      await every.post(`/portal/t/${globex}/audit/verify`, {}),
    ]) {
      expect(res.status).toBe(404);
      expect(res.text).not.toMatch(/Globex|globex-secret|domain\.created/);
    }
    // Under A's own path, B's seq numbers name A's events only.
    const own = await every.get(`/portal/t/${acme}/audit/events/1`);
    expect(own.text).toContain('tenant.created');
    expect(own.text).not.toContain('Globex');
    expect(await portalSnapshot(t, globex)).toEqual(before);
  });
});
