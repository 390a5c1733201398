import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import type request from 'supertest';
import { buildAdminTestApp, type AdminTestApp } from '../support/admin.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { fuzzRuns, fuzzSeed, inheritedEnumerableKeys, prototypeSnapshot } from '../scim/hardening-support.js';

/**
 * Issue 8: the admin API under generated hostile bodies and queries —
 * tenants, domains, role mappings, SAML connections (metadata junk, never a
 * network URL), SCIM tokens and apps — with prototype keys at any depth,
 * huge and 4-byte strings, NUL, lone surrogates, wrong types and JSON nested
 * up to 100,000 deep. Invariants per request: never a 5xx; no built-in
 * prototype gains a key; on any 4xx the platform rows (tenants, apps) and the
 * tenant's rows (domains, connections, role mappings, SCIM tokens, audit
 * events) are exactly as before; on a 2xx create, the resource reads back.
 * OIDC connections are left out: their issuer is fetched (outbound network).
 * Later surfaces in the same property (issues 12, 15, 16): setup links and
 * portal links (Admin Portal), tenant exports, and SP key rotation.
 */

const RUNS = fuzzRuns(250);
const SEED = fuzzSeed(0xad31);

let t: TestDatabase;
let a: AdminTestApp;
let tenantId: string;
let connectionId: string;
let appId: string;

const metadata = readFileSync('fixtures/saml/metadata/okta.xml', 'utf8');

beforeAll(async () => {
  t = await createTestDatabase();
  a = buildAdminTestApp(t);
  tenantId = await a.createTenant('fuzz-tenant', 'Fuzz');
  const conn = await a
    .op()
    .post(`/admin/v1/tenants/${tenantId}/connections`)
    .send({ type: 'saml', name: 'Okta', metadata_xml: metadata });
  expect(conn.status).toBe(201);
  connectionId = conn.body.id as string;
  const app = await a
    .op()
    .post('/admin/v1/apps')
    .send({ name: 'Main', redirect_uris: ['https://app.example.com/callback'] });
  expect(app.status).toBe(201);
  appId = app.body.client_id as string;
});
afterAll(async () => {
  await t.close();
});

interface AdminDigest {
  platform: string;
  tenant: string;
  audit: number;
}

/** Platform rows (tenants, apps and their secrets) and this tenant's rows, digested. */
async function digest(): Promise<AdminDigest> {
  const agg = (table: string) =>
    `(SELECT md5(coalesce(string_agg(x::text, ',' ORDER BY x::text), '')) FROM ${table} x)`;
  const [platform] = await t.db.withPlatform((em) =>
    em.query<{ d: string }[]>(
      `SELECT concat_ws('|', ${['tenants', 'apps', 'app_secrets', 'app_webhook_secrets', 'portal_links'].map(agg).join(',')}) AS d`,
    ),
  );
  const [tenant] = await t.db.withTenant(tenantId, (em) =>
    em.query<{ d: string; audit: number }[]>(
      `SELECT concat_ws('|', ${['domains', 'connections', 'role_mappings', 'scim_tokens', 'setup_links', 'tenant_exports', 'connection_sp_keys'].map(agg).join(',')}) AS d,
              (SELECT count(*)::int FROM audit_events) AS audit`,
    ),
  );
  return { platform: platform?.d ?? '', tenant: tenant?.d ?? '', audit: tenant?.audit ?? -1 };
}

// ---------------------------------------------------------------- JSON as text

type Tree = null | boolean | number | string | { arr: Tree[] } | { obj: [string, Tree][] };

function serialise(tree: Tree): string {
  if (tree === null || typeof tree !== 'object') return JSON.stringify(tree);
  if ('arr' in tree) return `[${tree.arr.map(serialise).join(',')}]`;
  return `{${tree.obj.map(([k, v]) => `${JSON.stringify(k)}:${serialise(v)}`).join(',')}}`;
}

const toTree = (value: unknown): Tree =>
  value === null || ['boolean', 'number', 'string'].includes(typeof value)
    ? (value as Tree)
    : Array.isArray(value)
      ? { arr: value.map(toTree) }
      : typeof value === 'object'
        ? { obj: Object.entries(value).map(([k, v]) => [k, toTree(v)]) }
        : null;

const SPECIAL_KEYS = ['__proto__', 'constructor', 'prototype', '__PROTO__', 'Constructor'];

const nastyString = fc.oneof(
  { arbitrary: fc.stringMatching(/^[a-z0-9][a-z0-9-]{0,14}[a-z0-9]$/), weight: 6 },
  fc.string({ maxLength: 20 }),
  fc.string({ unit: 'binary', maxLength: 20 }),
  fc.constantFrom(
    '',
    ' ',
    '\u0000',
    'a\u0000b',
    '\ud800',
    'x\udc00',
    '\u202Eevil',
    'e\u0301',
    ...SPECIAL_KEYS,
  ),
  fc.integer({ min: 200, max: 5000 }).map((n) => 'a'.repeat(n)),
  fc.integer({ min: 60, max: 1200 }).map((n) => '😀'.repeat(n)),
  fc.integer({ min: 2, max: 300 }).map((n) => `${'a'.repeat(n)}.example.com`),
);

const fieldName = fc.oneof(
  {
    arbitrary: fc.constantFrom('name', 'slug', 'domain', 'description', 'role', 'group', 'display_name'),
    weight: 4,
  },
  fc.constantFrom(...SPECIAL_KEYS, 'attribute_mapping', 'email', 'groups', 'status', 'jit_enabled'),
  fc.string({ maxLength: 10 }),
);

const tree: fc.Arbitrary<Tree> = fc.letrec<{ node: Tree }>((tie) => ({
  node: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constant(null),
    fc.boolean(),
    fc.oneof(fc.integer(), fc.double()),
    nastyString,
    fc.array(tie('node'), { maxLength: 4 }).map((arr) => ({ arr })),
    fc.array(fc.tuple(fieldName, tie('node')), { maxLength: 4 }).map((obj) => ({ obj })),
  ),
})).node;

const junkOr = <T>(valid: fc.Arbitrary<T>) =>
  fc.oneof({ arbitrary: valid.map(toTree), weight: 10 }, { arbitrary: tree, weight: 1 });

/** An object body: some generated fields, possibly a generated extra key (often a prototype key). */
const body = (fields: Record<string, fc.Arbitrary<unknown>>) =>
  fc
    .tuple(
      fc.record(Object.fromEntries(Object.entries(fields).map(([k, v]) => [k, junkOr(v)])), {
        requiredKeys: [],
      }),
      fc.oneof(
        { arbitrary: fc.constant<[string, Tree][]>([]), weight: 3 },
        fc.array(fc.tuple(fieldName, tree), { maxLength: 2 }),
      ),
    )
    .map(([record, extra]): string =>
      serialise({ obj: [...(Object.entries(record) as [string, Tree][]), ...extra] }),
    );

const deepJson = fc
  .tuple(fc.integer({ min: 30, max: 100_000 }), fc.boolean())
  .map(([depth, arrays]) =>
    arrays ? '['.repeat(depth) + ']'.repeat(depth) : '{"a":'.repeat(depth) + '1' + '}'.repeat(depth),
  );

const attributeMapping = fc.oneof(
  fc.record(
    { email: nastyString, given_name: nastyString, groups: nastyString, display_name: nastyString },
    { requiredKeys: [] },
  ),
  fc.constantFrom(...SPECIAL_KEYS).map((k) => ({ obj: [[k, 'x']] })),
);

// ---------------------------------------------------------------- requests

interface FuzzRequest {
  method: 'get' | 'post' | 'patch';
  /** `{tenant}`, `{connection}`, `{app}` stand for the ids created in beforeAll. */
  path: string;
  query?: Record<string, string>;
  body?: string;
  /** Where a 2xx create reads back: the path of the collection, joined with the new id. */
  readBack?: boolean;
}

const T = '/admin/v1/tenants/{tenant}';

const fuzzRequest: fc.Arbitrary<FuzzRequest> = fc.oneof(
  body({ slug: nastyString, name: nastyString }).map((b) => ({
    method: 'post' as const,
    path: '/admin/v1/tenants',
    body: b,
    readBack: true,
  })),
  body({ slug: nastyString, name: nastyString }).map((b) => ({ method: 'patch' as const, path: T, body: b })),
  body({ domain: nastyString }).map((b) => ({
    method: 'post' as const,
    path: `${T}/domains`,
    body: b,
    readBack: true,
  })),
  body({
    group: fc.oneof(
      fc.record({ display_name: nastyString }),
      fc.record({ external_id: nastyString }),
      fc.constantFrom(...SPECIAL_KEYS).map((k) => ({ obj: [[k, 'x']] })),
    ),
    role: fc.oneof(fc.stringMatching(/^[a-z][a-z0-9_:.-]{0,10}$/), nastyString),
  }).map((b) => ({ method: 'post' as const, path: `${T}/role-mappings`, body: b, readBack: true })),
  body({ description: nastyString }).map((b) => ({
    method: 'post' as const,
    path: `${T}/scim-tokens`,
    body: b,
  })),
  body({
    type: fc.constantFrom('saml', 'SAML', 'ldap'),
    name: nastyString,
    metadata_xml: fc.oneof(
      nastyString,
      fc.constant(metadata),
      fc
        .tuple(fc.integer({ min: 0, max: metadata.length }), nastyString)
        .map(([i, s]) => metadata.slice(0, i) + s + metadata.slice(i)),
    ),
    default_role: nastyString,
    attribute_mapping: attributeMapping,
    jit_enabled: fc.boolean(),
  }).map((b) => ({ method: 'post' as const, path: `${T}/connections`, body: b, readBack: true })),
  body({
    name: nastyString,
    status: fc.constantFrom('draft', 'active', 'inactive', 'gone'),
    attribute_mapping: attributeMapping,
    default_role: nastyString,
    certificates: fc.array(nastyString, { maxLength: 2 }),
  }).map((b) => ({ method: 'patch' as const, path: `${T}/connections/{connection}`, body: b })),
  body({
    name: nastyString,
    redirect_uris: fc.array(
      fc.oneof(
        fc.constant('https://app.example.com/cb'),
        nastyString.map((s) => `https://app.example.com/${s}`),
        nastyString,
      ),
      { maxLength: 3 },
    ),
    client_type: fc.constantFrom('confidential', 'public', 'other'),
  }).map((b) => ({ method: 'post' as const, path: '/admin/v1/apps', body: b, readBack: true })),
  body({ name: nastyString, token_signing_alg: fc.constantFrom('ES256', 'HS256', 'none') }).map((b) => ({
    method: 'patch' as const,
    path: '/admin/v1/apps/{app}',
    body: b,
  })),
  body({
    intents: fc.oneof(
      fc.subarray(['sso', 'dsync', 'domain_verification', 'certificate_renewal', 'audit_log'], {
        minLength: 1,
      }),
      fc.array(nastyString, { maxLength: 3 }),
    ),
    ttl: fc.oneof(fc.integer({ min: 300, max: 31_536_000 }), fc.integer(), fc.double()),
  }).map((b) => ({ method: 'post' as const, path: `${T}/setup-links`, body: b })),
  fc.oneof(fc.constant('{}'), body({ tenant_id: nastyString, ttl: fc.integer() })).map((b) => ({
    method: 'post' as const,
    path: '/admin/v1/portal-links',
    body: b,
  })),
  fc.oneof(fc.constant('{}'), body({ format: nastyString })).map((b) => ({
    method: 'post' as const,
    path: `${T}/exports`,
    body: b,
  })),
  fc
    .tuple(
      fc.constantFrom('rotate', 'activate', 'retire'),
      body({ use: fc.oneof(fc.constantFrom('signing', 'encryption'), nastyString) }),
    )
    .map(([action, b]) => ({
      method: 'post' as const,
      path: `${T}/connections/{connection}/sp-keys/${action}`,
      body: b,
    })),
  fc
    .tuple(
      fc.constantFrom(
        '/admin/v1/tenants',
        `${T}/domains`,
        `${T}/audit-events`,
        `${T}/role-mappings`,
        '/admin/v1/apps',
        `${T}/setup-links`,
        `${T}/connections/{connection}/sp-keys`,
      ),
      fc.record(
        {
          limit: fc.oneof(fc.integer({ min: -1, max: 200 }).map(String), nastyString),
          offset: fc.oneof(fc.integer({ min: -1, max: 5 }).map(String), nastyString),
          domain: nastyString,
          action: nastyString,
          since: nastyString,
        },
        { requiredKeys: [] },
      ),
    )
    .map(([path, query]) => ({ method: 'get' as const, path, query })),
  fc
    .tuple(
      fc.constantFrom('/admin/v1/tenants', `${T}/domains`, `${T}/connections/{connection}`, '/admin/v1/apps'),
      deepJson,
    )
    .map(([path, b]) => ({
      method: path.includes('{connection}') ? ('patch' as const) : ('post' as const),
      path,
      body: b,
    })),
);

const resolve = (path: string) =>
  path.replace('{tenant}', tenantId).replace('{connection}', connectionId).replace('{app}', appId);

function send(r: FuzzRequest): request.Test {
  let test = a.op()[r.method](resolve(r.path));
  if (r.query) test = test.query(r.query);
  if (r.body !== undefined) test = test.set('Content-Type', 'application/json').send(r.body);
  return test;
}

describe('admin API input fuzzing (issue 8)', () => {
  it('never answers 5xx, never touches a prototype, writes nothing on 4xx and reads back every create', async () => {
    const prototypes = prototypeSnapshot();
    const statuses = new Map<string, number>();
    await fc.assert(
      fc.asyncProperty(fuzzRequest, async (r) => {
        const before = await digest();
        const res = await send(r);
        const key = `${res.status} ${String((res.body as { code?: string }).code ?? '')}`.trim();
        statuses.set(key, (statuses.get(key) ?? 0) + 1);
        expect(res.status).toBeLessThan(500);
        expect(prototypeSnapshot()).toEqual(prototypes);
        expect(inheritedEnumerableKeys()).toEqual([]);
        if (res.status >= 400) {
          // 431: Node's HTTP parser refuses an over-long URL before the app sees it.
          if (res.status !== 431)
            expect(res.body).toMatchObject({ code: expect.any(String), message: expect.any(String) });
          expect(await digest()).toEqual(before);
          return;
        }
        if (r.readBack && res.status === 201) {
          // Apps are named by client_id, everything else by id.
          const id =
            (res.body as { id?: string; client_id?: string }).id ??
            (res.body as { client_id?: string }).client_id;
          expect(typeof id).toBe('string');
          await a
            .op()
            .get(`${resolve(r.path)}/${id as string}`)
            .expect(200);
        }
      }),
      { seed: SEED, numRuns: RUNS },
    );
    console.info(
      `admin fuzz: ${RUNS} requests, seed ${SEED}, statuses ${JSON.stringify(Object.fromEntries(statuses))}`,
    );
    await a.op().get(`/admin/v1/tenants/${tenantId}`).expect(200);
  }, 600_000);
});
