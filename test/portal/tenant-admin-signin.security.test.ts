import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { tenantSnapshot } from '../support/tenant-admin-token.js';
import {
  mapGroupToAdmin,
  open,
  post,
  signInThroughIdp,
  startTenantWorld,
  tenantAdminSessions,
  type TenantWorld,
} from './tenant-admin-signin.support.js';

/**
 * Issue 15: "a tenant admin of A cannot see B". A's admin signs in through
 * A's own SAML IdP (no setup link, no operator), then addresses tenant B's
 * pages and ids: every one answers 404, as an unknown tenant would (the
 * same portalTenant check the setup-link sessions meet), and nothing of B is
 * read into a page or written. At the callback, tenant B's admin's code in
 * A's browser opens nothing (PKCE binds a code to the browser that asked).
 */
let t: TestDatabase;
let w: TenantWorld;

beforeAll(async () => {
  t = await createTestDatabase();
  w = await startTenantWorld(t);
  await mapGroupToAdmin(w, w.acme.tenantId, 'Acme Admins');
  await mapGroupToAdmin(w, w.globex.tenantId, 'Globex Admins');
});
afterAll(async () => {
  await w?.close();
  await t?.close();
});

it("refuses tenant A's admin, signed in through A's own IdP, on tenant B's portal pages with 404, and changes nothing of B", async () => {
  const A = w.acme.tenantId;
  const B = w.globex.tenantId;
  const { browser } = await signInThroughIdp(w, w.acme, 'ada@acme.test', ['Acme Admins']);
  const home = await open(w, browser, `/portal/t/${A}`);
  expect(home.status).toBe(200);
  const before = await tenantSnapshot(t, B);

  for (const path of [
    `/portal/t/${B}`,
    `/portal/t/${B}/sso`,
    `/portal/t/${B}/sso/oidc`,
    `/portal/t/${B}/sso/connections/${w.globex.connection.id}`,
    `/portal/t/${B}/sso/connections/${w.globex.connection.id}/test`,
    `/portal/t/${B}/domains`,
    `/portal/t/${B}/dsync`,
    // B's connection under A's own path.
    `/portal/t/${A}/sso/connections/${w.globex.connection.id}`,
  ]) {
    const page = await open(w, browser, path);
    expect({ path, status: page.status }).toEqual({ path, status: 404 });
    expect(page.body).not.toContain('globex');
  }
  for (const [path, form] of [
    [`/portal/t/${B}/domains`, { domain: 'taken-over.globex.test' }],
    [`/portal/t/${B}/dsync/tokens`, { description: 'stolen' }],
    [`/portal/t/${B}/sso/connections`, { idp: 'okta' }],
    [`/portal/t/${B}/setup-links`, { intents: 'sso' }],
  ] as const) {
    const res = await post(w, browser, path, home, form);
    expect({ path, status: res.status }).toEqual({ path, status: 404 });
  }
  // The tenant list is the operator's: A's admin is sent to A.
  const root = await browser.visit(`${w.gh.baseUrl}/portal`, `${w.gh.baseUrl}/portal/t/`);
  expect(root.redirectedTo).toBe(`${w.gh.baseUrl}/portal/t/${A}`);
  expect(await tenantSnapshot(t, B)).toEqual(before);
});

it("refuses tenant B's admin's code at the callback of a sign-in A's browser started, opening no session", async () => {
  const sessions = await tenantAdminSessions(t);
  const callback = `${w.gh.baseUrl}/portal/oidc/callback`;
  const globex = await signInThroughIdp(w, w.globex, 'gus@globex.test', ['Globex Admins'], callback);
  const acme = await signInThroughIdp(w, w.acme, 'amy@acme.test', ['Acme Admins'], callback);
  const stolen = new URL(globex.landed.redirectedTo ?? '');
  const own = new URL(acme.landed.redirectedTo ?? '');
  own.searchParams.set('code', stolen.searchParams.get('code') ?? '');
  const page = await acme.browser.visit(own.toString(), []);
  expect(page.status).toBe(400);
  expect(page.body).toContain('<code id="reason-code">code_rejected</code>');
  // B's state in A's browser is refused before any code is redeemed.
  const replayed = await acme.browser.visit(stolen.toString(), []);
  expect(replayed.status).toBe(400);
  expect(await tenantAdminSessions(t)).toBe(sessions);
  expect((await open(w, acme.browser, `/portal/t/${w.globex.tenantId}`)).status).toBe(401);
});
