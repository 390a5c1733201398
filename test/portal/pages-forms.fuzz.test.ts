import fc from 'fast-check';
import request from 'supertest';
import type { AdminTestApp } from '../support/admin.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
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
 * Issue 15: the audit, certificate and role pages' forms and query strings
 * under generated input — their known fields and stray ones (prototype keys
 * included), NUL, lone surrogates, 10,000 characters, fields sent twice,
 * with the right CSRF token, a wrong one or none. Invariants per request:
 * never a 5xx; no built-in prototype gains a key; a GET (filters, preview)
 * changes nothing; a 4xx changes nothing of the tenant (rows and audit trail).
 */
const RUNS = fuzzRuns(60);
const SEED = fuzzSeed(0x15a0d1);

let t: TestDatabase;
let a: AdminTestApp;
let tenantId: string;
let browser: PortalBrowser;
const ids = { connectionId: '', mappingId: '' };

beforeAll(async () => {
  t = await createTestDatabase();
  a = buildPortalApp(t);
  let connectionId: string;
  ({ tenantId, browser, connectionId } = await fuzzPortalTenant(a, [
    'sso',
    'certificate_renewal',
    'audit_log',
  ]));
  ids.connectionId = connectionId;
  ids.mappingId = String(
    (
      await a
        .op()
        .post(`/admin/v1/tenants/${tenantId}/role-mappings`)
        .send({ group: { display_name: 'Admins' }, role: 'admin' })
    ).body.id,
  );
});
afterAll(() => t.close());

const junk = junkOf(
  'display_name',
  'external_id',
  'admin',
  'domain.*',
  'role_mapping.created',
  '2026-12-03',
  '0000-01-01',
  '9999-12-31',
  '123456789012345678',
  '1',
  'ada@example.test',
  '00000000-0000-4000-8000-000000000000',
);
const value = valueOf(junk);

const FIELDS = [
  'group_attribute',
  'group_value',
  'role',
  'metadata_xml',
  'action',
  'actor',
  'target',
  'from',
  'to',
  'before',
  'user',
  'user_id',
  'connection',
  'add_attribute',
  'add_group',
  'add_role',
  'remove',
];

const fields = fc
  .record({
    known: fc.dictionary(fc.constantFrom(...FIELDS), value, { maxKeys: 5 }),
    stray: fc.dictionary(fc.constantFrom(...STRAY_FIELDS), junk, { maxKeys: 2 }),
  })
  .map(({ known, stray }) => ({ ...stray, ...known }));

const base = () => `/portal/t/${tenantId}`;
const target = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.constantFrom<['GET' | 'POST', () => string]>(
      ['POST', () => `${base()}/roles`],
      ['POST', () => `${base()}/roles/${ids.mappingId}/delete`],
      ['POST', () => `${base()}/certificates/${ids.connectionId}/metadata`],
      ['POST', () => `${base()}/certificates/${ids.connectionId}/refresh`],
      ['POST', () => `${base()}/audit/verify`],
      ['GET', () => `${base()}/audit`],
      ['GET', () => `${base()}/roles`],
      ['GET', () => `${base()}/certificates`],
    ),
  },
  // Path parameters are input too.
  junk.map((seg): ['GET' | 'POST', () => string] => [
    'GET',
    () => `${base()}/audit/events/${encodeURIComponent(seg.slice(0, 200))}`,
  ]),
  junk.map((seg): ['GET' | 'POST', () => string] => [
    'POST',
    () => `${base()}/roles/${encodeURIComponent(seg.slice(0, 200))}/delete`,
  ]),
);

describe('audit, certificate and role page fuzzing (issue 15)', () => {
  it('never answers 5xx, never touches a prototype, and changes nothing on a GET or a 4xx', async () => {
    const prototypes = prototypeSnapshot();
    const statuses = new Map<number, number>();
    await fc.assert(
      fc.asyncProperty(target, fields, csrfChoice, async ([method, to], form, token) => {
        const before = await portalSnapshot(t, tenantId);
        let res: request.Response;
        if (method === 'GET') {
          const query = new URLSearchParams();
          for (const [k, v] of Object.entries(form))
            for (const one of Array.isArray(v) ? v : [v]) query.append(k, String(one).slice(0, 2000));
          res = await request(a.app).get(`${to()}?${query.toString()}`).set('Cookie', browser.cookie);
        } else {
          const body = withCsrf(form, token, browser);
          res = await request(a.app).post(to()).set('Cookie', browser.cookie).type('form').send(body);
        }
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        expect(res.status).toBeLessThan(500);
        expect(prototypeSnapshot()).toEqual(prototypes);
        expect(inheritedEnumerableKeys()).toEqual([]);
        if (method === 'GET' || res.status >= 400) expect(await portalSnapshot(t, tenantId)).toEqual(before);
      }),
      { seed: SEED, numRuns: RUNS },
    );
    console.info(
      `portal pages fuzz: ${RUNS} requests, seed ${SEED}, statuses ${JSON.stringify(Object.fromEntries(statuses))}`,
    );
    expect((await browser.get(`${base()}/roles`)).status).toBe(200);
  }, 120_000);
});
