import { readFileSync } from 'node:fs';
import path from 'node:path';
import request from 'supertest';
import { certificateUntil, metadataXml } from '../connections/metadata-refresh-support.js';
import type { AdminTestApp } from '../support/admin.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { startLocalServer, type LocalServer } from '../support/local-http.js';
import { SamlTestIdp } from '../support/saml-idp.js';
import { addDomain } from '../support/sso-factories.js';
import {
  buildPortalApp,
  openPortal,
  portalSnapshot,
  runTestSignIn,
  setupLink,
  type PortalBrowser,
} from './support.js';

/**
 * Issue 15: certificate renewal in the portal (intent `certificate_renewal`)
 * over real HTTP: expiring IdP certificates flagged; the IdP's new metadata
 * uploaded (or re-fetched from its URL on a loopback server) adds the new
 * certificate and keeps the old one through the overlap, audited; a real
 * test sign-in (samlify signing with the new key) then succeeds; and a
 * renewal-only link can change nothing else of the connection.
 */
let t: TestDatabase;
let a: AdminTestApp;
let server: LocalServer;
let idp: SamlTestIdp;
let rotated: SamlTestIdp;
let acme: string;
let globex: string;
let connectionId: string;
let expiringId: string;
let globexConnectionId: string;
let renewer: PortalBrowser;
let published = '';
const DAY = 86_400_000;

async function samlConnection(tenantId: string, body: Record<string, unknown>): Promise<string> {
  const res = await a
    .op()
    .post(`/admin/v1/tenants/${tenantId}/connections`)
    .send({ type: 'saml', status: 'active', ...body });
  if (res.status !== 201) throw new Error(`connection: ${res.status} ${res.text}`);
  return String(res.body.id);
}

const connection = async (tenantId: string, id: string) =>
  (await a.op().get(`/admin/v1/tenants/${tenantId}/connections/${id}`).expect(200)).body as {
    saml: { sso_url: string; certificates: { fingerprint_sha256: string; removed_at: string | null }[] };
    status: string;
  };

beforeAll(async () => {
  t = await createTestDatabase();
  server = await startLocalServer({
    '/metadata': (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/samlmetadata+xml' }).end(published);
    },
  });
  a = buildPortalApp(t, { GATEHOUSE_ALLOW_PRIVATE_METADATA_URLS: 'true' });
  idp = await SamlTestIdp.create('acme');
  rotated = await SamlTestIdp.rotated(idp);
  acme = await a.createTenant('acme', 'Acme');
  globex = await a.createTenant('globex', 'Globex Secret Name');
  await addDomain(t.db, acme, 'acme.example', true);
  connectionId = await samlConnection(acme, {
    name: 'Acme IdP',
    metadata_xml: metadataXml(idp.entityId, idp.ssoUrl, [idp.certificatePem]),
  });
  const soon = await certificateUntil(new Date(Date.now() + 10 * DAY), 'soon.idp.test');
  expiringId = await samlConnection(acme, {
    name: 'Expiring IdP',
    metadata_xml: metadataXml('https://soon.idp.test/metadata', 'https://soon.idp.test/sso', [soon]),
  });
  await samlConnection(acme, {
    name: 'Expired IdP',
    metadata_xml: readFileSync(
      path.join(import.meta.dirname, '../../fixtures/saml/metadata/metadata.expired-cert.xml'),
      'utf8',
    ),
  });
  globexConnectionId = await samlConnection(globex, {
    name: 'Globex IdP',
    metadata_xml: metadataXml('https://globex.idp.test/m', 'https://globex.idp.test/sso', [soon]),
  });
  renewer = await openPortal(a, (await setupLink(a, acme, ['certificate_renewal'])).token);
});
afterAll(async () => {
  await server.close();
  await t.close();
});

/** A test sign-in from the renewal session, answered by `by`; the result page. */
async function testSignIn(browser: PortalBrowser, by: SamlTestIdp): Promise<request.Response> {
  const res = await runTestSignIn(a, browser, { tenantId: acme, connectionId }, by, {
    nameId: 'ada@acme.example',
    attributes: { email: 'ada@acme.example' },
  });
  expect(String(res.headers.location)).toMatch(/\/test-result\?r=/);
  return browser.get(String(res.headers.location));
}

describe('certificate renewal pages', () => {
  it('lists SAML certificates with days left, flagging the one that expires within 30 days and the expired one', async () => {
    const res = await renewer.get(`/portal/t/${acme}/certificates`);
    expect(res.status).toBe(200);
    const rows = [...res.text.matchAll(/<tr class="certificate"[\s\S]*?<\/tr>/g)].map((m) => m[0]);
    expect(rows).toHaveLength(3);
    expect(rows.find((r) => r.includes('Expired IdP'))).toMatch(
      /<td>\s*-\d+ <strong class="bad expiry-flag">expired</,
    );
    const expiring = rows.find((r) => r.includes('Expiring IdP'))!;
    expect(expiring).toMatch(/<td>\s*(9|10) /);
    expect(expiring).toContain('expires soon');
    const fine = rows.find((r) => r.includes('Acme IdP'))!;
    expect(fine).not.toContain('expiry-flag');
    expect(fine).toContain(`/portal/t/${acme}/certificates/${connectionId}`);
    expect(res.text).not.toContain('Globex');
  });

  it('adds the new certificate from uploaded metadata, keeps the old through the overlap, audits it, and a test sign-in with the new key succeeds', async () => {
    // As metadata import stores them: upper-case hex pairs joined by colons.
    const colons = (hex: string) => hex.toUpperCase().match(/../g)!.join(':');
    const old = colons(idp.certificate().fingerprintSha256);
    const next = colons(rotated.certificate().fingerprintSha256);
    const before = await connection(acme, connectionId);
    const res = await renewer.post(`/portal/t/${acme}/certificates/${connectionId}/metadata`, {
      metadata_xml: metadataXml(idp.entityId, idp.ssoUrl, [rotated.certificatePem]),
    });
    expect(res.status).toBe(200);
    expect(res.text).toContain('New certificate added');
    expect(res.text).toContain('Both the old and the new certificate are accepted now');
    const after = await connection(acme, connectionId);
    expect(after.saml.sso_url).toBe(before.saml.sso_url);
    expect(after.saml.certificates.map((c) => [c.fingerprint_sha256, c.removed_at !== null])).toEqual([
      [old, true],
      [next, false],
    ]);
    const events = (await a.op().get(`/admin/v1/tenants/${acme}/audit-events?action=connection.*`)).body
      .data as { action: string; actor: { type: string }; after: { fingerprint_sha256?: string } }[];
    expect(events.find((e) => e.action === 'connection.certificate_added')).toMatchObject({
      actor: { type: 'setup_link' },
      after: { fingerprint_sha256: next },
    });
    expect(events.some((e) => e.action === 'connection.certificate_removed')).toBe(true);

    // Proven end to end: the IdP signing with its new key, and still with the old one (the overlap).
    expect((await testSignIn(renewer, rotated)).text).toContain('Test sign-in succeeded');
    expect((await testSignIn(renewer, idp)).text).toContain('Test sign-in succeeded');
  });

  it('applies certificates only: another sign-in URL in the metadata is reported and left as it was', async () => {
    const res = await renewer.post(`/portal/t/${acme}/certificates/${connectionId}/metadata`, {
      metadata_xml: metadataXml(idp.entityId, 'https://evil.idp.test/sso', [
        idp.certificatePem,
        rotated.certificatePem,
      ]),
    });
    expect(res.status).toBe(200);
    expect(res.text).toContain('names another sign-in URL');
    expect((await connection(acme, connectionId)).saml.sso_url).toBe(idp.ssoUrl);
  });

  it('refuses metadata of another IdP entity, or not metadata at all, with 400 and changes nothing', async () => {
    const before = await portalSnapshot(t, acme);
    for (const metadata_xml of [
      metadataXml('https://other.idp.test/m', idp.ssoUrl, [rotated.certificatePem]),
      '<html/>',
      '   ',
    ]) {
      const res = await renewer.post(`/portal/t/${acme}/certificates/${connectionId}/metadata`, {
        metadata_xml,
      });
      expect(res.status).toBe(400);
    }
    expect(await portalSnapshot(t, acme)).toEqual(before);
  });

  it('re-fetches the metadata URL now and shows the certificate it added', async () => {
    const urlIdp = await SamlTestIdp.create('byurl');
    published = metadataXml(urlIdp.entityId, urlIdp.ssoUrl, [urlIdp.certificatePem]);
    const id = await samlConnection(acme, { name: 'URL IdP', metadata_url: `${server.url}/metadata` });
    const next = await SamlTestIdp.rotated(urlIdp);
    published = metadataXml(urlIdp.entityId, urlIdp.ssoUrl, [urlIdp.certificatePem, next.certificatePem]);
    const page = await renewer.get(`/portal/t/${acme}/certificates/${id}`);
    expect(page.text).toContain('id="refresh-now"');
    const res = await renewer.post(`/portal/t/${acme}/certificates/${id}/refresh`, {});
    expect(res.status).toBe(200);
    expect(res.text).toContain('New certificate added');
    expect((await connection(acme, id)).saml.certificates).toHaveLength(2);
  });

  it('lets a certificate_renewal link do nothing else on the connection, and refuses a link without it', async () => {
    const dsync = await openPortal(a, (await setupLink(a, acme, ['dsync'])).token);
    const before = await portalSnapshot(t, acme);
    const sso = `/portal/t/${acme}/sso/connections/${connectionId}`;
    for (const res of [
      await renewer.get(`/portal/t/${acme}/sso`),
      await renewer.get(sso),
      await renewer.post(`${sso}/metadata`, {
        metadata_xml: metadataXml(idp.entityId, 'https://x.test/', []),
      }),
      await renewer.post(`${sso}/activate`, {}),
      await renewer.get(`/portal/t/${acme}/roles`),
      await renewer.post(`/portal/t/${acme}/roles`, {
        group_attribute: 'display_name',
        group_value: 'x',
        role: 'x',
      }),
    ])
      expect(res.status).toBe(403);
    // No portal route deletes a connection or changes its status.
    expect((await renewer.post(`${sso}/delete`, {})).status).toBe(404);
    expect((await dsync.get(`/portal/t/${acme}/certificates`)).status).toBe(403);
    expect((await dsync.get(`/portal/t/${acme}/certificates/${connectionId}`)).status).toBe(403);
    expect(
      (
        await dsync.post(`/portal/t/${acme}/certificates/${connectionId}/metadata`, {
          metadata_xml: metadataXml(idp.entityId, idp.ssoUrl, [rotated.certificatePem]),
        })
      ).status,
    ).toBe(403);
    expect((await connection(acme, connectionId)).status).toBe('active');
    expect(await portalSnapshot(t, acme)).toEqual(before);
  });

  it('refuses an upload without its CSRF token, changing nothing', async () => {
    const before = await portalSnapshot(t, acme);
    const form = {
      metadata_xml: metadataXml(idp.entityId, idp.ssoUrl, [(await SamlTestIdp.create('z')).certificatePem]),
    };
    expect(
      (await renewer.post(`/portal/t/${acme}/certificates/${expiringId}/metadata`, form, null)).status,
    ).toBe(403);
    expect(
      (await renewer.post(`/portal/t/${acme}/certificates/${connectionId}/metadata`, form, 'y'.repeat(43)))
        .status,
    ).toBe(403);
    expect(await portalSnapshot(t, acme)).toEqual(before);
  });

  it("refuses tenant A's session on tenant B's certificate pages and B's connection under A's path with 404, changing nothing of B", async () => {
    const every = await openPortal(
      a,
      (await setupLink(a, acme, ['sso', 'dsync', 'domain_verification', 'certificate_renewal', 'audit_log']))
        .token,
    );
    const before = await portalSnapshot(t, globex);
    const upload = {
      metadata_xml: metadataXml('https://globex.idp.test/m', 'https://globex.idp.test/sso', [
        rotated.certificatePem,
      ]),
    };
    for (const tenant of [globex, acme]) {
      const base = `/portal/t/${tenant}/certificates/${globexConnectionId}`;
      const answers = [
        await every.get(base),
        await every.post(`${base}/metadata`, upload),
        await every.post(`${base}/refresh`, {}),
        ...(tenant === globex ? [await every.get(`/portal/t/${globex}/certificates`)] : []),
      ];
      for (const res of answers) {
        expect(res.status).toBe(404);
        expect(res.text).not.toMatch(/Globex|globex\.idp/);
      }
    }
    expect(await portalSnapshot(t, globex)).toEqual(before);
  });
});
