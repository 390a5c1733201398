import { randomUUID } from 'node:crypto';
import type { Connection } from '../../src/connections/connection.entity.js';
import { TestBrowser } from '../support/browser.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { SamlTestIdp } from '../support/saml-idp.js';
import { authorizeUrl, registerMainApp, startSsoServer, type SsoServer } from '../support/sso-app.js';
import { addDomain, createSamlConnection, createTenantWithDomains } from '../support/sso-factories.js';

/**
 * Home realm discovery, reached the way the main app reaches it: its
 * /oauth/authorize request (src/tokens) hands the pending login to the IdP
 * side, which finds the tenant from a verified domain, the `organization` or
 * the `connection`, and never sends anyone to an IdP it cannot vouch for.
 */
const CALLBACK = 'http://localhost:3000/callback';

let t: TestDatabase;
let gh: SsoServer;
let clientId: string;
const idps: Record<string, SamlTestIdp> = {};
let acme: Connection;
let multiX: Connection;
let multiY: Connection;
let multiOff: Connection;

beforeAll(async () => {
  t = await createTestDatabase();
  gh = await startSsoServer(t);
  ({ clientId } = await registerMainApp(gh, CALLBACK));
  for (const name of ['acme', 'x', 'y', 'off', 'shadow', 'paused'])
    idps[name] = await SamlTestIdp.create(name);
  const idp = (name: string) => idps[name] as SamlTestIdp;

  const acmeId = await createTenantWithDomains(t.db, 'acme', ['acme.test']);
  acme = await createSamlConnection(t.db, acmeId, idp('acme'));
  const multiId = await createTenantWithDomains(t.db, 'multi', ['multi.test']);
  multiX = await createSamlConnection(t.db, multiId, idp('x'), { name: 'Okta (employees)' });
  multiY = await createSamlConnection(t.db, multiId, idp('y'), { name: 'Entra <contractors>' });
  multiOff = await createSamlConnection(t.db, multiId, idp('off'), {
    name: 'Retired IdP',
    status: 'inactive',
  });

  const shadowId = await createTenantWithDomains(t.db, 'shadow', []);
  await addDomain(t.db, shadowId, 'shadow.test', false);
  await createSamlConnection(t.db, shadowId, idp('shadow'));
  const pausedId = await createTenantWithDomains(t.db, 'paused', ['paused.test']);
  await createSamlConnection(t.db, pausedId, idp('paused'));
  await t.db.withPlatform((em) =>
    em.query(`UPDATE tenants SET status = 'suspended' WHERE id = $1`, [pausedId]),
  );
});
afterAll(async () => {
  await gh.close();
  await t.close();
});

const IDP_HOSTS = /\.idp\.test\//;

/** Follows the app's authorization request; stops before fetching `stopAt` (an IdP's SSO URL). */
function visit(browser: TestBrowser, hints: Record<string, string>, stopAt = 'https://never.test/') {
  return browser.visit(authorizeUrl(gh, clientId, CALLBACK, hints), stopAt);
}

const ssoOf = (name: string) => (idps[name] as SamlTestIdp).ssoUrl;

function link(body: string, text: string): string {
  const match = new RegExp(`<a href="([^"]+)">${text}</a>`).exec(body);
  if (!match?.[1]) throw new Error(`no link "${text}" in ${body}`);
  return match[1].replace(/&amp;/g, '&');
}

/** The OAuth error a refused discovery sent the app (issue 8: back to the app, not a page). */
function appError(res: { redirectedTo: string | null }): { error: string | null; reason: string | null } {
  const callback = new URL(res.redirectedTo ?? 'about:blank');
  return {
    error: callback.searchParams.get('error'),
    reason: callback.searchParams.get('error_description'),
  };
}

describe('home realm discovery', () => {
  it('asks for the work email when the app gives no hint', async () => {
    const res = await fetch(authorizeUrl(gh, clientId, CALLBACK, {}), { redirect: 'manual' });
    const body = await res.text();
    expect(res.status).toBe(200);
    expect(body).toContain(`<form method="get" action="${gh.baseUrl}/login">`);
    expect(body).toMatch(/<input type="hidden" name="login" value="[0-9a-f-]{36}">/);
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(res.headers.get('content-security-policy')).toContain("default-src 'none'");
  });

  it('sends a verified domain to its tenant’s only active connection, from the typed email too', async () => {
    const hinted = await visit(new TestBrowser(), { login_hint: 'Alice@ACME.test' }, ssoOf('acme'));
    expect(hinted.redirectedTo).toMatch(/^https:\/\/acme\.idp\.test\/sso\?SAMLRequest=/);

    const browser = new TestBrowser();
    const form = await visit(browser, {});
    const loginId = /name="login" value="([^"]+)"/.exec(form.body)?.[1] ?? '';
    const typed = await browser.visit(
      `${gh.baseUrl}/login?login=${loginId}&email=bob%40acme.test`,
      ssoOf('acme'),
    );
    expect(typed.redirectedTo).toMatch(/^https:\/\/acme\.idp\.test\/sso\?SAMLRequest=/);
  });

  it.each([
    ['an unknown domain', 'nobody@unknown.test'],
    ['a domain its tenant has not verified', 'x@shadow.test'],
    ['the domain of a suspended tenant', 'x@paused.test'],
  ])('answers %s to the app (access_denied, the reason code), never at an IdP', async (_case, email) => {
    const res = await visit(new TestBrowser(), { login_hint: email }, CALLBACK);
    expect(res.trail.some((u) => IDP_HOSTS.test(u))).toBe(false);
    expect(appError(res)).toEqual({ error: 'access_denied', reason: 'discovery_domain_unknown' });
  });

  it('answers the app with access_denied, its state and our iss (RFC 6749 §4.1.2.1, RFC 9207)', async () => {
    const browser = new TestBrowser();
    const back = await visit(browser, { login_hint: 'nobody@unknown.test', state: 'app-state-1' }, CALLBACK);
    const callback = new URL(back.redirectedTo ?? '');
    expect(callback.searchParams.get('error')).toBe('access_denied');
    expect(callback.searchParams.get('state')).toBe('app-state-1');
    expect(callback.searchParams.get('iss')).toBe(gh.baseUrl);
    expect(callback.searchParams.get('error_description')).toBe('discovery_domain_unknown');
  });

  it('offers a chooser of the tenant’s active connections and follows the choice', async () => {
    const browser = new TestBrowser();
    const res = await visit(browser, { login_hint: 'carol@multi.test' });
    expect(res.status).toBe(200);
    expect(res.body).toContain('Okta (employees)');
    expect(res.body).toContain('Entra &lt;contractors&gt;');
    expect(res.body).not.toContain('Retired IdP');
    const chosen = await browser.visit(link(res.body, 'Entra &lt;contractors&gt;'), ssoOf('y'));
    expect(chosen.redirectedTo).toMatch(/^https:\/\/y\.idp\.test\/sso\?SAMLRequest=/);
  });

  it('refuses a chooser link edited to another tenant’s or an inactive connection', async () => {
    for (const connection of [acme, multiOff]) {
      const res = await new TestBrowser().visit(
        `${gh.baseUrl}/login?login=${randomUUID()}&email=carol%40multi.test&connection=${connection.id}`,
        'https://never.test/',
      );
      expect(res.body).toContain('<code>discovery_connection_unknown</code>');
      expect(res.trail.some((u) => IDP_HOSTS.test(u))).toBe(false);
    }
  });

  it('honours the app’s organization and connection parameters', async () => {
    const byOrg = await visit(new TestBrowser(), { organization: 'multi' });
    expect(byOrg.body).toContain('Okta (employees)');
    const byConnection = await visit(new TestBrowser(), { connection: multiX.id }, ssoOf('x'));
    expect(byConnection.redirectedTo).toMatch(/^https:\/\/x\.idp\.test\/sso/);
    const unknownOrg = await visit(new TestBrowser(), { organization: 'no-such-org' }, CALLBACK);
    expect(appError(unknownOrg).reason).toBe('discovery_organization_unknown');
  });

  it('refuses hints that name different tenants instead of picking one', async () => {
    const orgAndConnection = await visit(
      new TestBrowser(),
      { organization: 'acme', connection: multiY.id },
      CALLBACK,
    );
    expect(appError(orgAndConnection).reason).toBe('discovery_conflict');
    const emailAndConnection = await visit(
      new TestBrowser(),
      { login_hint: 'a@acme.test', connection: multiY.id },
      CALLBACK,
    );
    expect(appError(emailAndConnection).reason).toBe('discovery_conflict');
    for (const res of [orgAndConnection, emailAndConnection])
      expect(res.trail.some((u) => IDP_HOSTS.test(u))).toBe(false);
  });

  it('escapes what the person typed and refuses what is not an email', async () => {
    const res = await new TestBrowser().visit(
      `${gh.baseUrl}/login?login=${randomUUID()}&email=${encodeURIComponent('"><script>alert(1)</script>')}`,
      'https://never.test/',
    );
    expect(res.status).toBe(400);
    expect(res.body).toContain('<code>discovery_email_invalid</code>');
    expect(res.body).not.toContain('<script>');
  });

  it('refuses a malformed login reference', async () => {
    const res = await fetch(`${gh.baseUrl}/login?login=${encodeURIComponent('<bad>')}&email=a%40acme.test`);
    expect(res.status).toBe(400);
    expect(await res.text()).toContain('<code>login_request_invalid</code>');
  });
});
