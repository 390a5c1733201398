import type { Connection } from '../../src/connections/connection.entity.js';
import { TestBrowser, type Visit } from '../support/browser.js';
import type { TestDatabase } from '../support/database.js';
import { SamlTestIdp } from '../support/saml-idp.js';
import { startSsoServer, type SsoServer } from '../support/sso-app.js';
import { createSamlConnection, createTenantWithDomains, spOf } from '../support/sso-factories.js';

/**
 * Issue 15, tenant admins: a Gatehouse node listening on loopback (real
 * createApp: portal, /oauth/*, SSO), two tenants each with its own samlify
 * SAML IdP, and a browser that signs in at /portal/signin through the
 * tenant's IdP. The portal's code exchange is a real HTTP call to the node's
 * own /oauth/token (src/portal/admin-signin-client.ts).
 */
export interface TenantWorld {
  gh: SsoServer;
  acme: { tenantId: string; idp: SamlTestIdp; connection: Connection };
  globex: { tenantId: string; idp: SamlTestIdp; connection: Connection };
  /** The operator on /admin/v1. */
  admin(method: string, path: string, body?: unknown): Promise<Response>;
  close(): Promise<void>;
}

export async function startTenantWorld(t: TestDatabase): Promise<TenantWorld> {
  const gh = await startSsoServer(t);
  const tenant = async (slug: string) => {
    const idp = await SamlTestIdp.create(slug);
    const tenantId = await createTenantWithDomains(t.db, slug, [`${slug}.test`]);
    const connection = await createSamlConnection(t.db, tenantId, idp, { defaultRole: 'member' });
    return { tenantId, idp, connection };
  };
  const admin = (method: string, path: string, body?: unknown) =>
    fetch(`${gh.address}/admin/v1${path}`, {
      method,
      headers: { authorization: `Bearer ${gh.secrets.adminToken}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  return { gh, acme: await tenant('acme'), globex: await tenant('globex'), admin, close: () => gh.close() };
}

/** Maps an IdP group to `admin` through the admin API; the mapping's id. */
export async function mapGroupToAdmin(w: TenantWorld, tenantId: string, group: string): Promise<string> {
  const res = await w.admin('POST', `/tenants/${tenantId}/role-mappings`, {
    group: { display_name: group },
    role: 'admin',
  });
  if (res.status !== 201) throw new Error(`role mapping: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { id: string }).id;
}

export interface SignIn {
  browser: TestBrowser;
  /** From /portal/signin to the IdP. */
  toIdp: Visit;
  /** The browser's last stop: the portal's tenant page URL, or a page (refusal). */
  landed: Visit;
}

/**
 * /portal/signin with the email → /oauth/authorize → the tenant's IdP, which answers for the person →
 * ACS → /portal/oidc/callback → … The chain stops at `stopAt` (default: the portal's tenant pages).
 */
export async function signInThroughIdp(
  w: TenantWorld,
  tenant: TenantWorld['acme'],
  email: string,
  groups: string[],
  stopAt = `${w.gh.baseUrl}/portal/t/`,
  browser = new TestBrowser(),
): Promise<SignIn> {
  const toIdp = await browser.visit(`${w.gh.baseUrl}/portal/signin`, tenant.idp.ssoUrl, {
    method: 'POST',
    form: { email },
  });
  if (!toIdp.redirectedTo) throw new Error(`sign-in did not reach the IdP: ${toIdp.status} ${toIdp.body}`);
  const sp = spOf(w.gh.baseUrl, tenant.connection);
  const answer = await tenant.idp.answer(toIdp.redirectedTo, sp, {
    nameId: email,
    attributes: { email, firstName: 'Ada', lastName: 'Admin', groups },
  });
  const landed = await browser.visit(sp.acsUrl, stopAt, {
    method: 'POST',
    form: { SAMLResponse: answer.samlResponse },
  });
  return { browser, toIdp, landed };
}

/** A page of the portal in this browser, followed to its end. */
export function open(w: TenantWorld, browser: TestBrowser, path: string): Promise<Visit> {
  return browser.visit(`${w.gh.baseUrl}${path}`, []);
}

/** A form POST in this browser with the CSRF token read from `csrfFrom`'s body. */
export async function post(
  w: TenantWorld,
  browser: TestBrowser,
  path: string,
  csrfFrom: Visit,
  form: Record<string, string> = {},
): Promise<Visit> {
  const csrf = /name="_csrf" value="([^"]+)"/.exec(csrfFrom.body)?.[1] ?? '';
  return browser.visit(`${w.gh.baseUrl}${path}`, [], { method: 'POST', form: { ...form, _csrf: csrf } });
}

/** Tenant-admin portal sessions in the platform table. */
export async function tenantAdminSessions(t: TestDatabase): Promise<number> {
  const [row] = await t.db.withPlatform((em) =>
    em.query<{ n: number }[]>(`SELECT count(*)::int AS n FROM portal_sessions WHERE kind = 'tenant_admin'`),
  );
  return row?.n ?? 0;
}
