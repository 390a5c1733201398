import { readFileSync } from 'node:fs';
import path from 'node:path';
import { rolesForLogin } from '../../src/directory/roles.service.js';
import type { AdminTestApp } from '../support/admin.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { createUser } from '../support/factories.js';
import { buildPortalApp, openPortal, portalSnapshot, setupLink, type PortalBrowser } from './support.js';

/**
 * Issue 15: role mappings in the portal (intent `sso`) over real HTTP: added
 * and removed with the admin API's validation and audit, and the preview of
 * a person's roles now and with a proposed mapping added or removed, which
 * must agree with what sign-in computes (roles.service.ts rolesForLogin).
 */
const OKTA_METADATA = readFileSync(
  path.join(import.meta.dirname, '../../fixtures/saml/metadata/okta.xml'),
  'utf8',
);

let t: TestDatabase;
let a: AdminTestApp;
let acme: string;
let globex: string;
let admin: PortalBrowser;
let connectionId: string;
let adaId: string;
let globexMappingId: string;

const roles = (path: string) => `/portal/t/${acme}/roles${path}`;
const textOf = (html: string, id: string) =>
  new RegExp(`id="${id}">([^<]*)<`).exec(html)?.[1]?.replace(/\s+/g, ' ').trim();

async function groupWith(
  tenantId: string,
  name: string,
  externalId: string | null,
  userId: string,
  source: string,
) {
  await t.db.withTenant(tenantId, async (em) => {
    const [g] = await em.query<{ id: string }[]>(
      'INSERT INTO groups (tenant_id, display_name, external_id, source) VALUES ($1, $2, $3, $4) RETURNING id',
      [tenantId, name, externalId, source],
    );
    await em.query('INSERT INTO group_members (tenant_id, group_id, user_id) VALUES ($1, $2, $3)', [
      tenantId,
      g?.id,
      userId,
    ]);
  });
}

beforeAll(async () => {
  t = await createTestDatabase();
  a = buildPortalApp(t);
  acme = await a.createTenant('acme', 'Acme');
  globex = await a.createTenant('globex', 'Globex Secret Name');
  connectionId = String(
    (
      await a
        .op()
        .post(`/admin/v1/tenants/${acme}/connections`)
        .send({ type: 'saml', name: 'Acme IdP', metadata_xml: OKTA_METADATA, default_role: 'viewer' })
        .expect(201)
    ).body.id,
  );
  adaId = await createUser(t.db, acme, 'ada@acme.example');
  await groupWith(acme, 'Engineering', 'ext-eng', adaId, 'scim');
  await groupWith(acme, 'On-call', null, adaId, 'idp');
  await a
    .op()
    .post(`/admin/v1/tenants/${acme}/role-mappings`)
    .send({ group: { display_name: 'engineering' }, role: 'engineer' })
    .expect(201);
  globexMappingId = String(
    (
      await a
        .op()
        .post(`/admin/v1/tenants/${globex}/role-mappings`)
        .send({ group: { display_name: 'Globex Admins' }, role: 'admin' })
    ).body.id,
  );
  admin = await openPortal(a, (await setupLink(a, acme, ['sso'])).token);
});
afterAll(() => t.close());

describe('role mapping pages', () => {
  it('previews a person in a mapped group: groups from SCIM and sign-in, roles now and with a mapping added', async () => {
    const res = await admin.get(
      roles(`?user=ADA@acme.example&add_attribute=display_name&add_group=on-call&add_role=responder`),
    );
    expect(res.status).toBe(200);
    const groups = /<ul id="preview-groups">([\s\S]*?)<\/ul>/.exec(res.text)?.[1] ?? '';
    expect(groups).toMatch(/Engineering[\s\S]*ext-eng[\s\S]*from SCIM/);
    expect(groups).toMatch(/On-call[\s\S]*from sign-in/);
    expect(textOf(res.text, 'roles-now')).toBe('engineer');
    expect(textOf(res.text, 'roles-proposed')).toBe('engineer, responder');
    expect(res.text).toContain('gains responder');
    // What sign-in computes, asked directly: the preview's "now" is that.
    expect(await t.db.withTenant(acme, (em) => rolesForLogin(em, adaId, null))).toEqual(['engineer']);
  });

  it('previews removing the only mapping: the connection default role, as sign-in would grant', async () => {
    const page = await admin.get(roles(''));
    const mappingId = /action="[^"]*\/roles\/([0-9a-f-]{36})\/delete"/.exec(page.text)?.[1];
    const res = await admin.get(
      roles(`?user=ada@acme.example&connection=${connectionId}&remove=${mappingId}`),
    );
    expect(textOf(res.text, 'roles-now')).toBe('engineer');
    expect(textOf(res.text, 'roles-proposed')).toBe('viewer');
    expect(await t.db.withTenant(acme, (em) => rolesForLogin(em, adaId, connectionId))).toEqual(['engineer']);
    // A preview writes nothing.
    expect((await a.op().get(`/admin/v1/tenants/${acme}/role-mappings`)).body.total).toBe(1);
  });

  it('says when no one matches, and refuses a half proposal or a bad field with 400', async () => {
    expect((await admin.get(roles('?user=nobody@acme.example'))).text).toContain('No one with that email');
    expect((await admin.get(roles('?user=ada@acme.example&add_group=x'))).status).toBe(400);
    expect(
      (await admin.get(roles('?user=ada@acme.example&add_group=x&add_role=Not%20A%20Role'))).status,
    ).toBe(400);
    expect((await admin.get(roles('?user=a&user=b'))).status).toBe(400);
    expect((await admin.get(roles('?remove=not-a-uuid'))).status).toBe(400);
  });

  it('adds and removes a mapping with the admin API validation and audit; the new mapping grants the role at sign-in', async () => {
    const added = await admin.post(roles(''), {
      group_attribute: 'external_id',
      group_value: 'ext-eng',
      role: 'deployer',
    });
    expect(added.status).toBe(303);
    expect(await t.db.withTenant(acme, (em) => rolesForLogin(em, adaId, null))).toEqual([
      'deployer',
      'engineer',
    ]);
    const list = (await a.op().get(`/admin/v1/tenants/${acme}/role-mappings`)).body.data as {
      id: string;
      role: string;
    }[];
    const deployer = list.find((m) => m.role === 'deployer')!;
    // The duplicate is refused as the admin API refuses it.
    const duplicate = await admin.post(roles(''), {
      group_attribute: 'external_id',
      group_value: 'ext-eng',
      role: 'deployer',
    });
    expect(duplicate.status).toBe(409);
    for (const bad of [
      { group_attribute: 'display_name', group_value: '  ', role: 'x' },
      { group_attribute: 'display_name', group_value: 'g', role: 'Admin!' },
      { group_attribute: 'email', group_value: 'g', role: 'x' },
      { group_attribute: 'display_name', group_value: 'g'.repeat(257), role: 'x' },
    ])
      expect((await admin.post(roles(''), bad)).status).toBe(400);
    expect((await admin.post(roles(`/${deployer.id}/delete`), {})).status).toBe(303);
    const events = (await a.op().get(`/admin/v1/tenants/${acme}/audit-events?action=role_mapping.*`)).body
      .data as { action: string; actor: { type: string } }[];
    expect(events.slice(0, 2).map((e) => [e.action, e.actor.type])).toEqual([
      ['role_mapping.deleted', 'setup_link'],
      ['role_mapping.created', 'setup_link'],
    ]);
  });

  it('refuses a link without sso (403), and the forms without their CSRF token, changing nothing', async () => {
    const audit = await openPortal(a, (await setupLink(a, acme, ['audit_log', 'certificate_renewal'])).token);
    const before = await portalSnapshot(t, acme);
    const form = { group_attribute: 'display_name', group_value: 'Sales', role: 'seller' };
    expect((await audit.get(roles(''))).status).toBe(403);
    expect((await audit.post(roles(''), form)).status).toBe(403);
    expect((await admin.post(roles(''), form, null)).status).toBe(403);
    expect((await admin.post(roles(''), form, 'z'.repeat(43))).status).toBe(403);
    const mappingId = (await a.op().get(`/admin/v1/tenants/${acme}/role-mappings`)).body.data[0].id as string;
    expect((await admin.post(roles(`/${mappingId}/delete`), {}, null)).status).toBe(403);
    expect(await portalSnapshot(t, acme)).toEqual(before);
  });

  it("refuses tenant A's session on tenant B's role pages and B's mapping under A's path with 404, changing nothing of B", async () => {
    await createUser(t.db, globex, 'spy@globex.example');
    const before = await portalSnapshot(t, globex);
    const form = { group_attribute: 'display_name', group_value: 'Pwned', role: 'admin' };
    for (const res of [
      await admin.get(`/portal/t/${globex}/roles`),
      await admin.get(`/portal/t/${globex}/roles?user=ada@acme.example`),
      await admin.post(`/portal/t/${globex}/roles`, form),
      await admin.post(`/portal/t/${globex}/roles/${globexMappingId}/delete`, {}),
      await admin.post(roles(`/${globexMappingId}/delete`), {}),
    ]) {
      expect(res.status).toBe(404);
      expect(res.text).not.toMatch(/Globex/);
    }
    // B's people are not found from A's preview either.
    expect((await admin.get(roles('?user=spy@globex.example'))).text).toContain('No one with that email');
    expect(await portalSnapshot(t, globex)).toEqual(before);
  });
});
