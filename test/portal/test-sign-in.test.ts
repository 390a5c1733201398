import type request from 'supertest';
import type { AdminTestApp } from '../support/admin.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { SamlTestIdp } from '../support/saml-idp.js';
import { buildPortalApp, runTestSignIn, samlPortalTenant, type PortalBrowser } from './support.js';

/**
 * Issue 15: "Test sign-in" runs a real SP-initiated SAML login (src/sso, the
 * same flow the main app's logins take) against a samlify IdP and ends on the
 * portal's result page: the profile and the roles, or the step that failed,
 * its reason code and a hint. Cookies are carried by hand (https base URL:
 * __Host- cookies that supertest's jar would not send over plain http).
 */
let t: TestDatabase;
let a: AdminTestApp;
let idp: SamlTestIdp;
let tenantId: string;
let connectionId: string;
let it15: PortalBrowser;

beforeAll(async () => {
  t = await createTestDatabase();
  a = buildPortalApp(t);
  ({ idp, tenantId, connectionId, browser: it15 } = await samlPortalTenant(t, a, { idpName: 'acme' }));
});
afterAll(() => t.close());

/** Starts the test from the portal and posts the IdP's answer (made by `by`) to the ACS; the final page. */
async function testSignIn(by: SamlTestIdp): Promise<request.Response> {
  const page = await it15.get(`/portal/t/${tenantId}/sso/connections/${connectionId}?idp=okta`);
  expect(page.text).toContain('Run a test sign-in');
  const res = await runTestSignIn(a, it15, { tenantId, connectionId }, by);
  expect(res.status).toBe(303);
  const result = String(res.headers.location);
  expect(result).toMatch(
    new RegExp(`^/portal/t/${tenantId}/sso/connections/${connectionId}/test-result\\?r=`),
  );
  return it15.get(result);
}

it('shows the profile received, the groups and the roles a successful test sign-in would grant', async () => {
  const page = await testSignIn(idp);
  expect(page.status).toBe(200);
  expect(page.text).toContain('Test sign-in succeeded');
  expect(page.text).toContain('ada@acme.example');
  expect(page.text).toContain('Lovelace');
  expect(page.text).toMatch(/<p id="test-roles">\s*[^<]*engineer/);
  expect(page.text).not.toContain('class="bad"');
});

it('names the failed step, the reason code and a hint when the IdP signs with a certificate we do not have', async () => {
  const page = await testSignIn(await SamlTestIdp.rotated(idp));
  expect(page.status).toBe(200);
  expect(page.text).toContain('Test sign-in failed');
  expect(page.text).toContain('<code id="reason-code">saml_signature_invalid</code>');
  expect(page.text).toContain('certificate we don’t have');
  // The trace: what ran before the signature check passed, the signature failed, the rest did not run.
  expect(page.text).toMatch(/Answer received<\/td>\s*<td class="ok">\s*passed/);
  expect(page.text).toMatch(/Signature<\/td>\s*<td class="bad">\s*failed/);
  expect(page.text).toMatch(/Person provisioned<\/td>\s*<td class="muted">\s*not run/);
});

it('shows no result sealed for another connection, or tampered with', async () => {
  const res = await it15.get(
    `/portal/t/${tenantId}/sso/connections/${connectionId}/test-result?r=v1.AAAA.BBBB.CCCC`,
  );
  expect(res.status).toBe(200);
  expect(res.text).toContain('handoff_invalid');
  expect(res.text).not.toContain('ada@acme.example');
});
