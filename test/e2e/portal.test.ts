import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import request from 'supertest';
import type { DevIdp } from '../../src/cli/dev-idp.js';
import type { AdminTestApp } from '../support/admin.js';
import { SamlTestIdp } from '../support/saml-idp.js';
import { devIdpTenant, SHOTS, startPortalServer, type PortalServer } from '../portal/support.js';

/**
 * Issue 15, in a real headless Chromium (playwright-core + @sparticuz/chromium,
 * as test/support/chromium.ts launches it; this test also needs file upload
 * and screenshots, which that wrapper does not expose): the operator creates
 * a setup link through the admin API; the IT admin opens it, follows the Okta
 * guide, uploads the IdP's metadata file (the portal's script reads it into
 * the form), sees what was understood and activates the connection; then
 * issues a SCIM token on the directory page and, after a SCIM push, sees the
 * people listed. Then a test sign-in against a live samlify IdP (the dev IdP of
 * src/cli, on loopback) succeeds, and after the connection's certificate is
 * replaced by a wrong one, fails on the signature step with its hint.
 * Screenshots of the main pages go to docs/portal/.
 */
const ROOT = path.resolve(import.meta.dirname, '..', '..');
const OKTA_METADATA = path.join(ROOT, 'fixtures', 'saml', 'metadata', 'okta.xml');

let a: AdminTestApp;
let w: PortalServer;
let baseUrl: string;
let devIdp: DevIdp;
let work: string;

beforeAll(async () => {
  // The dev IdP's SSO URL is plain http on loopback (as in the README quickstart).
  w = await startPortalServer({
    env: { GATEHOUSE_ALLOW_PRIVATE_METADATA_URLS: 'true' },
    devIdpFolder: 'gatehouse-portal-e2e-',
  });
  ({ a, baseUrl } = w);
  devIdp = w.devIdp!;
  work = w.work!;
});

afterAll(async () => {
  await w?.close();
});

/**
 * A browser of the test's own: with sparticuz's --single-process, a second
 * context's new tab (target=_blank) did not survive beside an earlier one.
 */
const launch = (): Promise<Browser> => w.launch();

async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
}

it("lets a customer's IT admin set up Okta SSO and SCIM from a setup link, in a real browser", async () => {
  const tenantId = await a.createTenant('acme', 'Acme Corporation');
  const created = await a
    .op()
    .post(`/admin/v1/tenants/${tenantId}/setup-links`)
    .send({ intents: ['sso', 'dsync'] });
  expect(created.status).toBe(201);
  const linkUrl = (created.body as { url: string }).url;
  expect(linkUrl.startsWith(`${baseUrl}/portal/start?token=gh_setup_`)).toBe(true);

  const context = await (await launch()).newContext({ viewport: { width: 1100, height: 800 } });
  const page = await context.newPage();
  const blockedByCsp: string[] = [];
  page.on('console', (m) => {
    if (/Content Security Policy/i.test(m.text())) blockedByCsp.push(m.text());
  });

  // The link opens a confirm page; its button starts the session.
  await page.goto(linkUrl);
  await page.getByRole('button', { name: 'Continue' }).click();
  await page.waitForURL(`${baseUrl}/portal/t/${tenantId}`);
  await page.getByRole('heading', { name: 'Acme Corporation' }).waitFor();
  const cookies = await context.cookies(baseUrl);
  expect(cookies.find((c) => c.name === 'gh_portal')).toMatchObject({
    httpOnly: true,
    secure: true,
    sameSite: 'Lax',
  });
  await shot(page, 'home');

  // SSO: pick Okta; the guide shows this connection's values with copy buttons.
  await page.getByRole('link', { name: 'Single sign-on' }).first().click();
  await page.getByRole('heading', { name: 'Connect an identity provider' }).waitFor();
  await shot(page, 'sso-pick-idp');
  await page.getByRole('button', { name: 'Okta' }).click();
  await page.getByRole('heading', { name: '1. In Okta' }).waitFor();
  const acsUrl = (await page.locator('[id^="v-acs_url"]').first().textContent()) ?? '';
  expect(acsUrl).toMatch(new RegExp(`^${baseUrl}/saml/[0-9a-f-]{36}/acs$`));
  expect(await page.getByRole('button', { name: 'Copy' }).count()).toBeGreaterThan(3);
  await shot(page, 'sso-okta-guide');

  // The metadata file: the portal's script reads it into the form (no inline script, no multipart).
  await page.setInputFiles('#metadata_file', OKTA_METADATA);
  await page.waitForFunction(() =>
    (document.getElementById('metadata_xml') as HTMLTextAreaElement).value.includes('EntityDescriptor'),
  );
  await page.getByRole('button', { name: 'Upload metadata' }).click();
  await page.locator('#understood').getByText('IdP entity id').waitFor();
  expect(await page.locator('#understood').textContent()).toContain('http://www.okta.com/');
  await shot(page, 'sso-understood');
  await page.getByRole('button', { name: 'Activate' }).click();
  await page.locator('#connection-status', { hasText: 'active' }).waitFor();

  // Directory sync: a token shown once, then the people the IdP pushed.
  await page.getByRole('link', { name: 'Directory sync' }).first().click();
  await page.getByRole('button', { name: 'Create a SCIM token' }).click();
  const token = ((await page.locator('#scim-token').textContent()) ?? '').trim();
  expect(token).toMatch(/^gh_scim_/);
  await shot(page, 'dsync-token');
  for (const [userName, givenName] of [
    ['ada@acme.example', 'Ada'],
    ['grace@acme.example', 'Grace'],
  ]) {
    const res = await request(a.app)
      .post(`/scim/v2/${tenantId}/Users`)
      .set('Authorization', `Bearer ${token}`)
      .set('Content-Type', 'application/scim+json')
      .send({
        schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'],
        userName,
        name: { givenName, familyName: 'Example' },
        emails: [{ value: userName, primary: true }],
        active: true,
      });
    expect(res.status).toBe(201);
  }
  await page.getByRole('link', { name: 'Back to directory sync' }).click();
  await page.locator('#directory-users').getByText('grace@acme.example').waitFor();
  expect(await page.locator('#user-count').textContent()).toBe('2');
  expect(await page.locator('#last-scim').textContent()).toContain('POST /Users');
  await shot(page, 'dsync-directory');

  // Nothing the portal served was refused by its own Content-Security-Policy.
  expect(blockedByCsp).toEqual([]);
  // Contexts stay open: with --single-process (sparticuz's args) closing the last one ends the browser.
}, 120_000);

it('runs a test sign-in against a live IdP: success, then the failed step and its hint with a wrong certificate', async () => {
  // The dev IdP's people are at example.test (RFC 6761): verified by the operator, no DNS.
  const tenantId = await devIdpTenant(a);
  const link = (
    await a
      .op()
      .post(`/admin/v1/tenants/${tenantId}/setup-links`)
      .send({ intents: ['sso'] })
  ).body as { url: string };
  const metadataFile = path.join(work, 'idp-metadata.xml');
  await writeFile(metadataFile, devIdp.saml.metadata);

  const context = await (await launch()).newContext({ viewport: { width: 1100, height: 800 } });
  const page = await context.newPage();
  await page.goto(link.url);
  await page.getByRole('button', { name: 'Continue' }).click();
  await page.waitForURL(`${baseUrl}/portal/t/${tenantId}`);
  await page.goto(`${baseUrl}/portal/t/${tenantId}/sso`);
  await page.getByRole('button', { name: 'Other SAML 2.0 IdP' }).click();
  await page.setInputFiles('#metadata_file', metadataFile);
  await page.waitForFunction(() =>
    (document.getElementById('metadata_xml') as HTMLTextAreaElement).value.includes('EntityDescriptor'),
  );
  await page.getByRole('button', { name: 'Upload metadata' }).click();
  await page.getByRole('button', { name: 'Activate' }).click();
  await page.locator('#connection-status', { hasText: 'active' }).waitFor();
  const connectionPage = page.url();

  /** Clicks "Run a test sign-in" (a new tab), picks Alice at the IdP; the result tab. */
  const run = async () => {
    const [tab] = await Promise.all([
      context.waitForEvent('page'),
      page.getByRole('link', { name: 'Run a test sign-in' }).click(),
    ]);
    await tab.waitForURL((u) => u.toString().startsWith(devIdp.baseUrl));
    await tab.click('button[value="alice@example.test"]');
    await tab.waitForURL((u) => u.toString().includes('/test-result?'));
    return tab;
  };

  const ok = await run();
  await ok.locator('#test-success').waitFor();
  expect(await ok.locator('#test-profile').textContent()).toContain('alice@example.test');
  expect(await ok.locator('#test-roles').textContent()).toContain('admin');
  await shot(ok, 'test-sign-in-success');

  // The connection now trusts only a certificate the IdP does not sign with.
  const connectionId = /connections\/([0-9a-f-]{36})/.exec(connectionPage)?.[1] ?? '';
  const wrong = await SamlTestIdp.create('wrong');
  const patched = await a
    .op()
    .patch(`/admin/v1/tenants/${tenantId}/connections/${connectionId}`)
    .send({ certificates: [wrong.certificatePem] });
  expect(patched.status).toBe(200);
  const failed = await run();
  await failed.locator('#test-failure').waitFor();
  expect(await failed.locator('#reason-code').textContent()).toBe('saml_signature_invalid');
  expect(await failed.locator('#reason-hint').textContent()).toContain('certificate we don’t have');
  expect(await failed.locator('#login-trace').textContent()).toMatch(/Signature\s*failed/);
  await shot(failed, 'test-sign-in-failure');
}, 120_000);
