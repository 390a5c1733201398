import { readFileSync } from 'node:fs';
import path from 'node:path';
import request from 'supertest';
import type { AdminTestApp } from '../support/admin.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { startDnsServer, type TestDnsServer } from '../support/dns-server.js';
import {
  buildPortalApp,
  COOKIE,
  openPortal,
  portalLink,
  portalSnapshot,
  setupLink,
  start,
} from './support.js';

/**
 * Issue 15: how the portal is entered (operator login links, setup links),
 * what a session may do (intents, CSRF), and the headers every page carries.
 */
const OKTA_METADATA = readFileSync(
  path.join(import.meta.dirname, '../../fixtures/saml/metadata/okta.xml'),
  'utf8',
);

let t: TestDatabase;
let a: AdminTestApp;
let dns: TestDnsServer;
let acme: string;
let globex: string;

beforeAll(async () => {
  t = await createTestDatabase();
  dns = await startDnsServer();
  a = buildPortalApp(t, { GATEHOUSE_DNS_SERVERS: dns.address });
  acme = await a.createTenant('acme', 'Acme');
  globex = await a.createTenant('globex', 'Globex');
});
afterAll(async () => {
  await dns.close();
  await t.close();
});

describe('operator login links', () => {
  it('answers a one-time URL that opens an operator session once, and whose GET does not use it up', async () => {
    const res = await a.op().post('/admin/v1/portal-links').send({});
    expect(res.status).toBe(201);
    const { url, expires_at } = res.body as { url: string; expires_at: string };
    expect(url).toMatch(/^https:\/\/gatehouse\.test\/portal\/start\?token=gh_portal_/);
    expect(new Date(expires_at).getTime() - Date.now()).toBeLessThanOrEqual(15 * 60 * 1000);
    const token = new URL(url).searchParams.get('token') ?? '';

    // A mail scanner fetching the link sees a button, and the link still works afterwards.
    const preview = await request(a.app).get(`/portal/start?token=${token}`);
    expect(preview.status).toBe(200);
    expect(preview.text).toContain('Continue');

    const first = await start(a, token);
    expect(first.status).toBe(303);
    expect(first.headers.location).toBe('/portal');
    const cookie = String(first.headers['set-cookie']);
    expect(cookie).toMatch(
      new RegExp(`^${COOKIE}=[A-Za-z0-9_-]{43}; Path=/; Expires=.*; HttpOnly; Secure; SameSite=Lax$`),
    );
    const again = await start(a, token);
    expect(again.status).toBe(403);
    expect(again.headers['set-cookie']).toBeUndefined();
    // The link's token travels in a query (GET) and a form (POST): neither reaches the log.
    expect(a.logs()).not.toContain(token.slice('gh_portal_'.length));
  });

  it('refuses an expired login link', async () => {
    const token = await portalLink(a);
    await t.asOwner(`UPDATE portal_links SET expires_at = now() - interval '1 second' WHERE used_at IS NULL`);
    expect((await start(a, token)).status).toBe(403);
  });

  it('refuses the operator link endpoints to a tenant admin', async () => {
    expect((await a.tenantAdmin(acme, 'u1').post('/admin/v1/portal-links').send({})).status).toBe(403);
    const before = await portalSnapshot(t, acme);
    const res = await a
      .tenantAdmin(acme, 'u1')
      .post(`/admin/v1/tenants/${acme}/setup-links`)
      .send({ intents: ['sso'] });
    expect(res.status).toBe(403);
    expect((await a.tenantAdmin(acme, 'u1').get(`/admin/v1/tenants/${acme}/setup-links`)).status).toBe(403);
    expect(await portalSnapshot(t, acme)).toEqual(before);
  });

  it('shows the operator every tenant and lets them create a setup link from the portal', async () => {
    const op = await openPortal(a, await portalLink(a));
    const home = await op.get('/portal');
    expect(home.text).toContain('Acme');
    expect(home.text).toContain('Globex');
    const before = await portalSnapshot(t, globex);
    const created = await op.post(`/portal/t/${globex}/setup-links`, {
      intents: ['sso', 'dsync'],
      ttl_days: '3',
    });
    expect(created.status).toBe(201);
    const url = /(https:\/\/gatehouse\.test\/portal\/start\?token=gh_setup_[A-Za-z0-9_-]+)/.exec(
      created.text,
    )?.[1];
    expect(url).toBeDefined();
    expect(await portalSnapshot(t, globex)).toMatchObject({ setup_links: Number(before.setup_links) + 1 });
    const it = await openPortal(a, new URL(url ?? '').searchParams.get('token') ?? '');
    expect((await it.get(`/portal/t/${globex}/dsync`)).status).toBe(200);
  });
});

describe('setup links', () => {
  it('creates, lists without the secret, and revokes; revocation ends the sessions it opened', async () => {
    const link = await setupLink(a, acme, ['sso', 'domain_verification']);
    expect(link.token).toMatch(/^gh_setup_[0-9a-f]{32}_[A-Za-z0-9_-]{43}$/);
    const list = await a.op().get(`/admin/v1/tenants/${acme}/setup-links`);
    expect(list.status).toBe(200);
    expect(JSON.stringify(list.body)).not.toContain(link.token);
    expect(list.body.data).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ id: link.id, status: 'active', intents: ['sso', 'domain_verification'] }),
      ]),
    );

    const it = await openPortal(a, link.token);
    expect((await it.get(`/portal/t/${acme}/sso`)).status).toBe(200);
    const revoked = await a.op().delete(`/admin/v1/tenants/${acme}/setup-links/${link.id}`);
    expect(revoked.status).toBe(200);
    expect(revoked.body.status).toBe('revoked');
    expect((await it.get(`/portal/t/${acme}/sso`)).status).toBe(401);
    expect((await start(a, link.token)).status).toBe(403);
  });

  it('refuses an expired setup link', async () => {
    const link = await setupLink(a, acme, ['sso']);
    // setup_links forces RLS even for its owner: name the tenant first (both values are UUIDs).
    await t.asOwner(
      `SELECT set_config('app.tenant_id', '${acme}', false); UPDATE setup_links SET expires_at = now() - interval '1 second' WHERE id = '${link.id}'`,
    );
    expect((await start(a, link.token)).status).toBe(403);
  });

  it("refuses a setup link whose tenant part was changed to another tenant's", async () => {
    const link = await setupLink(a, acme, ['sso']);
    const forged = link.token.replace(acme.replace(/-/g, ''), globex.replace(/-/g, ''));
    expect(forged).not.toBe(link.token);
    const res = await start(a, forged);
    expect(res.status).toBe(403);
    expect(res.headers['set-cookie']).toBeUndefined();
  });

  it('refuses unknown intents and other input with 400, creating nothing', async () => {
    const before = await portalSnapshot(t, acme);
    for (const body of [
      { intents: [] },
      { intents: ['admin'] },
      { intents: ['sso'], ttl: 10 },
      { intents: 'sso' },
      {},
    ]) {
      const res = await a.op().post(`/admin/v1/tenants/${acme}/setup-links`).send(body);
      expect({ body, status: res.status }).toEqual({ body, status: 400 });
    }
    expect(await portalSnapshot(t, acme)).toEqual(before);
  });

  it('answers an unknown or malformed link id with 404', async () => {
    expect((await a.op().delete(`/admin/v1/tenants/${acme}/setup-links/nope`)).status).toBe(404);
    expect((await a.op().delete(`/admin/v1/tenants/${acme}/setup-links/${globex}`)).status).toBe(404);
  });
});

describe('a session does only what its link allows', () => {
  it('gives a dsync link 403 on every SSO page and form, changing nothing', async () => {
    const it = await openPortal(a, (await setupLink(a, acme, ['dsync'])).token);
    const before = await portalSnapshot(t, acme);
    expect((await it.get(`/portal/t/${acme}/dsync`)).status).toBe(200);
    expect((await it.get(`/portal/t/${acme}/sso`)).status).toBe(403);
    expect((await it.get(`/portal/t/${acme}/sso/oidc`)).status).toBe(403);
    expect((await it.post(`/portal/t/${acme}/sso/connections`, { idp: 'okta' })).status).toBe(403);
    expect((await it.get(`/portal/t/${acme}/domains`)).status).toBe(403);
    expect((await it.post(`/portal/t/${acme}/domains`, { domain: 'acme.example' })).status).toBe(403);
    expect((await it.post(`/portal/t/${acme}/setup-links`, { intents: 'sso' })).status).toBe(403);
    expect(await portalSnapshot(t, acme)).toEqual(before);
  });

  it('refuses a form without the CSRF token, or with a wrong one, with 403 and changes nothing', async () => {
    const it = await openPortal(a, (await setupLink(a, acme, ['domain_verification', 'dsync'])).token);
    const before = await portalSnapshot(t, acme);
    expect((await it.post(`/portal/t/${acme}/domains`, { domain: 'csrf.example' }, null)).status).toBe(403);
    const wrong = `${it.csrf.slice(0, -1)}${it.csrf.endsWith('A') ? 'B' : 'A'}`;
    expect((await it.post(`/portal/t/${acme}/domains`, { domain: 'csrf.example' }, wrong)).status).toBe(403);
    expect((await it.post(`/portal/t/${acme}/dsync/tokens`, {}, '')).status).toBe(403);
    expect(await portalSnapshot(t, acme)).toEqual(before);
    // The same form with the token goes through.
    expect((await it.post(`/portal/t/${acme}/domains`, { domain: 'csrf.example' })).status).toBe(303);
  });

  it('answers 401 without a session and never reads a tenant', async () => {
    const res = await request(a.app).get(`/portal/t/${acme}/sso`);
    expect(res.status).toBe(401);
    expect(res.text).not.toContain('Acme');
  });
});

describe('pages', () => {
  it('forbids framing and anything inline in every portal page, and serves its own CSS and script', async () => {
    const it = await openPortal(a, (await setupLink(a, acme, ['sso', 'dsync', 'domain_verification'])).token);
    for (const p of [
      `/portal/t/${acme}`,
      `/portal/t/${acme}/sso`,
      `/portal/t/${acme}/dsync`,
      `/portal/t/${acme}/domains`,
    ]) {
      const res = await it.get(p);
      expect(res.status).toBe(200);
      const csp = String(res.headers['content-security-policy']);
      expect(csp).toContain("frame-ancestors 'none'");
      expect(csp).toContain("default-src 'none'");
      expect(csp).toContain("form-action 'self'");
      expect(csp).not.toContain('unsafe-inline');
      expect(res.text).not.toMatch(/<style|<script>| style=/);
      // The shared stylesheet (/assets/, every page's) and the portal's script (/portal/assets/).
      const assets = [...res.text.matchAll(/(?:href|src)="((?:\/portal)?\/assets\/[^"]+)"/g)].map(
        (m) => m[1] ?? '',
      );
      expect(assets).toHaveLength(2);
      for (const asset of assets) expect((await request(a.app).get(asset)).status).toBe(200);
    }
    expect((await request(a.app).get('/portal/assets/other.css')).status).toBe(404);
  });
});

describe('the sections', () => {
  it('walks the Okta wizard: a draft shows our values, takes pasted metadata, says what it understood, activates', async () => {
    const it = await openPortal(a, (await setupLink(a, globex, ['sso'])).token);
    const created = await it.post(`/portal/t/${globex}/sso/connections`, { idp: 'okta' });
    expect(created.status).toBe(303);
    const page = String(created.headers.location);
    const connectionId = /connections\/([0-9a-f-]{36})/.exec(page)?.[1] ?? '';
    const guide = await it.get(page);
    expect(guide.text).toContain(`https://gatehouse.test/saml/${connectionId}/acs`);
    expect(guide.text).toContain('Nothing yet');
    // Not active without metadata: the service refuses it, as through the admin API.
    expect((await it.post(`${page.split('?')[0]}/activate`, {})).status).toBe(400);
    const uploaded = await it.post(`${page.split('?')[0]}/metadata`, {
      metadata_xml: OKTA_METADATA,
      metadata_url: '',
    });
    expect(uploaded.status).toBe(303);
    const understood = await it.get(page);
    expect(understood.text).toContain('IdP entity id');
    expect(understood.text).toMatch(/SHA-256 ([0-9A-F]{2}:){31}[0-9A-F]{2}/);
    expect((await it.post(`${page.split('?')[0]}/activate`, {})).status).toBe(303);
    const [row] = await t.asOwner<{ status: string }>('SELECT status FROM connections WHERE id = $1', [
      connectionId,
    ]);
    expect(row?.status).toBe('active');
    const [event] = await t.asOwner<{ actor_type: string }>(
      `SELECT actor_type FROM audit_events WHERE tenant_id = $1 AND target_id = $2 ORDER BY seq DESC LIMIT 1`,
      [globex, connectionId],
    );
    expect(event?.actor_type).toBe('setup_link');
  });

  it('refuses broken metadata with 400 and leaves the draft as it was', async () => {
    const it = await openPortal(a, (await setupLink(a, globex, ['sso'])).token);
    const page = String(
      (await it.post(`/portal/t/${globex}/sso/connections`, { idp: 'saml' })).headers.location,
    ).split('?')[0];
    const before = await portalSnapshot(t, globex);
    const forms: Record<string, string>[] = [
      { metadata_xml: '<nope' },
      { metadata_xml: '' },
      { metadata_xml: OKTA_METADATA, metadata_url: 'https://x.test/m' },
    ];
    for (const form of forms) {
      expect((await it.post(`${page}/metadata`, form)).status).toBe(400);
    }
    expect(await portalSnapshot(t, globex)).toEqual(before);
  });

  it('shows the TXT record and says why a check failed: no record, then a wrong value, then verified', async () => {
    const it = await openPortal(a, (await setupLink(a, globex, ['domain_verification'])).token);
    expect((await it.post(`/portal/t/${globex}/domains`, { domain: 'globex.example' })).status).toBe(303);
    const listed = await a.op().get(`/admin/v1/tenants/${globex}/domains?domain=globex.example`);
    const d = listed.body.data[0] as { id: string; verification: { name: string; value: string } };
    const page = await it.get(`/portal/t/${globex}/domains`);
    expect(page.text).toContain(d.verification.name);
    expect(page.text).toContain(d.verification.value);

    const none = await it.post(`/portal/t/${globex}/domains/${d.id}/verify`, {});
    expect(none.status).toBe(400);
    expect(none.text).toContain('We found no TXT record');
    dns.setTxt(d.verification.name, ['gatehouse-verification=wrong']);
    const wrong = await it.post(`/portal/t/${globex}/domains/${d.id}/verify`, {});
    expect(wrong.text).toContain('not with our value');
    dns.setTxt(d.verification.name, [d.verification.value]);
    const ok = await it.post(`/portal/t/${globex}/domains/${d.id}/verify`, {});
    expect(ok.status).toBe(200);
    expect(ok.text).toContain('globex.example is verified');
  });

  it('issues a SCIM token once and shows what the IdP pushed', async () => {
    const it = await openPortal(a, (await setupLink(a, globex, ['dsync'])).token);
    const created = await it.post(`/portal/t/${globex}/dsync/tokens`, {});
    expect(created.status).toBe(201);
    const token = /(gh_scim_[A-Za-z0-9_.-]+)/.exec(created.text)?.[1] ?? '';
    expect(token).not.toBe('');
    const scim = await request(a.app)
      .post(`/scim/v2/${globex}/Users`)
      .set('Authorization', `Bearer ${token}`)
      .set('Content-Type', 'application/scim+json')
      .send({
        schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'],
        userName: 'pat@globex.example',
        name: { givenName: 'Pat', familyName: 'Lee' },
      });
    expect(scim.status).toBe(201);
    const view = await it.get(`/portal/t/${globex}/dsync`);
    expect(view.text).toContain('pat@globex.example');
    expect(view.text).not.toContain(token);
  });
});
