import { readFileSync } from 'node:fs';
import { buildAdminTestApp, type AdminTestApp } from '../support/admin.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { inheritedEnumerableKeys, prototypeSnapshot } from '../scim/hardening-support.js';

/**
 * Issue 8 on the admin API: no client string becomes an object key path, and
 * text PostgreSQL cannot store is a 400, not a 500. Bodies are sent as JSON
 * text byte for byte (a JS object literal `{ __proto__: … }` would set a
 * prototype instead of a key).
 */

let t: TestDatabase;
let a: AdminTestApp;
let tenantId: string;
let connectionId: string;

beforeAll(async () => {
  t = await createTestDatabase();
  a = buildAdminTestApp(t);
  tenantId = await a.createTenant('acme', 'Acme');
  const conn = await a
    .op()
    .post(`/admin/v1/tenants/${tenantId}/connections`)
    .send({
      type: 'saml',
      name: 'Okta',
      metadata_xml: readFileSync('fixtures/saml/metadata/okta.xml', 'utf8'),
    });
  expect(conn.status).toBe(201);
  connectionId = conn.body.id as string;
});
afterAll(async () => {
  await t.close();
});

const rows = async () => {
  const [platform] = await t.db.withPlatform((em) =>
    em.query<{ tenants: string }[]>(
      `SELECT md5(string_agg(x::text, ',' ORDER BY x.id)) AS tenants FROM tenants x`,
    ),
  );
  const [tenant] = await t.db.withTenant(tenantId, (em) =>
    em.query<{ c: string; d: number; audit: number }[]>(
      `SELECT md5(string_agg(x::text, ',' ORDER BY x.id)) AS c, (SELECT count(*)::int FROM domains) AS d,
              (SELECT count(*)::int FROM audit_events) AS audit FROM connections x`,
    ),
  );
  return { platform, tenant };
};

type Case = [string, 'post' | 'patch' | 'get', () => string, string | undefined];

const cases: Case[] = [
  [
    'a tenant body key __proto__',
    'post',
    () => '/admin/v1/tenants',
    '{"slug":"evil","name":"E","__proto__":{"polluted":1}}',
  ],
  [
    'a tenant body key Constructor',
    'post',
    () => '/admin/v1/tenants',
    '{"slug":"evil","name":"E","Constructor":{"prototype":{}}}',
  ],
  [
    'attribute_mapping key __proto__',
    'patch',
    () => `/admin/v1/tenants/${tenantId}/connections/${connectionId}`,
    '{"attribute_mapping":{"__proto__":"x"}}',
  ],
  [
    'attribute_mapping key constructor',
    'patch',
    () => `/admin/v1/tenants/${tenantId}/connections/${connectionId}`,
    '{"attribute_mapping":{"constructor":"x"}}',
  ],
  [
    'attribute_mapping value __proto__ (an attribute name looked up as a key)',
    'patch',
    () => `/admin/v1/tenants/${tenantId}/connections/${connectionId}`,
    '{"attribute_mapping":{"email":"__proto__"}}',
  ],
  [
    'a role mapping group key prototype',
    'post',
    () => `/admin/v1/tenants/${tenantId}/role-mappings`,
    '{"group":{"prototype":"x"},"role":"admin"}',
  ],
  ['a tenant name with NUL', 'patch', () => `/admin/v1/tenants/${tenantId}`, '{"name":"Acme\\u0000"}'],
  [
    'a tenant name with a lone surrogate',
    'patch',
    () => `/admin/v1/tenants/${tenantId}`,
    '{"name":"Acme\\ud800"}',
  ],
  [
    'a domain with NUL',
    'post',
    () => `/admin/v1/tenants/${tenantId}/domains`,
    '{"domain":"acme\\u0000.com"}',
  ],
  [
    'a SCIM token description with NUL',
    'post',
    () => `/admin/v1/tenants/${tenantId}/scim-tokens`,
    '{"description":"\\u0000"}',
  ],
  ['JSON nested 100,000 deep', 'post', () => '/admin/v1/tenants', '['.repeat(100_000) + ']'.repeat(100_000)],
  ['a query value with NUL', 'get', () => `/admin/v1/tenants/${tenantId}/domains?domain=a%00b`, undefined],
];

describe('admin API: prototype keys and unstorable text', () => {
  test.each(cases)('refuses %s with 400 and writes nothing', async (_name, method, path, json) => {
    const prototypes = prototypeSnapshot();
    const before = await rows();
    let req = a.op()[method](path());
    if (json !== undefined) req = req.set('Content-Type', 'application/json').send(json);
    const res = await req;
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ code: 'bad_request', message: expect.any(String) });
    expect(prototypeSnapshot()).toEqual(prototypes);
    expect(inheritedEnumerableKeys()).toEqual([]);
    expect(await rows()).toEqual(before);
    await a.op().get(`/admin/v1/tenants/${tenantId}`).expect(200);
  });

  it('still accepts an attribute mapping of ordinary names', async () => {
    const res = await a
      .op()
      .patch(`/admin/v1/tenants/${tenantId}/connections/${connectionId}`)
      .send({ attribute_mapping: { email: 'mail', groups: 'memberOf' } });
    expect(res.status).toBe(200);
  });
});
