import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import request from 'supertest';
import { certificateUntil, metadataXml } from '../connections/metadata-refresh-support.js';
import { fuzzRuns, fuzzSeed, inheritedEnumerableKeys, prototypeSnapshot } from '../scim/hardening-support.js';
import { buildAdminTestApp, type AdminTestApp } from '../support/admin.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';

/**
 * Issue 15 follow-up: POST …/connections/{id}/metadata-renewal under generated
 * bodies (mutated metadata documents — another entity id, another sign-in URL,
 * junk certificates, truncated, spliced, DTDs — and JSON of any shape, wrong
 * types and prototype keys), from the operator, the tenant's admin and another
 * tenant's admin, on its own, another tenant's and unknown connection ids.
 * Invariants per request: never a 5xx; every error is `{code, message}`; no
 * built-in prototype gains a key; a 4xx leaves both tenants' connections and
 * audit trails exactly as they were; a 200 comes only from a caller who may
 * reach the tenant and changes certificates only (entity id and sign-in URL as
 * before, the other tenant untouched).
 */
const RUNS = fuzzRuns(120);
const SEED = fuzzSeed(0x4e7e);

let t: TestDatabase;
let a: AdminTestApp;
let acme: string;
let globex: string;
let acmeConnection: string;
let globexConnection: string;
let certs: string[];
const ENTITY = 'https://idp.acme.test/metadata';
const SSO_URL = 'https://idp.acme.test/sso';

beforeAll(async () => {
  t = await createTestDatabase();
  a = buildAdminTestApp(t);
  const year = new Date(Date.now() + 365 * 86_400_000);
  certs = [await certificateUntil(year, 'one.acme.test'), await certificateUntil(year, 'two.acme.test')];
  acme = await a.createTenant('acme', 'Acme');
  globex = await a.createTenant('globex', 'Globex');
  const create = async (tenantId: string, entityId: string) => {
    const res = await a
      .op()
      .post(`/admin/v1/tenants/${tenantId}/connections`)
      .send({ type: 'saml', name: 'IdP', metadata_xml: metadataXml(entityId, SSO_URL, [certs[0] ?? '']) });
    expect(res.status).toBe(201);
    return String(res.body.id);
  };
  acmeConnection = await create(acme, ENTITY);
  globexConnection = await create(globex, 'https://idp.globex.test/metadata');
});
afterAll(async () => {
  await t.close();
});

/** A tenant's connections (every column) and audit trail length, as its runtime role reads them. */
async function tenantState(tenantId: string) {
  return t.db.withTenant(tenantId, async (em) => {
    const [row] = await em.query<{ connections: string; audit: number }[]>(
      `SELECT (SELECT md5(coalesce(string_agg(x::text, ',' ORDER BY x.id), '')) FROM connections x) AS connections,
              (SELECT count(*)::int FROM audit_events) AS audit`,
    );
    const [conn] = await em.query<{ saml_idp_entity_id: string; saml_sso_url: string }[]>(
      'SELECT saml_idp_entity_id, saml_sso_url FROM connections ORDER BY created_at LIMIT 1',
    );
    return { ...row, identity: conn };
  });
}

const junkCert = fc.oneof(
  fc.constantFrom(...[0, 1].map(String)).map((i) => certs[Number(i)] ?? ''),
  fc.base64String({ maxLength: 200 }).map((b) => `-----BEGIN CERTIFICATE-----${b}-----END CERTIFICATE-----`),
  fc.string({ maxLength: 40 }),
);

const document = fc
  .record({
    entityId: fc.oneof(
      { arbitrary: fc.constant(ENTITY), weight: 4 },
      fc.constant('https://idp.globex.test/metadata'),
      fc.webUrl(),
      fc.string({ maxLength: 30 }),
    ),
    ssoUrl: fc.oneof(
      { arbitrary: fc.constant(SSO_URL), weight: 3 },
      fc.webUrl(),
      fc.string({ maxLength: 30 }),
    ),
    certs: fc.oneof(
      {
        arbitrary: fc.subarray([0, 1], { minLength: 1 }).map((ix) => ix.map((i) => certs[i] ?? '')),
        weight: 4,
      },
      fc.array(junkCert, { maxLength: 3 }),
    ),
  })
  .map(({ entityId, ssoUrl, certs: pems }) => metadataXml(entityId, ssoUrl, pems));

/** A valid document, then cut, spliced or wrapped the ways a hostile upload would. */
const mutated = fc.oneof(
  { arbitrary: document, weight: 4 },
  fc.tuple(document, fc.nat()).map(([xml, n]) => xml.slice(0, n % (xml.length + 1))),
  fc.tuple(document, fc.nat(), fc.string({ maxLength: 30 })).map(([xml, n, s]) => {
    const at = n % (xml.length + 1);
    return xml.slice(0, at) + s + xml.slice(at);
  }),
  document.map(
    (xml) =>
      `<!DOCTYPE md:EntityDescriptor [<!ENTITY x "${'a'.repeat(50)}"><!ENTITY y "&x;&x;&x;&x;">]>${xml.replace('<?xml version="1.0"?>', '')}`,
  ),
  fc.integer({ min: 50, max: 3000 }).map((n) => `${'<a>'.repeat(n)}${'</a>'.repeat(n)}`),
  fc.string({ maxLength: 100 }),
);

const SPECIAL_KEYS = ['__proto__', 'constructor', 'prototype'];
const body: fc.Arbitrary<string> = fc.oneof(
  { arbitrary: mutated.map((xml) => JSON.stringify({ metadata_xml: xml })), weight: 6 },
  fc
    .tuple(mutated, fc.constantFrom(...SPECIAL_KEYS, 'status', 'sso_url'), fc.jsonValue({ maxDepth: 2 }))
    .map(
      ([xml, key, value]) =>
        `{"metadata_xml":${JSON.stringify(xml)},${JSON.stringify(key)}:${JSON.stringify(value) ?? 'null'}}`,
    ),
  fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify({ metadata_xml: v }) ?? '{}'),
  fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v) ?? 'null'),
  fc.string({ maxLength: 50 }),
);

type Caller = 'operator' | 'acme_admin' | 'globex_admin';
const target = fc.oneof(
  { arbitrary: fc.constant('acme' as const), weight: 3 },
  fc.constantFrom('globex', 'unknown', 'junk', 'acme_under_globex'),
);

describe('metadata renewal through the admin API under generated input', () => {
  it('never answers 5xx, answers errors as {code, message}, and changes only certificates, only for a caller who may', async () => {
    const prototypes = prototypeSnapshot();
    const seen = { accepted: 0, refused: 0 };
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          { arbitrary: fc.constant<Caller>('operator'), weight: 2 },
          fc.constantFrom<Caller>('acme_admin', 'globex_admin'),
        ),
        target,
        body,
        async (caller, where, raw) => {
          const [tenantId, connectionId] = {
            acme: [acme, acmeConnection],
            globex: [globex, globexConnection],
            unknown: [acme, randomUUID()],
            junk: [acme, "conn_' OR 1=1"],
            acme_under_globex: [globex, acmeConnection],
          }[where] as [string, string];
          const before = { acme: await tenantState(acme), globex: await tenantState(globex) };
          const token =
            caller === 'operator'
              ? a.secrets.adminToken
              : `test-tenant-admin:${caller === 'acme_admin' ? acme : globex}:fuzzer`;
          const res = await request(a.app)
            .post(
              `/admin/v1/tenants/${tenantId}/connections/${encodeURIComponent(connectionId)}/metadata-renewal`,
            )
            .set('Authorization', `Bearer ${token}`)
            .set('Content-Type', 'application/json')
            .send(raw);
          expect(res.status).toBeLessThan(500);
          expect(prototypeSnapshot()).toEqual(prototypes);
          expect(inheritedEnumerableKeys()).toEqual([]);
          const after = { acme: await tenantState(acme), globex: await tenantState(globex) };
          if (res.status >= 400) {
            seen.refused++;
            expect(res.body).toMatchObject({ code: expect.any(String), message: expect.any(String) });
            expect(after).toEqual(before);
            return;
          }
          expect(res.status).toBe(200);
          seen.accepted++;
          // Only the operator or this tenant's own admin, on this tenant's own connection, gets here.
          expect(where === 'acme' || where === 'globex').toBe(true);
          expect(caller === 'operator' || caller === `${where}_admin`).toBe(true);
          const other = where === 'acme' ? 'globex' : 'acme';
          expect(after[other]).toEqual(before[other]);
          expect(after[where as 'acme' | 'globex'].identity).toEqual(
            before[where as 'acme' | 'globex'].identity,
          );
        },
      ),
      { numRuns: RUNS, seed: SEED, endOnFailure: true },
    );
    // Guards the generator: a property that only ever met refusals would prove nothing about renewals.
    if (RUNS >= 50) expect(Math.min(seen.accepted, seen.refused)).toBeGreaterThan(0);
  }, 60_000);
});
