import express from 'express';
import fc from 'fast-check';
import request from 'supertest';
import { ConfigError, parseConfig } from '../../src/config/config.js';
import { brandFromConfig, escapeHtml, sendPage, usePageBrand } from '../../src/http/pages.js';
import { buildTestApp, type TestApp } from '../support/app.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { fuzzRuns, fuzzSeed } from '../scim/hardening-support.js';

/**
 * Issue 15's new inputs to the browser pages, under generated values:
 * GATEHOUSE_APP_NAME and GATEHOUSE_APP_LOGO_URL (rendered in every page's
 * header, the logo's origin in the CSP), and the Accept header and path of
 * `/` and of a GET on an ACS URL. Invariants: a setting is either refused by
 * the config (ConfigError) or rendered escaped with the CSP's directives
 * unchanged and img-src naming at most the logo's https origin; the two
 * routes never answer 5xx, answer only their documented statuses, and read
 * or write no row.
 */
const RUNS = fuzzRuns(60);
const SEED = fuzzSeed(0x15a9e5);
const DIRECTIVES = ['default-src', 'style-src', 'img-src', 'form-action', 'frame-ancestors', 'base-uri'];

let t: TestDatabase;
let a: TestApp;

beforeAll(async () => {
  t = await createTestDatabase();
  a = buildTestApp(t);
});
afterAll(async () => {
  await t.close();
});

const tricky = fc.constantFrom(
  '<script>alert(1)</script>',
  '"><img src=x onerror=alert(1)>',
  "Acme's & Co",
  '\u0000',
  '\u202eevil',
  'x'.repeat(81),
  '😀'.repeat(30),
  ' ',
);
const appName = fc.oneof(fc.string({ maxLength: 90 }), fc.string({ unit: 'binary', maxLength: 40 }), tricky);
const logoUrl = fc.oneof(
  fc.webUrl({ validSchemes: ['https'] }),
  fc.webUrl({ validSchemes: ['http'] }),
  fc.constantFrom(
    '/logo.svg',
    '//evil.test/logo.svg',
    '/\\evil.test',
    'https://cdn.test/a.svg;script-src *',
    "https://cdn.test/a.svg' 'unsafe-inline",
    'javascript:alert(1)',
    'data:image/svg+xml,<svg/>',
    'https://user:pw@cdn.test/logo.png',
    '/a" onerror="x',
  ),
  fc.string({ maxLength: 60 }),
);

async function render(env: Record<string, string>): Promise<request.Response | 'refused'> {
  let config;
  try {
    config = parseConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) return 'refused';
    throw error;
  }
  const app = express();
  app.use(usePageBrand(brandFromConfig(config)));
  app.get('/', (_req, res) => sendPage(res, { status: 200, title: 'T', body: '<h1>T</h1>' }));
  return request(app).get('/');
}

it('renders any app name and logo the config accepts escaped, and keeps the CSP to its fixed directives', async () => {
  await fc.assert(
    fc.asyncProperty(appName, fc.option(logoUrl, { nil: undefined }), async (name, logo) => {
      const res = await render({
        GATEHOUSE_APP_NAME: name,
        ...(logo === undefined ? {} : { GATEHOUSE_APP_LOGO_URL: logo }),
      });
      if (res === 'refused') return;
      expect(res.status).toBe(200);
      const shownName = name === '' ? 'Gatehouse' : name;
      const header = /<header>([\s\S]*)<\/header>/.exec(res.text)?.[1] ?? '';
      expect(header).toContain(`${escapeHtml(shownName)}</a>`);
      // Only our own tags in the header: the brand span, its link and the logo.
      expect(header.match(/<[a-z/][^>]*>/g)?.map((tag) => /^<\/?([a-z]+)/.exec(tag)?.[1])).toEqual(
        logo === undefined || logo === '' ? ['span', 'a', 'a', 'span'] : ['span', 'a', 'img', 'a', 'span'],
      );
      const csp = String(res.headers['content-security-policy']);
      const directives = csp.split('; ').map((d) => d.split(' '));
      expect(directives.map((d) => d[0])).toEqual(DIRECTIVES);
      const imgSrc = directives.find((d) => d[0] === 'img-src')?.slice(1) ?? [];
      expect(imgSrc[0]).toBe("'self'");
      if (logo?.startsWith('https://')) expect(imgSrc.slice(1)).toEqual([new URL(logo).origin]);
      else expect(imgSrc).toHaveLength(1);
      expect(csp).not.toMatch(/unsafe|\*/);
    }),
    { numRuns: RUNS * 3, seed: SEED },
  );
});

const acceptHeader = fc.oneof(
  fc.constantFrom(
    'text/html',
    'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8',
    'application/json',
    '*/*',
    'text/html;q=0, application/json',
    'application/json;q=0.1, text/html;q=0.2',
    ';;;,,,',
    'text/*',
  ),
  fc.stringMatching(/^[\x20-\x7e]{0,80}$/),
);
const pathSegment = fc.oneof(
  fc.uuid(),
  fc.string({ minLength: 1, maxLength: 60 }),
  fc.constantFrom('__proto__', 'constructor', '..', '%00', 'x'.repeat(2000)),
);

async function footprint(): Promise<string> {
  const rows = await t.asOwner<{ n: string }>(
    `SELECT (SELECT count(*) FROM tenants) || '/' || (SELECT count(*) FROM audit_events) || '/' ||
            (SELECT count(*) FROM authorization_requests) AS n`,
  );
  return rows[0]?.n ?? '';
}

it('answers / and a GET on an ACS URL with only their documented statuses, never 5xx, and touches no row', async () => {
  const before = await footprint();
  const acsPage = (await request(a.app).get('/saml/x/acs').set('Accept', 'text/html')).text;
  expect(acsPage).toContain('<h1>');
  await fc.assert(
    fc.asyncProperty(acceptHeader, pathSegment, async (accept, segment) => {
      const acs = await request(a.app)
        .get(`/saml/${encodeURIComponent(segment)}/acs`)
        .set('Accept', accept);
      expect(acs.status).toBe(405);
      expect(acs.headers.allow).toBe('POST');
      expect(String(acs.headers['content-type'])).toMatch(/^(text\/html|application\/json); charset=utf-8$/);
      if (acs.headers['content-type']?.startsWith('text/html')) {
        expect(acs.headers['content-security-policy']).toContain("frame-ancestors 'none'");
        // The same page whatever the connection id: nothing is looked up or echoed.
        expect(acs.text).toBe(acsPage);
      } else expect(acs.body).toMatchObject({ code: 'method_not_allowed' });

      const home = await request(a.app).get('/').set('Accept', accept);
      expect([200, 404]).toContain(home.status);
      if (home.status === 200) expect(home.headers['content-type']).toBe('text/html; charset=utf-8');
      else expect(home.body).toMatchObject({ code: 'not_found' });
    }),
    { numRuns: RUNS, seed: SEED },
  );
  expect(await footprint()).toBe(before);
});

it.each([
  ['http://cdn.test/logo.png', false],
  ['//evil.test/logo.png', false],
  ['/\\evil.test/logo.png', false],
  ['javascript:alert(1)', false],
  ['data:image/svg+xml,<svg/>', false],
  ['https://user:pw@cdn.test/logo.png', false],
  ['/a" onerror="x', false],
  ['https://cdn.test/logo.png', true],
  ['/static/logo.svg', true],
])('GATEHOUSE_APP_LOGO_URL=%s is accepted: %s', (logo, accepted) => {
  const parse = () => parseConfig({ GATEHOUSE_APP_LOGO_URL: logo });
  if (accepted) expect(parse().pages.logoUrl).toBe(logo);
  else expect(parse).toThrow(ConfigError);
});
