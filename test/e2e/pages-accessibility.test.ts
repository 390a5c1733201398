import { readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import path from 'node:path';
import sparticuz from '@sparticuz/chromium';
import express from 'express';
import { chromium, type Browser, type Page } from 'playwright-core';
import { assetsRouter } from '../../src/http/assets.js';
import { SHOTS } from '../support/screenshots.js';
import { sendPage, usePageBrand } from '../../src/http/pages.js';
import { emailPage } from '../../src/sso/pages.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { SamlTestIdp } from '../support/saml-idp.js';
import { authorizeUrl, registerMainApp, startSsoServer, type SsoServer } from '../support/sso-app.js';
import { createSamlConnection, createTenantWithDomains } from '../support/sso-factories.js';

/**
 * Issue 15, "Pages people see when signing in": every browser page comes from
 * one template (src/http/pages.ts) and is accessible and strict. In a real
 * headless Chromium (playwright-core + @sparticuz/chromium, launched as
 * test/support/chromium.ts does; this test needs the raw Page for request
 * interception, CSP events and screenshots), each page — the email form, the
 * chooser, a sign-in error page, an authorize error page, `/`, a GET on an ACS
 * URL, the portal's start page — is checked with axe-core (no serious or
 * critical violation), by keyboard (Tab visits the focusable elements in
 * reading order, each with a visible focus outline), and for its
 * Content-Security-Policy: no 'unsafe-inline' in the header and no violation
 * reported by the browser, with the configured logo loaded from its origin.
 */
const AXE_SOURCE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
const CALLBACK = 'http://localhost:3000/callback';
const LOGO = 'https://cdn.logo.test/acme-cloud.svg';
const LOGO_SVG =
  '<svg xmlns="http://www.w3.org/2000/svg" width="24" height="24"><rect width="24" height="24" fill="#1f5fbf"/></svg>';
const POST_IDP = 'https://post.idp.test/sso';

let t: TestDatabase;
let gh: SsoServer;
let browser: Browser;
let clientId: string;
let multiId: string;

beforeAll(async () => {
  t = await createTestDatabase();
  gh = await startSsoServer(t, {
    env: { GATEHOUSE_APP_NAME: 'Acme Cloud', GATEHOUSE_APP_LOGO_URL: LOGO },
  });
  ({ clientId } = await registerMainApp(gh, CALLBACK));
  multiId = await createTenantWithDomains(t.db, 'multi', ['multi.test']);
  await t.db.withPlatform((em) =>
    em.query(`UPDATE tenants SET name = 'Multi <Corp>' WHERE id = $1`, [multiId]),
  );
  await createSamlConnection(t.db, multiId, await SamlTestIdp.create('x'), { name: 'Okta (employees)' });
  await createSamlConnection(t.db, multiId, await SamlTestIdp.create('y'), { name: 'Entra (contractors)' });
  // An IdP that takes AuthnRequests by HTTP-POST only: the page's form is submitted by the shared script.
  const postId = await createTenantWithDomains(t.db, 'posting', ['posting.test']);
  const posting = await createSamlConnection(t.db, postId, await SamlTestIdp.create('post'));
  await t.db.withTenant(postId, (em) =>
    em.query(`UPDATE connections SET saml_sso_binding = $1, saml_sso_url = $2 WHERE id = $3`, [
      'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST',
      POST_IDP,
      posting.id,
    ]),
  );
});

afterAll(async () => {
  await browser?.close();
  await gh?.close();
  await t?.close();
});

/**
 * A browser per page: with sparticuz's --single-process, closing a context
 * ends the browser (test/e2e/portal.test.ts relaunches for the same reason).
 */
async function launch(): Promise<Browser> {
  await browser?.close();
  browser = await chromium.launch({
    executablePath: await sparticuz.executablePath(),
    args: sparticuz.args,
    headless: true,
  });
  return browser;
}

interface Opened {
  page: Page;
  status: number;
  html: string;
  csp: string;
  cspViolations: string[];
  logoRequests: string[];
}

/** Opens `url` in a fresh context; records CSP violations (console and the DOM event) and logo fetches. */
async function open(url: string): Promise<Opened> {
  const context = await (await launch()).newContext({ viewport: { width: 1000, height: 760 } });
  const page = await context.newPage();
  const cspViolations: string[] = [];
  const logoRequests: string[] = [];
  page.on('console', (m) => {
    if (/Content Security Policy/i.test(m.text())) cspViolations.push(m.text());
  });
  // Registered before any page script runs; reports what the policy blocked.
  await page.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) =>
      console.error(`Content Security Policy violation: ${e.violatedDirective} ${e.blockedURI}`),
    );
  });
  await page.route(LOGO, async (route) => {
    logoRequests.push(route.request().url());
    await route.fulfill({ status: 200, contentType: 'image/svg+xml', body: LOGO_SVG });
  });
  const res = await page.goto(url, { waitUntil: 'load' });
  if (!res) throw new Error(`no response for ${url}`);
  return {
    page,
    status: res.status(),
    html: await res.text(),
    csp: (await res.allHeaders())['content-security-policy'] ?? '',
    cspViolations,
    logoRequests,
  };
}

interface AxeResult {
  violations: { id: string; impact: string | null; help: string; nodes: { target: unknown }[] }[];
}

async function seriousViolations(page: Page): Promise<string[]> {
  await page.evaluate(AXE_SOURCE);
  const result = await page.evaluate<AxeResult>('axe.run(document)');
  return result.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id} (${v.impact}): ${v.help} at ${JSON.stringify(v.nodes.map((n) => n.target))}`);
}

/** Tabs through the page: the focus visits the focusable elements in document order, each with an outline. */
async function tabOrder(
  page: Page,
): Promise<{ visited: string[]; expected: string[]; unoutlined: string[] }> {
  const describe = `(e) => e ? (e.id || e.getAttribute('name') || e.textContent.trim()).slice(0, 40) : ''`;
  const expected = await page.evaluate<string[]>(
    `[...document.querySelectorAll('a[href], button, input:not([type=hidden]), select, textarea')].filter((e) => !e.disabled).map(${describe})`,
  );
  const visited: string[] = [];
  const unoutlined: string[] = [];
  for (let i = 0; i < expected.length; i++) {
    await page.keyboard.press('Tab');
    const [name, outline] = await page.evaluate<[string, string]>(
      `(() => { const e = document.activeElement; return [(${describe})(e), getComputedStyle(e).outlineStyle]; })()`,
    );
    visited.push(name);
    if (outline === 'none') unoutlined.push(name);
  }
  return { visited, expected, unoutlined };
}

/** What every page shares: the template, one h1, lang, main, the app name and logo, a strict CSP kept. */
async function expectSharedTemplate(o: Opened): Promise<void> {
  const { page } = o;
  expect(o.csp).toContain("frame-ancestors 'none'");
  expect(o.csp).toContain("default-src 'none'");
  expect(o.csp).toContain("img-src 'self' https://cdn.logo.test;");
  expect(o.csp).not.toMatch(/unsafe-inline|unsafe-eval/);
  expect(await page.locator('html').getAttribute('lang')).toBe('en');
  expect(await page.locator('main').count()).toBe(1);
  expect(await page.locator('h1').count()).toBe(1);
  // The page as served (the browser's autofill later adds empty style attributes of its own).
  expect(o.html).not.toMatch(/<style|\sstyle=|<script>|<script(?![^>]*\ssrc=)[^>]*>/);
  expect(await page.locator('header .brand').innerText()).toMatch(/^Acme Cloud/);
  expect(await page.locator('header .brand img').evaluate((img: HTMLImageElement) => img.naturalWidth)).toBe(
    24,
  );
  expect(o.logoRequests).toEqual([LOGO]);
  expect(await seriousViolations(page)).toEqual([]);
  const order = await tabOrder(page);
  expect(order.visited).toEqual(order.expected);
  expect(order.unoutlined).toEqual([]);
  expect(o.cspViolations).toEqual([]);
}

describe('every browser page, in a real browser', () => {
  it('shows the email form with a labelled field, accessible, strict, and in the screenshot for the docs', async () => {
    const o = await open(authorizeUrl(gh, clientId, CALLBACK, {}));
    expect(o.status).toBe(200);
    await o.page.getByLabel('Work email').waitFor();
    await o.page.screenshot({
      path: path.join(SHOTS, 'sign-in-page.png'),
      clip: { x: 0, y: 0, width: 1000, height: 380 },
    });
    await expectSharedTemplate(o);
  });

  it("shows the chooser with the tenant's display name, escaped", async () => {
    const o = await open(authorizeUrl(gh, clientId, CALLBACK, { login_hint: 'carol@multi.test' }));
    expect(o.status).toBe(200);
    expect(await o.page.locator('main').innerText()).toContain('Sign in to Multi <Corp> with:');
    expect(await o.page.getByRole('link', { name: 'Entra (contractors)' }).count()).toBe(1);
    await expectSharedTemplate(o);
  });

  it('shows a sign-in error page with its reason code and support reference', async () => {
    const o = await open(`${gh.baseUrl}/login?login=${encodeURIComponent('not a login id!')}`);
    expect(o.status).toBe(400);
    const text = await o.page.locator('main').innerText();
    expect(text).toContain('login_request_invalid');
    expect(text).toMatch(/Support reference: [0-9a-f-]{36}/);
    await expectSharedTemplate(o);
  });

  it('shows an authorize error page (unknown client) in the same template', async () => {
    const o = await open(authorizeUrl(gh, '00000000-0000-4000-8000-000000000000', CALLBACK, {}));
    expect(o.status).toBe(400);
    expect(await o.page.locator('main').innerText()).toContain('unknown_client');
    await expectSharedTemplate(o);
  });

  it('shows a home page at / with the portal sign-in and the discovery URL', async () => {
    const o = await open(`${gh.baseUrl}/`);
    expect(o.status).toBe(200);
    expect(await o.page.getByRole('link', { name: 'Sign in to the admin portal' }).getAttribute('href')).toBe(
      '/portal/signin',
    );
    expect(await o.page.locator('main').innerText()).toContain(
      `${gh.baseUrl}/.well-known/openid-configuration`,
    );
    await expectSharedTemplate(o);
  });

  it('answers a GET on an ACS URL with 405, Allow: POST and a page saying where to start', async () => {
    const o = await open(`${gh.baseUrl}/saml/00000000-0000-4000-8000-000000000000/acs`);
    expect(o.status).toBe(405);
    expect(await o.page.locator('main').innerText()).toContain('start from your application');
    await expectSharedTemplate(o);
  });

  it("shows the portal's start page in the same template", async () => {
    const o = await open(`${gh.baseUrl}/portal/start?token=gh_setup_${'a'.repeat(43)}`);
    expect(o.status).toBe(200);
    await expectSharedTemplate(o);
  });

  it("ties the email form's error text to its field (aria-describedby, aria-invalid)", async () => {
    // No flow renders the notice today; the page function does, served by the real renderer and assets.
    const app = express();
    app.use(usePageBrand({ appName: 'Acme Cloud', logoUrl: LOGO, basePath: '' }), assetsRouter());
    app.get('/', (_req, res) =>
      sendPage(res, {
        status: 400,
        title: 'Sign in',
        body: emailPage({ baseUrl: '', loginId: 'l1', email: 'not-an-email', notice: 'Enter a work email.' }),
        allowHttpForms: false,
      }),
    );
    const server = await new Promise<Server>((resolve) => {
      const s = app.listen(0, '127.0.0.1', () => resolve(s));
    });
    try {
      const o = await open(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
      const field = o.page.getByLabel('Work email');
      expect(await field.getAttribute('aria-invalid')).toBe('true');
      const describedBy = (await field.getAttribute('aria-describedby')) ?? '';
      expect(await o.page.locator(`#${describedBy}`).innerText()).toBe('Enter a work email.');
      await expectSharedTemplate(o);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('submits the SAML HTTP-POST binding form by the same-origin script, with no CSP violation', async () => {
    const context = await (await launch()).newContext();
    const page = await context.newPage();
    const violations: string[] = [];
    page.on('console', (m) => {
      if (/Content Security Policy/i.test(m.text())) violations.push(m.text());
    });
    const posted = new Promise<{ method: string; body: string }>((resolve) => {
      void page.route(`${POST_IDP}*`, async (route) => {
        resolve({ method: route.request().method(), body: route.request().postData() ?? '' });
        await route.fulfill({ status: 200, contentType: 'text/plain', body: 'at the IdP' });
      });
    });
    await page.goto(authorizeUrl(gh, clientId, CALLBACK, { login_hint: 'dave@posting.test' }));
    const request = await posted;
    expect(request.method).toBe('POST');
    expect(new URLSearchParams(request.body).get('SAMLRequest')).toMatch(/^[A-Za-z0-9+/=]+$/);
    expect(violations).toEqual([]);
  });

  it('catches what it looks for on a control page: an inline style the CSP blocks, an unlabelled field, no lang', async () => {
    const control = 'https://control.test/';
    const context = await (await launch()).newContext();
    const page = await context.newPage();
    const violations: string[] = [];
    page.on('console', (m) => {
      if (/Content Security Policy/i.test(m.text())) violations.push(m.text());
    });
    await page.route(control, (route) =>
      route.fulfill({
        status: 200,
        headers: {
          'Content-Type': 'text/html',
          'Content-Security-Policy': "default-src 'none'; style-src 'self'",
        },
        body: '<!doctype html><html><head><title>x</title><style>p{color:#ccc}</style></head><body><main><h1>x</h1><input type="text"></main></body></html>',
      }),
    );
    await page.goto(control, { waitUntil: 'load' });
    expect(violations.length).toBeGreaterThan(0);
    const found = (await seriousViolations(page)).map((v) => v.split(' ')[0]);
    expect(found).toEqual(expect.arrayContaining(['html-has-lang', 'label']));
  });
});
