import { readFileSync } from 'node:fs';
import type { TestDatabase } from '../support/database.js';
import { createTestDatabase } from '../support/database.js';
import { createTenantWithConnection } from '../support/oauth-fixtures.js';
import {
  resignWithGatehouseKey,
  startTenantAdminServer,
  tenantSnapshot,
  type TenantAdminServer,
} from '../support/tenant-admin-token.js';
import { mountedRoutes } from './cross-tenant-registry.js';

const OKTA_METADATA = readFileSync('fixtures/saml/metadata/okta.xml', 'utf8');

/**
 * The admin API against another tenant's admin, through the REAL tenant-admin
 * resolver (src/admin/tenant-admin-token.ts): Acme's admin signs in through the
 * admin console (GATEHOUSE_ADMIN_CLIENT_ID) and drives every /admin/v1 route
 * of Globex. Every one answers 404 as for a tenant that does not exist
 * (src/admin/principal.ts authorizeTenant), and every row Globex owns is the
 * same afterwards.
 */
let t: TestDatabase;
let s: TenantAdminServer;
let acme: { tenantId: string; connectionId: string };
let globex: { tenantId: string; connectionId: string };
let acmeToken: string;
/** Globex's resources, created by the operator. */
const g = { domainId: '', mappingId: '', scimTokenId: '', deliveryId: '' };
/** Acme's own resources, for requests that mix Acme's path with Globex's ids. */
const a = { domainId: '', mappingId: '', scimTokenId: '', deliveryId: '' };

async function asOperator(method: string, path: string, body?: unknown): Promise<Record<string, unknown>> {
  const res = await s.admin(s.gh.secrets.adminToken, method, path, body);
  if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
  return (await res.json()) as Record<string, unknown>;
}

async function seed(tenantId: string, domain: string, into: typeof g) {
  into.domainId = String((await asOperator('POST', `/tenants/${tenantId}/domains`, { domain })).id);
  into.mappingId = String(
    (
      await asOperator('POST', `/tenants/${tenantId}/role-mappings`, {
        group: { display_name: 'Operations' },
        role: 'ops',
      })
    ).id,
  );
  into.scimTokenId = String(
    (await asOperator('POST', `/tenants/${tenantId}/scim-tokens`, { description: 'okta' })).id,
  );
  // A webhook delivery the outbox gave up on (what POST …/deliveries/webhooks/{id}/retry acts on).
  const [app] = await t.asOwner<{ id: string }>('SELECT id FROM apps ORDER BY created_at LIMIT 1');
  const [row] = await t.db.withTenant(tenantId, (em) =>
    em.query<{ id: string }[]>(
      `INSERT INTO webhook_outbox (tenant_id, event_id, event_type, app_id, payload, status, attempts, last_error)
       VALUES ($1, gen_random_uuid(), 'user.created', $2, '{}', 'failed', 10, 'HTTP 500') RETURNING id`,
      [tenantId, app?.id],
    ),
  );
  into.deliveryId = String(row?.id);
}

beforeAll(async () => {
  t = await createTestDatabase();
  s = await startTenantAdminServer(t);
  acme = await createTenantWithConnection(t.db, 'acme');
  globex = await createTenantWithConnection(t.db, 'globex');
  await seed(globex.tenantId, 'globex.test', g);
  await seed(acme.tenantId, 'acme.test', a);
  acmeToken = (await s.signInAdmin(acme, 'root@acme.test')).accessToken;
});
afterAll(async () => {
  await s.close();
  await t.close();
});

type Call = [method: string, path: string, body?: unknown];

/** Every tenant-scoped admin route, aimed at `tenantId`, with ids of `ids`; valid bodies. */
function tenantRoutes(tenantId: string, ids: typeof g & { connectionId: string }): Call[] {
  const base = `/tenants/${tenantId}`;
  return [
    ['GET', base],
    ['PATCH', base, { name: 'pwned' }],
    ['POST', `${base}/suspend`],
    ['POST', `${base}/reactivate`],
    ['DELETE', base],
    ['POST', `${base}/domains`, { domain: 'pwned.test' }],
    ['GET', `${base}/domains`],
    ['GET', `${base}/domains/${ids.domainId}`],
    ['POST', `${base}/domains/${ids.domainId}/verify`, { method: 'dns' }],
    ['DELETE', `${base}/domains/${ids.domainId}`],
    ['POST', `${base}/role-mappings`, { group: { display_name: 'Everyone' }, role: 'admin' }],
    ['GET', `${base}/role-mappings`],
    ['GET', `${base}/role-mappings/${ids.mappingId}`],
    ['DELETE', `${base}/role-mappings/${ids.mappingId}`],
    ['POST', `${base}/scim-tokens`, { description: 'pwned' }],
    ['GET', `${base}/scim-tokens`],
    ['GET', `${base}/scim-requests`],
    ['GET', `${base}/login-traces`], // issue 15 (login traces; any uuid stands for a trace id)
    ['GET', `${base}/login-traces/${ids.domainId}`],
    ['GET', `${base}/login-traces/${ids.domainId}/raw-response`],
    ['GET', `${base}/deliveries/webhooks`],
    ['POST', `${base}/deliveries/webhooks/${ids.deliveryId}/retry`],
    ['DELETE', `${base}/scim-tokens/${ids.scimTokenId}`],
    ['GET', `${base}/audit-events`],
    ['GET', `${base}/audit-events/verify`],
    ['POST', `${base}/audit-checkpoints`, {}],
    ['GET', `${base}/audit-checkpoints`],
    ['POST', `${base}/exports`, {}], // issue 12 (tenant exports; any uuid stands for an export id)
    ['GET', `${base}/exports/${ids.domainId}`],
    ['GET', `${base}/exports/${ids.domainId}/download`],
    ['GET', `${base}/deletion`], // issue 12 (offboarding): deletion record, purge, erasure
    ['POST', `${base}/purge`],
    ['POST', `${base}/users/${ids.domainId}/erasure`, {}],
    ['POST', `${base}/setup-links`, { intents: ['sso'] }], // issue 15 (portal setup links)
    ['GET', `${base}/setup-links`],
    ['DELETE', `${base}/setup-links/${ids.domainId}`],
    [
      'POST',
      `${base}/connections`,
      {
        type: 'oidc',
        name: 'Pwned',
        issuer: 'https://idp.pwned.test',
        client_id: 'x',
        client_secret: 'y',
      },
    ],
    ['GET', `${base}/connections`],
    ['GET', `${base}/connections/${ids.connectionId}`],
    ['PATCH', `${base}/connections/${ids.connectionId}`, { name: 'Pwned' }],
    ['POST', `${base}/connections/${ids.connectionId}/metadata/refresh`, {}],
    // A genuine IdP document: only the tenant check can refuse it.
    ['POST', `${base}/connections/${ids.connectionId}/metadata-renewal`, { metadata_xml: OKTA_METADATA }],
    ['GET', `${base}/connections/${ids.connectionId}/client-keys`],
    ['POST', `${base}/connections/${ids.connectionId}/client-keys/rotate`, {}],
    ['POST', `${base}/connections/${ids.connectionId}/client-keys/activate`, {}],
    ['GET', `${base}/connections/${ids.connectionId}/sp-keys`],
    ['POST', `${base}/connections/${ids.connectionId}/sp-keys/rotate`, { use: 'encryption' }],
    ['POST', `${base}/connections/${ids.connectionId}/sp-keys/activate`, { use: 'encryption' }],
    ['POST', `${base}/connections/${ids.connectionId}/sp-keys/retire`, { use: 'encryption' }],
    ['DELETE', `${base}/connections/${ids.connectionId}`],
  ];
}

/** The route template a call exercises: ids replaced by the parameter names of src/admin. */
function template([method, path]: Call): string {
  const names: Record<string, string> = {
    tenants: ':tenantId',
    domains: ':domainId',
    'role-mappings': ':mappingId',
    'scim-tokens': ':tokenId',
    exports: ':exportId',
    'setup-links': ':linkId',
    connections: ':connectionId',
    apps: ':appId',
    users: ':userId',
    'login-traces': ':traceId',
  };
  const parts = path.split('/');
  const out = parts.map((part, i) => {
    const prev = parts[i - 1];
    if (prev === 'deliveries') return ':kind';
    if (parts[i - 2] === 'deliveries' && /^[0-9a-f-]{36}$/.test(part)) return ':deliveryId';
    return /^[0-9a-f-]{36}$/.test(part) && prev ? (names[prev] ?? part) : part;
  });
  return `${method} /admin/v1${out.join('/')}`;
}

async function expectNotFound(call: Call, token = acmeToken) {
  const [method, path, body] = call;
  const res = await s.admin(token, method, path, body);
  const text = await res.text();
  expect({ call: `${method} ${path}`, status: res.status }).toEqual({
    call: `${method} ${path}`,
    status: 404,
  });
  expect(JSON.parse(text)).toMatchObject({ code: 'not_found' });
  // The answer names nothing of Globex.
  for (const secret of [g.domainId, g.mappingId, g.scimTokenId, 'globex']) expect(text).not.toContain(secret);
}

describe("tenant A's admin, with a genuine admin-console token, on tenant B", () => {
  it("refuses tenant A's admin on every admin route of tenant B with 404, and changes nothing of B", async () => {
    // Control: the token is a working tenant-admin token for Acme itself.
    expect((await s.admin(acmeToken, 'GET', `/tenants/${acme.tenantId}/connections`)).status).toBe(200);

    const calls = tenantRoutes(globex.tenantId, { ...g, connectionId: globex.connectionId });
    // The table above is every tenant-scoped admin route the app mounts: a new one must be added here.
    const mounted = mountedRoutes(s.gh.app).filter((r) => r.includes(' /admin/v1/tenants/:tenantId'));
    expect([...new Set(calls.map(template))].sort()).toEqual([...new Set(mounted)].sort());

    const before = await tenantSnapshot(t, globex.tenantId);
    // The snapshot sees Globex's rows (so an unchanged snapshot means something).
    for (const table of ['domains', 'role_mappings', 'scim_tokens', 'connections', 'audit_events'])
      expect({ table, rows: (before[table] as unknown[]).length > 0 }).toEqual({ table, rows: true });
    for (const call of calls) await expectNotFound(call);
    expect(await tenantSnapshot(t, globex.tenantId)).toEqual(before);
  });

  it("refuses B's domains, role mappings, SCIM tokens and connections addressed under A's own path", async () => {
    const before = await tenantSnapshot(t, globex.tenantId);
    const mixed = tenantRoutes(acme.tenantId, { ...g, connectionId: globex.connectionId }).filter(
      ([, path]) =>
        /\/(domains|role-mappings|scim-tokens|connections|deliveries\/webhooks)\/[0-9a-f-]{36}/.test(path),
    );
    expect(mixed).toHaveLength(19);
    for (const call of mixed) await expectNotFound(call);
    expect(await tenantSnapshot(t, globex.tenantId)).toEqual(before);
  });

  it('refuses suspend, reactivate and delete of tenant B by tenant A’s admin with 404, leaving B as it was', async () => {
    const status = async () =>
      (
        await t.db.withPlatform((em) =>
          em.query<{ status: string; deleted_at: Date | null }[]>(
            'SELECT status, deleted_at FROM tenants WHERE id = $1',
            [globex.tenantId],
          ),
        )
      )[0];
    const base = `/tenants/${globex.tenantId}`;
    let before = await tenantSnapshot(t, globex.tenantId);
    await expectNotFound(['POST', `${base}/suspend`]);
    await expectNotFound(['DELETE', base]);
    expect(await status()).toEqual({ status: 'active', deleted_at: null });
    expect(await tenantSnapshot(t, globex.tenantId)).toEqual(before);

    // Suspended by the operator: Acme's admin cannot bring it back either.
    await asOperator('POST', `${base}/suspend`);
    before = await tenantSnapshot(t, globex.tenantId);
    await expectNotFound(['POST', `${base}/reactivate`]);
    await expectNotFound(['DELETE', base]);
    expect(await status()).toEqual({ status: 'suspended', deleted_at: null });
    expect(await tenantSnapshot(t, globex.tenantId)).toEqual(before);
    await asOperator('POST', `${base}/reactivate`);
  });

  it("refuses tenant A's admin on every operator-only route with 403, changing no app, key or tenant", async () => {
    const platform = () =>
      t.db.withPlatform((em) =>
        em.query(`SELECT (SELECT json_agg(a ORDER BY id) FROM apps a) AS apps,
                         (SELECT json_agg(x.id ORDER BY id) FROM tenants x) AS tenants,
                         (SELECT count(*)::int FROM signing_keys) AS keys`),
      );
    const before = await platform();
    const appId = s.adminClientId;
    const calls: Call[] = [
      ['POST', '/tenants', { slug: 'pwned', name: 'Pwned' }],
      ['GET', '/tenants'],
      ['POST', '/apps', { name: 'Pwned', redirect_uris: ['https://pwned.test/cb'] }],
      ['GET', '/apps'],
      ['GET', `/apps/${appId}`],
      ['PATCH', `/apps/${appId}`, { redirect_uris: ['https://pwned.test/cb'] }],
      ['DELETE', `/apps/${appId}`],
      ['POST', `/apps/${appId}/secrets`, {}],
      ['POST', `/apps/${appId}/webhook-secret`, {}],
      ['GET', '/signing-keys'],
      ['POST', '/signing-keys/rotate'],
      ['GET', '/audit-checkpoint-key'],
      ['POST', '/tenant-imports', {}],
      ['POST', '/portal-links', {}],
    ];
    const operatorOnly = mountedRoutes(s.gh.app).filter(
      (r) => r.includes(' /admin/v1/') && !r.includes(' /admin/v1/tenants/:tenantId'),
    );
    expect([...new Set(calls.map(template))].sort()).toEqual([...new Set(operatorOnly)].sort());
    for (const [method, path, body] of calls) {
      const res = await s.admin(acmeToken, method, path, body);
      expect({ call: `${method} ${path}`, status: res.status }).toEqual({
        call: `${method} ${path}`,
        status: 403,
      });
      expect(await res.json()).toMatchObject({ code: 'forbidden' });
    }
    expect(await platform()).toEqual(before);
  });

  it('refuses an admin-console token re-signed by Gatehouse to name tenant B over A’s session', async () => {
    // Genuine signature, but `tid` names Globex while `sid` is Acme's session:
    // liveSession's idor check must answer null, so the resolver answers 401.
    const forged = await resignWithGatehouseKey(s.gh.keys, acmeToken, { tid: globex.tenantId });
    const before = await tenantSnapshot(t, globex.tenantId);
    for (const [method, path] of [
      ['GET', `/tenants/${globex.tenantId}`],
      ['DELETE', `/tenants/${globex.tenantId}/scim-tokens/${g.scimTokenId}`],
    ] as const) {
      const res = await s.admin(forged, method, path);
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toMatch(/^Bearer/);
    }
    expect(await tenantSnapshot(t, globex.tenantId)).toEqual(before);
  });
});
