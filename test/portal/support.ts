import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import type { Server } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Browser } from 'playwright-core';
import fc from 'fast-check';
import request from 'supertest';
import { buildAdminTestApp, type AdminTestApp } from '../support/admin.js';
import type { DevIdp } from '../../src/cli/dev-idp.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { SamlTestIdp } from '../support/saml-idp.js';
import { addDomain, createSamlConnection, spOf } from '../support/sso-factories.js';
import { SHOTS } from '../support/screenshots.js';
import { tenantSnapshot } from '../support/tenant-admin-token.js';

/**
 * The portal as a browser drives it, over real HTTP (supertest against the
 * real app): links created through the admin API, opened with the confirm
 * page's POST, the session cookie carried by hand (the test base URL is https,
 * so the cookie is `__Host-gh_portal; Secure`, which a cookie jar would not
 * send over supertest's plain http), and the CSRF token read from a page.
 */
export interface PortalBrowser {
  cookie: string;
  get: (path: string) => request.Test;
  /** A form POST; `_csrf` is added unless `csrf: null` (or a wrong one) is given. */
  post: (path: string, form: Record<string, string | string[]>, csrf?: string | null) => request.Test;
  csrf: string;
}

export const COOKIE = '__Host-gh_portal';

export async function setupLink(
  a: AdminTestApp,
  tenantId: string,
  intents: string[],
  ttl?: number,
): Promise<{ id: string; url: string; token: string }> {
  const res = await a
    .op()
    .post(`/admin/v1/tenants/${tenantId}/setup-links`)
    .send({ intents, ...(ttl ? { ttl } : {}) });
  if (res.status !== 201) throw new Error(`setup link: ${res.status} ${res.text}`);
  const body = res.body as { id: string; url: string };
  return { ...body, token: new URL(body.url).searchParams.get('token') ?? '' };
}

export async function portalLink(a: AdminTestApp): Promise<string> {
  const res = await a.op().post('/admin/v1/portal-links').send({});
  if (res.status !== 201) throw new Error(`portal link: ${res.status} ${res.text}`);
  return new URL((res.body as { url: string }).url).searchParams.get('token') ?? '';
}

/** POST /portal/start with the token; the answer, untouched. */
export function start(a: AdminTestApp, token: string): request.Test {
  return request(a.app).post('/portal/start').type('form').send({ token });
}

/** Opens a link and reads the CSRF token from the first portal page; throws when the link is refused. */
export async function openPortal(a: AdminTestApp, token: string): Promise<PortalBrowser> {
  const res = await start(a, token);
  if (res.status !== 303) throw new Error(`start: ${res.status} ${res.text.slice(0, 300)}`);
  const setCookie = ([] as string[]).concat(res.headers['set-cookie'] ?? []);
  const cookie = setCookie.find((c) => c.startsWith(`${COOKIE}=`))?.split(';')[0] ?? '';
  const get = (path: string) => request(a.app).get(path).set('Cookie', cookie);
  const home = await get(String(res.headers.location));
  const csrf = /name="_csrf" value="([^"]+)"/.exec(home.text)?.[1] ?? '';
  const post = (path: string, form: Record<string, string | string[]>, token: string | null = csrf) =>
    request(a.app)
      .post(path)
      .set('Cookie', cookie)
      .type('form')
      .send(token === null ? form : { ...form, _csrf: token });
  return { cookie, get, post, csrf };
}

export function buildPortalApp(t: TestDatabase, env: Record<string, string> = {}): AdminTestApp {
  return buildAdminTestApp(t, env);
}

/**
 * Every row a tenant owns, as its runtime role reads it inside the tenant
 * (tenant tables force RLS, even for their owner): test/support's snapshot,
 * plus counts the portal tests name.
 */
export async function portalSnapshot(t: TestDatabase, tenantId: string): Promise<Record<string, unknown>> {
  const counts = await t.db.withTenant(tenantId, async (em) => {
    const [row] = await em.query<Record<string, number>[]>(
      `SELECT (SELECT count(*) FROM connections)::int AS connections,
              (SELECT count(*) FROM domains)::int AS domains,
              (SELECT count(*) FROM scim_tokens)::int AS scim_tokens,
              (SELECT count(*) FROM setup_links)::int AS setup_links`,
    );
    return row ?? {};
  });
  return { ...counts, rows: await tenantSnapshot(t, tenantId) };
}

/** The `name=value` pairs an answer sets (what a browser would send back). */
export const cookiesOf = (res: request.Response) =>
  ([] as string[]).concat(res.headers['set-cookie'] ?? []).map((c) => c.split(';')[0] ?? '');

/** The profile a test sign-in's IdP asserts unless a test names another. */
const ADA = {
  nameId: 'ada@acme.example',
  attributes: {
    email: 'ada@acme.example',
    firstName: 'Ada',
    lastName: 'Lovelace',
    groups: ['Engineering'],
  } as Record<string, string | string[]>,
};

/**
 * The portal's test sign-in, as a browser runs it: started from the session's `/test` link (302 to the IdP, the
 * SSO cookie set), answered by `by` (a samlify IdP), posted to the real ACS, and followed through `/sso/continue`
 * (a refusal returns there, bound to this browser's SSO cookie, like an app's login) until it leaves for the portal.
 * The last answer, whose Location the caller checks before opening the result page with `browser.get`.
 */
export async function runTestSignIn(
  a: AdminTestApp,
  browser: PortalBrowser,
  target: { tenantId: string; connectionId: string },
  by: SamlTestIdp,
  profile: { nameId: string; attributes: Record<string, string | string[]> } = ADA,
): Promise<request.Response> {
  const { tenantId, connectionId } = target;
  const started = await browser.get(`/portal/t/${tenantId}/sso/connections/${connectionId}/test`);
  expect(started.status).toBe(302);
  const sso = cookiesOf(started).find((c) => c.startsWith('__Host-gatehouse_sso=')) ?? '';
  const answer = await by.answer(
    String(started.headers.location),
    spOf('https://gatehouse.test', { id: connectionId }),
    profile,
  );
  let res = await request(a.app)
    .post(`/saml/${connectionId}/acs`)
    .set('Cookie', sso)
    .type('form')
    .send({ SAMLResponse: answer.samlResponse });
  for (
    let hops = 0;
    hops < 3 && res.status === 303 && !String(res.headers.location).includes('/portal/');
    hops++
  )
    res = await request(a.app)
      .get(String(res.headers.location).replace('https://gatehouse.test', ''))
      .set('Cookie', sso);
  return res;
}

/**
 * "A tenant with a samlify IdP and a setup-link session": tenant `acme` (Acme) with the verified domain
 * acme.example, a SAML connection to a samlify IdP named `idpName` (in `status`), the group Engineering mapped
 * to `engineer`, and an IT admin's portal session from a setup link for `intents`.
 */
export interface SamlPortalTenant {
  tenantId: string;
  idp: SamlTestIdp;
  connectionId: string;
  browser: PortalBrowser;
}

export async function samlPortalTenant(
  t: TestDatabase,
  a: AdminTestApp,
  options: { idpName: string; status?: 'draft' | 'active'; intents?: string[] },
): Promise<SamlPortalTenant> {
  const idp = await SamlTestIdp.create(options.idpName);
  const tenantId = await a.createTenant('acme', 'Acme');
  await addDomain(t.db, tenantId, 'acme.example', true);
  const connectionId = (
    await createSamlConnection(t.db, tenantId, idp, options.status ? { status: options.status } : {})
  ).id;
  await a
    .op()
    .post(`/admin/v1/tenants/${tenantId}/role-mappings`)
    .send({ group: { display_name: 'Engineering' }, role: 'engineer' });
  const browser = await openPortal(a, (await setupLink(a, tenantId, options.intents ?? ['sso'])).token);
  return { tenantId, idp, connectionId, browser };
}

// ------------------------------------------------------------ the portal's form fuzzers (*-forms.fuzz.test.ts)

export const OKTA_METADATA = readFileSync(
  path.join(import.meta.dirname, '../../fixtures/saml/metadata/okta.xml'),
  'utf8',
);

/**
 * The fuzzers' tenant: `fuzz` with an IT admin's session for `intents` and a SAML connection (Okta's metadata)
 * created by the operator.
 */
export async function fuzzPortalTenant(
  a: AdminTestApp,
  intents: string[],
): Promise<{ tenantId: string; browser: PortalBrowser; connectionId: string }> {
  const tenantId = await a.createTenant('fuzz', 'Fuzz');
  const browser = await openPortal(a, (await setupLink(a, tenantId, intents)).token);
  const connectionId = String(
    (
      await a
        .op()
        .post(`/admin/v1/tenants/${tenantId}/connections`)
        .send({ type: 'saml', name: 'IdP', metadata_xml: OKTA_METADATA })
    ).body.id,
  );
  return { tenantId, browser, connectionId };
}

/** Field values: short, binary, NUL, lone surrogates, 4-byte and 10,000 characters, markup, metadata, plus `extra`. */
export const junkOf = (...extra: string[]) =>
  fc.oneof(
    fc.string({ maxLength: 30 }),
    fc.string({ unit: 'binary', maxLength: 30 }),
    fc.constantFrom(
      '',
      ' ',
      '\u0000',
      '\ud800',
      '😀'.repeat(50),
      'x'.repeat(10_000),
      '<a/>',
      OKTA_METADATA,
      ...extra,
    ),
  );

/** A field sent once, or twice or three times (an array, as `a=1&a=2` parses). */
export const valueOf = (junk: fc.Arbitrary<string>) =>
  fc.oneof(
    { weight: 4, arbitrary: junk },
    { weight: 1, arbitrary: fc.array(junk, { minLength: 2, maxLength: 3 }) },
  );

/** Field names no form has: prototype keys and names a bracket-parsing body parser would nest. */
export const STRAY_FIELDS = [
  '__proto__',
  'constructor',
  'prototype',
  'toString',
  'hasOwnProperty',
  '_csrf[]',
  'a[b]',
];

/** The session's CSRF token (three times in five), a wrong one or none. */
export const csrfChoice = fc.constantFrom<'right' | 'wrong' | 'none'>(
  'right',
  'right',
  'right',
  'wrong',
  'none',
);

export const withCsrf = <T extends object>(
  form: T,
  token: 'right' | 'wrong' | 'none',
  browser: PortalBrowser,
) => ({
  ...form,
  ...(token === 'none' ? {} : { _csrf: token === 'right' ? browser.csrf : 'x'.repeat(43) }),
});

// ------------------------------------------------------------ the portal's browser tests (Chromium)

/** Where the browser tests write their screenshots (docs/portal with `npm run docs:screenshots`). */
export { SHOTS };

/**
 * A Gatehouse app listening on http://localhost:<free port> (a secure context, so the portal's and the SSO
 * cookies work as under https) over its own test database, for a real headless Chromium (playwright-core +
 * @sparticuz/chromium, as test/support/chromium.ts launches it; these tests also need file upload and
 * screenshots, which that wrapper does not expose); optionally the dev IdP of src/cli (samlify and
 * oidc-provider on loopback, a real peer) with a temporary folder of its own.
 */
export interface PortalServer {
  t: TestDatabase;
  a: AdminTestApp;
  baseUrl: string;
  /** The dev IdP and its folder, when asked for. */
  devIdp: DevIdp | null;
  work: string | null;
  /** The browser launched last (null before the first launch). */
  readonly browser: Browser | null;
  /** Closes the previous browser, if any, and launches a new one. */
  launch(): Promise<Browser>;
  close(): Promise<void>;
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const { port } = s.address() as { port: number };
  await new Promise((resolve) => s.close(resolve));
  return port;
}

export async function startPortalServer(
  options: { env?: Record<string, string>; devIdpFolder?: string; browser?: boolean } = {},
): Promise<PortalServer> {
  const t = await createTestDatabase();
  const port = await freePort();
  const baseUrl = `http://localhost:${port}`;
  const a = buildAdminTestApp(t, { GATEHOUSE_BASE_URL: baseUrl, ...options.env });
  const server = await new Promise<Server>((resolve) => {
    const s = a.app.listen(port, '127.0.0.1', () => resolve(s));
  });
  await mkdir(SHOTS, { recursive: true });
  let work: string | null = null;
  let devIdp: DevIdp | null = null;
  if (options.devIdpFolder) {
    work = await mkdtemp(path.join(tmpdir(), options.devIdpFolder));
    // Loaded here: the supertest-only portal tests that share this file need neither it nor Chromium.
    const { startDevIdp } = await import('../../src/cli/dev-idp.js');
    devIdp = await startDevIdp({ host: '127.0.0.1', port: 0, dir: work });
  }
  let browser: Browser | null = null;
  const launch = async () => {
    await browser?.close();
    const [{ chromium }, { default: sparticuz }] = await Promise.all([
      import('playwright-core'),
      import('@sparticuz/chromium'),
    ]);
    browser = await chromium.launch({
      executablePath: await sparticuz.executablePath(),
      args: sparticuz.args,
      headless: true,
    });
    return browser;
  };
  if (options.browser) await launch();
  return {
    t,
    a,
    baseUrl,
    devIdp,
    work,
    get browser() {
      return browser;
    },
    launch,
    close: async () => {
      await devIdp?.close();
      if (work) await rm(work, { recursive: true, force: true });
      await browser?.close();
      await new Promise((resolve) => server.close(resolve));
      await t.close();
    },
  };
}

/**
 * The dev IdP's tenant: `example` (Example Inc) whose people are at example.test (RFC 6761), the domain verified
 * by the operator (no DNS), and the dev IdP's group Admins mapped to `admin`. Its id.
 */
export async function devIdpTenant(a: AdminTestApp): Promise<string> {
  const tenantId = await a.createTenant('example', 'Example Inc');
  const domain = await a.op().post(`/admin/v1/tenants/${tenantId}/domains`).send({ domain: 'example.test' });
  await a
    .op()
    .post(`/admin/v1/tenants/${tenantId}/domains/${domain.body.id}/verify`)
    .send({ method: 'manual', reason: 'test' });
  await a
    .op()
    .post(`/admin/v1/tenants/${tenantId}/role-mappings`)
    .send({ group: { display_name: 'Admins' }, role: 'admin' });
  return tenantId;
}
