import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { AdminTestApp } from '../support/admin.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { mountedRoutes } from '../security/cross-tenant-registry.js';
import { buildPortalApp, openPortal, portalSnapshot, setupLink, type PortalBrowser } from './support.js';

/**
 * Issue 15: a setup link of tenant A, with every intent, drives every portal
 * route of tenant B (and B's ids under A's own path). Each answers 404, as for
 * a tenant that does not exist, names nothing of B, and B's rows are the same
 * afterwards (portal/forms.ts portalTenant; the services' RLS behind it).
 */
const OKTA_METADATA = readFileSync(
  path.join(import.meta.dirname, '../../fixtures/saml/metadata/okta.xml'),
  'utf8',
);
const EVERY_INTENT = ['sso', 'dsync', 'domain_verification', 'certificate_renewal', 'audit_log'];

let t: TestDatabase;
let a: AdminTestApp;
let acme: string;
let globex: string;
let acmeAdmin: PortalBrowser;
const b = { connectionId: '', domainId: '', linkId: '' };

beforeAll(async () => {
  t = await createTestDatabase();
  a = buildPortalApp(t);
  acme = await a.createTenant('acme', 'Acme');
  globex = await a.createTenant('globex', 'Globex Secret Name');
  const op = a.op();
  b.connectionId = String(
    (
      await op
        .post(`/admin/v1/tenants/${globex}/connections`)
        .send({ type: 'saml', name: 'Globex IdP', metadata_xml: OKTA_METADATA })
    ).body.id,
  );
  b.domainId = String(
    (await op.post(`/admin/v1/tenants/${globex}/domains`).send({ domain: 'globex.example' })).body.id,
  );
  b.linkId = (await setupLink(a, globex, ['sso'])).id;
  acmeAdmin = await openPortal(a, (await setupLink(a, acme, EVERY_INTENT)).token);
});
afterAll(() => t.close());

type Call = ['GET' | 'POST', string, Record<string, string>?];

function portalCalls(tenantId: string): Call[] {
  const base = `/portal/t/${tenantId}`;
  const conn = `${base}/sso/connections/${b.connectionId}`;
  return [
    ['GET', base],
    ['POST', `${base}/setup-links`, { intents: 'sso' }],
    ['POST', `${base}/setup-links/${b.linkId}/revoke`, {}],
    ['GET', `${base}/sso`],
    ['POST', `${base}/sso/connections`, { idp: 'okta' }],
    ['GET', `${base}/sso/oidc`],
    ['POST', `${base}/sso/oidc`, { issuer: 'https://idp.pwned.test', client_id: 'x', client_secret: 'y' }],
    ['GET', conn],
    ['POST', `${conn}/metadata`, { metadata_xml: OKTA_METADATA }],
    ['POST', `${conn}/activate`, {}],
    ['GET', `${conn}/test`],
    ['GET', `${conn}/test-result?r=v1.a.b.c`],
    ['GET', `${base}/domains`],
    ['POST', `${base}/domains`, { domain: 'pwned.example' }],
    ['POST', `${base}/domains/${b.domainId}/verify`, {}],
    ['GET', `${base}/dsync`],
    ['POST', `${base}/dsync/tokens`, {}],
  ];
}

const template = ([method, p]: Call) =>
  `${method} ${p
    .replace(/\?.*$/, '')
    .replace(/\/t\/[0-9a-f-]{36}/, '/t/:tenantId')
    .replace(/connections\/[0-9a-f-]{36}/, 'connections/:connectionId')
    .replace(/domains\/[0-9a-f-]{36}/, 'domains/:domainId')
    .replace(/setup-links\/[0-9a-f-]{36}/, 'setup-links/:linkId')}`;

async function expectNotFound(call: Call) {
  const [method, p, form] = call;
  const res = method === 'GET' ? await acmeAdmin.get(p) : await acmeAdmin.post(p, form ?? {});
  expect({ call: `${method} ${p}`, status: res.status }).toEqual({ call: `${method} ${p}`, status: 404 });
  for (const secret of ['Globex Secret Name', 'globex.example', 'Globex IdP'])
    expect(res.text).not.toContain(secret);
}

it("refuses tenant A's setup link on every portal route of tenant B with 404, and changes nothing of B", async () => {
  // Control: the session works on Acme's own pages.
  expect((await acmeAdmin.get(`/portal/t/${acme}/sso`)).status).toBe(200);
  const calls = portalCalls(globex);
  // The audit, certificate and role pages have their own: test/portal/{audit,certificates,roles}-pages.test.ts.
  // Pages with cross-tenant tests of their own (login traces: test/portal/login-traces.test.ts).
  const own = /\/(audit|certificates|roles|sso\/traces)\b/;
  const mounted = mountedRoutes(a.app).filter((r) => r.includes(' /portal/t/:tenantId') && !own.test(r));
  expect([...new Set(calls.map(template))].sort()).toEqual([...new Set(mounted)].sort());
  const before = await portalSnapshot(t, globex);
  expect(before).toMatchObject({ connections: 1, domains: 1, setup_links: 1 });
  for (const call of calls) await expectNotFound(call);
  expect(await portalSnapshot(t, globex)).toEqual(before);
});

it("refuses B's connection, domain and setup link ids under A's own path with 404, changing nothing of B", async () => {
  const before = await portalSnapshot(t, globex);
  const mixed = portalCalls(acme).filter(([, p]) =>
    /\/(connections|domains|setup-links)\/[0-9a-f-]{36}/.test(p),
  );
  expect(mixed).toHaveLength(7);
  for (const [method, p, form] of mixed) {
    const res = method === 'GET' ? await acmeAdmin.get(p) : await acmeAdmin.post(p, form ?? {});
    // Revoking a link is the operator's: A's IT admin gets 403 before any id is read.
    const expected = p.includes('/setup-links/') ? 403 : 404;
    expect({ call: `${method} ${p}`, status: res.status }).toEqual({
      call: `${method} ${p}`,
      status: expected,
    });
    expect(res.text).not.toContain('Globex');
  }
  expect(await portalSnapshot(t, globex)).toEqual(before);
});

it('sends a setup-link session from the tenant list to its own tenant, listing no other tenant', async () => {
  const res = await acmeAdmin.get('/portal');
  expect(res.status).toBe(303);
  expect(res.headers.location).toBe(`/portal/t/${acme}`);
  expect(res.text).not.toContain('Globex');
});
