import path from 'node:path';
import axe from 'axe-core';
import type { Browser, Page } from 'playwright-core';
import type { DevIdp } from '../../src/cli/dev-idp.js';
import type { AdminTestApp } from '../support/admin.js';
import { devIdpTenant, SHOTS, startPortalServer, type PortalServer } from './support.js';

/**
 * Issue 15, in a real headless Chromium (playwright-core + @sparticuz/chromium,
 * launched as test/e2e/portal.test.ts does, for its screenshot): a tenant
 * admin opens /portal/signin, types their work email, is sent through
 * Gatehouse's /oauth/authorize to their company's IdP (the dev IdP of
 * src/cli: samlify on loopback, a real peer), picks themself there, and lands
 * on their tenant's portal; then signs out, and out of Gatehouse too
 * (RP-initiated logout). The sign-in page is checked with axe-core and
 * photographed for docs/portal/tenant-admin-signin.png.
 */

let a: AdminTestApp;
let w: PortalServer;
let browser: Browser;
let baseUrl: string;
let devIdp: DevIdp;

beforeAll(async () => {
  // http://localhost: a secure context, so the SSO and portal cookies work as under https.
  w = await startPortalServer({
    env: { GATEHOUSE_ALLOW_PRIVATE_METADATA_URLS: 'true' },
    devIdpFolder: 'gatehouse-admin-signin-e2e-',
    browser: true,
  });
  ({ a, baseUrl } = w);
  devIdp = w.devIdp!;
  browser = w.browser!;
});

afterAll(async () => {
  await w?.close();
});

async function axeViolations(page: Page): Promise<string[]> {
  await page.evaluate(axe.source);
  const result = await page.evaluate(() =>
    (window as unknown as { axe: typeof axe }).axe.run(document, { resultTypes: ['violations'] }),
  );
  return result.violations.map((v) => `${v.id}: ${v.help}`);
}

it('signs a tenant admin in through their company IdP into their own tenant’s portal, and out again', async () => {
  // The dev IdP's people are at example.test (RFC 6761): verified by the operator, no DNS.
  const tenantId = await devIdpTenant(a);
  const connection = await a
    .op()
    .post(`/admin/v1/tenants/${tenantId}/connections`)
    .send({ type: 'saml', name: 'Dev IdP', metadata_xml: devIdp.saml.metadata, status: 'active' });
  expect(connection.status).toBe(201);

  const context = await browser.newContext({ viewport: { width: 1100, height: 800 } });
  const page = await context.newPage();
  const blockedByCsp: string[] = [];
  page.on('console', (m) => {
    if (/Content Security Policy/i.test(m.text())) blockedByCsp.push(m.text());
  });

  await page.goto(`${baseUrl}/portal/signin`);
  await page.getByRole('heading', { name: 'Sign in with your company account' }).waitFor();
  await page.getByLabel('Work email').fill('alice@example.test');
  expect(await axeViolations(page)).toEqual([]);
  await page.screenshot({ path: path.join(SHOTS, 'tenant-admin-signin.png'), fullPage: true });
  await page.getByRole('button', { name: 'Continue' }).click();

  // Home realm discovery sent the browser to the tenant's IdP; Alice (group Admins) picks herself there.
  await page.waitForURL((u) => u.toString().startsWith(devIdp.baseUrl));
  await page.click('button[value="alice@example.test"]');
  await page.waitForURL(`${baseUrl}/portal/t/${tenantId}`);
  await page.getByRole('heading', { name: 'Example Inc' }).waitFor();
  const cookies = await context.cookies(baseUrl);
  expect(cookies.find((c) => c.name === 'gh_portal')).toMatchObject({ httpOnly: true, sameSite: 'Lax' });
  // The sign-in's own cookie is gone once used.
  expect(cookies.find((c) => c.name === 'gh_portal_signin')).toBeUndefined();
  await page.getByRole('link', { name: 'Single sign-on' }).first().click();
  await page.waitForURL(`${baseUrl}/portal/t/${tenantId}/sso`);

  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByRole('button', { name: 'Also sign out of Gatehouse' }).click();
  await page.waitForURL(`${baseUrl}/portal/signin`);
  await page.goto(`${baseUrl}/portal/t/${tenantId}`);
  expect(await page.locator('h1').textContent()).not.toBe('Example Inc');
  expect(blockedByCsp).toEqual([]);
}, 120_000);
