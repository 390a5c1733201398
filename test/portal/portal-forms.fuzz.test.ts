import fc from 'fast-check';
import request from 'supertest';
import type { AdminTestApp } from '../support/admin.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { startDnsServer, type TestDnsServer } from '../support/dns-server.js';
import { fuzzRuns, fuzzSeed, inheritedEnumerableKeys, prototypeSnapshot } from '../scim/hardening-support.js';
import {
  buildPortalApp,
  csrfChoice,
  fuzzPortalTenant,
  junkOf,
  portalSnapshot,
  STRAY_FIELDS,
  valueOf,
  withCsrf,
  type PortalBrowser,
} from './support.js';

/**
 * Issue 15: every portal form under generated input — known field names and
 * stray ones (prototype keys included), strings with NUL, lone surrogates,
 * 4-byte characters and 10,000 characters, fields sent twice (arrays), with
 * the right CSRF token, a wrong one or none. Invariants per request: never a
 * 5xx; no built-in prototype gains a key; on any 4xx the tenant's rows (and
 * its audit trail) are exactly as before. No network: metadata URLs and OIDC
 * issuers are never generated as fetchable URLs, and DNS is a loopback server.
 */
const RUNS = fuzzRuns(60);
const SEED = fuzzSeed(0x9047a1);

let t: TestDatabase;
let a: AdminTestApp;
let dns: TestDnsServer;
let tenantId: string;
let browser: PortalBrowser;
const ids = { connectionId: '', domainId: '' };

beforeAll(async () => {
  t = await createTestDatabase();
  dns = await startDnsServer();
  a = buildPortalApp(t, { GATEHOUSE_DNS_SERVERS: dns.address });
  let connectionId: string;
  ({ tenantId, browser, connectionId } = await fuzzPortalTenant(a, ['sso', 'dsync', 'domain_verification']));
  ids.connectionId = connectionId;
  ids.domainId = String(
    (await a.op().post(`/admin/v1/tenants/${tenantId}/domains`).send({ domain: 'fuzz.example' })).body.id,
  );
});
afterAll(async () => {
  await dns.close();
  await t.close();
});

const notAUrl = fc.string({ maxLength: 40 }).filter((s) => !/^\s*https?:/i.test(s));
const junk = junkOf('okta', 'oidc', 'sso');
const value = valueOf(junk);

const FIELDS = [
  'idp',
  'metadata_xml',
  'domain',
  'intents',
  'ttl_days',
  'client_id',
  'client_secret',
  'token',
];

const form = fc
  .record({
    known: fc.dictionary(fc.constantFrom(...FIELDS), value, { maxKeys: 4 }),
    stray: fc.dictionary(fc.constantFrom(...STRAY_FIELDS), junk, { maxKeys: 2 }),
    metadataUrl: fc.option(notAUrl, { nil: undefined }),
    issuer: fc.option(notAUrl, { nil: undefined }),
  })
  .map(({ known, stray, metadataUrl, issuer }) => ({
    ...stray,
    ...known,
    ...(metadataUrl === undefined ? {} : { metadata_url: metadataUrl }),
    ...(issuer === undefined ? {} : { issuer }),
  }));

const route = fc.constantFrom(
  () => `/portal/t/${tenantId}/sso/connections`,
  () => `/portal/t/${tenantId}/sso/oidc`,
  () => `/portal/t/${tenantId}/sso/connections/${ids.connectionId}/metadata`,
  () => `/portal/t/${tenantId}/sso/connections/${ids.connectionId}/activate`,
  () => `/portal/t/${tenantId}/domains`,
  () => `/portal/t/${tenantId}/domains/${ids.domainId}/verify`,
  () => `/portal/t/${tenantId}/dsync/tokens`,
  () => `/portal/t/${tenantId}/setup-links`,
  () => '/portal/start',
);

describe('portal form fuzzing (issue 15)', () => {
  it('never answers 5xx, never touches a prototype, and changes nothing of the tenant on 4xx', async () => {
    const prototypes = prototypeSnapshot();
    const statuses = new Map<number, number>();
    await fc.assert(
      fc.asyncProperty(route, form, csrfChoice, async (to, fields, token) => {
        const before = await portalSnapshot(t, tenantId);
        const body = withCsrf(fields, token, browser);
        const res = await request(a.app).post(to()).set('Cookie', browser.cookie).type('form').send(body);
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        expect(res.status).toBeLessThan(500);
        expect(prototypeSnapshot()).toEqual(prototypes);
        expect(inheritedEnumerableKeys()).toEqual([]);
        if (res.status >= 400) expect(await portalSnapshot(t, tenantId)).toEqual(before);
      }),
      { seed: SEED, numRuns: RUNS },
    );
    console.info(
      `portal fuzz: ${RUNS} requests, seed ${SEED}, statuses ${JSON.stringify(Object.fromEntries(statuses))}`,
    );
    // The session still works.
    expect((await browser.get(`/portal/t/${tenantId}/sso`)).status).toBe(200);
  }, 120_000);
});
