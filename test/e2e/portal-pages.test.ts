import path from 'node:path';
import axe from 'axe-core';
import type { Browser, Page } from 'playwright-core';
import { certificateUntil, metadataXml } from '../connections/metadata-refresh-support.js';
import { SHOTS, startPortalServer, type PortalServer } from '../portal/support.js';
import type { AdminTestApp } from '../support/admin.js';
import type { TestDatabase } from '../support/database.js';
import { createUser } from '../support/factories.js';

/**
 * Issue 15, in a real headless Chromium (playwright-core + @sparticuz/chromium,
 * as test/e2e/portal.test.ts launches it): an IT admin's setup link for
 * `sso`, `certificate_renewal` and `audit_log` opens the home page, which
 * links each section; the audit log lists events and checks its chain, the
 * certificates page flags the one expiring in 12 days, and the role preview
 * shows a person's roles with a proposed mapping. Each page passes axe-core's
 * serious and critical rules; screenshots go to docs/portal/.
 */

let t: TestDatabase;
let a: AdminTestApp;
let w: PortalServer;
let browser: Browser;
let baseUrl: string;

beforeAll(async () => {
  w = await startPortalServer({ browser: true });
  ({ t, a, baseUrl } = w);
  browser = w.browser!;
});

afterAll(async () => {
  await w?.close();
});

/** axe-core's serious and critical findings on the page (rule id: how many nodes). */
async function accessibilityProblems(page: Page): Promise<Record<string, number>> {
  await page.evaluate(axe.source);
  const results = await page.evaluate(async () => {
    const run = (window as unknown as { axe: { run: () => Promise<unknown> } }).axe.run;
    return (await run()) as { violations: { id: string; impact: string | null; nodes: unknown[] }[] };
  });
  return Object.fromEntries(
    results.violations
      .filter((v) => v.impact === 'serious' || v.impact === 'critical')
      .map((v) => [v.id, v.nodes.length]),
  );
}

async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
}

it('shows the audit log, the expiring certificate and a role preview to an IT admin, in a real browser', async () => {
  const tenantId = await a.createTenant('acme', 'Acme Corporation');
  const op = a.op();
  const soon = await certificateUntil(new Date(Date.now() + 12 * 86_400_000), 'acme.okta.test');
  await op
    .post(`/admin/v1/tenants/${tenantId}/connections`)
    .send({
      type: 'saml',
      name: 'Okta',
      default_role: 'member',
      metadata_xml: metadataXml('http://www.okta.com/exk1acme', 'https://acme.okta.test/app/sso/saml', [
        soon,
      ]),
    })
    .expect(201);
  await op
    .post(`/admin/v1/tenants/${tenantId}/role-mappings`)
    .send({ group: { display_name: 'Engineering' }, role: 'engineer' })
    .expect(201);
  await op.post(`/admin/v1/tenants/${tenantId}/domains`).send({ domain: 'acme.example' }).expect(201);
  const ada = await createUser(t.db, tenantId, 'ada@acme.example');
  await t.db.withTenant(tenantId, async (em) => {
    const [g] = await em.query<{ id: string }[]>(
      "INSERT INTO groups (tenant_id, display_name, source) VALUES ($1, 'Engineering', 'scim') RETURNING id",
      [tenantId],
    );
    await em.query('INSERT INTO group_members (tenant_id, group_id, user_id) VALUES ($1, $2, $3)', [
      tenantId,
      g?.id,
      ada,
    ]);
  });
  const link = await op
    .post(`/admin/v1/tenants/${tenantId}/setup-links`)
    .send({ intents: ['sso', 'certificate_renewal', 'audit_log'] })
    .expect(201);

  const context = await browser.newContext({ viewport: { width: 1100, height: 800 } });
  const page = await context.newPage();
  await page.goto((link.body as { url: string }).url);
  await page.getByRole('button', { name: 'Continue' }).click();
  await page.waitForURL(`${baseUrl}/portal/t/${tenantId}`);

  // Audit log: reached from the home page's link; the newest event first; the chain checks out.
  await page.getByRole('link', { name: 'Read the audit log and check its chain' }).click();
  await page.getByRole('heading', { name: 'Audit log' }).waitFor();
  const rows = page.locator('#audit-events tbody tr');
  const seqs = (await rows.locator('td:first-child').allInnerTexts()).map(Number);
  expect(seqs).toEqual([...seqs].sort((x, y) => y - x));
  expect(await rows.locator('td:nth-child(3)').allInnerTexts()).toContain('role_mapping.created');
  expect(await accessibilityProblems(page)).toEqual({});
  await shot(page, 'audit-log');
  await page.getByRole('button', { name: 'Check the chain' }).click();
  expect(await page.locator('#chain-status').innerText()).toBe('valid');

  // Certificates: the Okta certificate expiring in 12 days is flagged.
  await page.goto(`${baseUrl}/portal/t/${tenantId}`);
  await page.getByRole('link', { name: 'Renew your IdP signing certificate' }).click();
  await page.getByRole('heading', { name: 'Certificates' }).waitFor();
  expect(await page.locator('#certificates .expiry-flag').innerText()).toBe('expires soon');
  expect(await accessibilityProblems(page)).toEqual({});
  await shot(page, 'certificates');

  // Roles: Ada (Engineering) is an engineer; with On-call → responder proposed she would also be a responder.
  await page.goto(`${baseUrl}/portal/t/${tenantId}`);
  await page.getByRole('link', { name: 'Map groups to roles, and preview the effect' }).click();
  await page.getByLabel('Email or userName').fill('ada@acme.example');
  await page.getByLabel('Add: group').fill('Engineering');
  await page.getByLabel('Add: role').fill('builder');
  await page.getByRole('button', { name: 'Preview' }).click();
  await page.locator('#preview-result').waitFor();
  expect((await page.locator('#roles-now').innerText()).trim()).toBe('engineer');
  expect((await page.locator('#roles-proposed').innerText()).trim()).toBe('builder, engineer');
  expect(await accessibilityProblems(page)).toEqual({});
  await shot(page, 'roles-preview');
  await context.close();
}, 120_000);
