import { verifyAuditChain } from '../../src/audit/audit.service.js';
import { PLATFORM_TENANT_ID } from '../../src/db/database.js';
import { findApp, verifyClientSecret } from '../../src/apps/apps.service.js';
import { buildAdminTestApp, type AdminTestApp } from '../support/admin.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { createTenant } from '../support/factories.js';

let t: TestDatabase;
let a: AdminTestApp;
let acmeId: string;

beforeAll(async () => {
  t = await createTestDatabase();
  acmeId = await createTenant(t.db, 'acme');
  a = buildAdminTestApp(t);
});
afterAll(() => t.close());

const op = () => a.op();
const register = (body: Record<string, unknown> = {}) =>
  op()
    .post('/admin/v1/apps')
    .send({ name: 'Main app', redirect_uris: ['https://app.example.com/callback'], ...body });
const secretRows = (appId: string) =>
  t.db.withPlatform((em) =>
    em.query('SELECT secret_hash, expires_at FROM app_secrets WHERE app_id = $1', [appId]),
  );
const appCount = async () =>
  Number((await t.db.withPlatform((em) => em.query('SELECT count(*) AS n FROM apps')))[0].n);

describe('admin API: apps', () => {
  it('registers a confidential app and shows its secret once, stored argon2id-hashed', async () => {
    const res = await register({
      post_logout_redirect_uris: ['https://app.example.com/'],
      backchannel_logout_uri: 'https://app.example.com/backchannel-logout',
      token_signing_alg: 'EdDSA',
    });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({
      name: 'Main app',
      client_type: 'confidential',
      redirect_uris: ['https://app.example.com/callback'],
      post_logout_redirect_uris: ['https://app.example.com/'],
      backchannel_logout_uri: 'https://app.example.com/backchannel-logout',
      token_signing_alg: 'EdDSA',
    });
    const { client_id: clientId, client_secret: secret } = res.body;
    expect(clientId).toMatch(/^[0-9a-f-]{36}$/);
    expect(secret).toMatch(/^gh_secret_[0-9a-f]{32}_[A-Za-z0-9_-]{43}$/);

    const [row] = await secretRows(clientId);
    expect(row.secret_hash).toMatch(/^\$argon2id\$/);
    expect(row.secret_hash).not.toContain(secret);

    const got = await op().get(`/admin/v1/apps/${clientId}`);
    expect(got.status).toBe(200);
    expect(got.body.client_secret).toBeUndefined();
    expect(got.body.secrets).toEqual([
      { id: expect.any(String), created_at: expect.any(String), expires_at: null },
    ]);
    const list = await op().get('/admin/v1/apps');
    expect(JSON.stringify(list.body)).not.toContain(secret);

    const now = new Date();
    expect(await verifyClientSecret(t.db, clientId, secret, now)).toBe(true);
    expect(await verifyClientSecret(t.db, clientId, `${secret.slice(0, -1)}x`, now)).toBe(false);
    expect(await verifyClientSecret(t.db, clientId, 'gh_secret_nope', now)).toBe(false);
    expect((await findApp(t.db, clientId))?.tokenSigningAlg).toBe('EdDSA');
  });

  it("refuses one app's secret for another app", async () => {
    const one = (await register()).body;
    const two = (await register()).body;
    expect(await verifyClientSecret(t.db, two.client_id, one.client_secret, new Date())).toBe(false);
  });

  it('registers a public client without a secret', async () => {
    const res = await register({ client_type: 'public', redirect_uris: ['http://127.0.0.1:8765/callback'] });
    expect(res.status).toBe(201);
    expect(res.body.client_secret).toBeUndefined();
    expect(await secretRows(res.body.client_id)).toEqual([]);
    const rotate = await op().post(`/admin/v1/apps/${res.body.client_id}/secrets`).send({});
    expect(rotate.status).toBe(400);
    expect(rotate.body.message).toMatch(/public clients have no client secret/);
  });

  it.each([
    'https://app.example.com/callback',
    'https://App.Example.com:8443/cb?tenant=acme',
    'http://localhost:3000/callback',
    'http://127.0.0.1/callback',
    'http://[::1]:8080/callback',
  ])('accepts the redirect URI %s, stored as the exact string', async (uri) => {
    const res = await register({ redirect_uris: [uri] });
    expect(res.status).toBe(201);
    expect(res.body.redirect_uris).toEqual([uri]);
  });

  it.each([
    ['http://app.example.com/callback', /must use https/],
    ['https://app.example.com/callback#frag', /must not contain a fragment/],
    ['https://app.example.com/callback#', /must not contain a fragment/],
    ['/callback', /must be an absolute URL/],
    ['app.example.com/callback', /must be an absolute URL/],
    ['https://*.example.com/callback', /must not contain a wildcard/],
    ['https://user:pw@app.example.com/callback', /must not contain credentials/],
    ['https://app.example.com/call back', /whitespace or control characters/],
    ['javascript:alert(1)', /must use https/],
    ['com.example.app:/callback', /must use https/],
    ['http://localhost.evil.com/callback', /must use https/],
  ])('refuses the redirect URI %s, storing nothing', async (uri, message) => {
    const before = await appCount();
    const res = await register({ redirect_uris: ['https://app.example.com/ok', uri] });
    expect(res.status).toBe(400);
    expect(res.body.message).toMatch(/^redirect_uris\.1: /);
    expect(res.body.message).toMatch(message);
    expect(await appCount()).toBe(before);
  });

  it('refuses other bad bodies with 400', async () => {
    for (const body of [
      { redirect_uris: [] },
      { redirect_uris: undefined },
      { token_signing_alg: 'HS256' },
      { client_type: 'spa' },
      { backchannel_logout_uri: 'https://app.example.com/logout#x' },
      { scopes: ['openid'] },
    ]) {
      const res = await register(body);
      expect(res.status).toBe(400);
      expect(res.body.code).toBe('bad_request');
    }
  });

  it('rotates the secret: the previous one works until the overlap ends, then not', async () => {
    const { client_id: clientId, client_secret: first } = (await register()).body;
    const rotated = await op().post(`/admin/v1/apps/${clientId}/secrets`).send({ overlap_seconds: 3600 });
    expect(rotated.status).toBe(201);
    const second = rotated.body.client_secret as string;
    expect(second).toMatch(/^gh_secret_/);
    expect(second).not.toBe(first);
    const expiresAt = new Date(rotated.body.previous_secrets_expire_at);

    const justBefore = new Date(expiresAt.getTime() - 1000);
    const atExpiry = expiresAt;
    expect(await verifyClientSecret(t.db, clientId, first, justBefore)).toBe(true);
    expect(await verifyClientSecret(t.db, clientId, first, atExpiry)).toBe(false);
    expect(await verifyClientSecret(t.db, clientId, second, atExpiry)).toBe(true);

    // A later rotation with a longer overlap never extends an earlier expiry.
    const third = await op().post(`/admin/v1/apps/${clientId}/secrets`).send({ overlap_seconds: 86400 });
    const rows = await t.db.withPlatform((em) =>
      em.query('SELECT expires_at FROM app_secrets WHERE app_id = $1 ORDER BY created_at', [clientId]),
    );
    expect(rows.map((r: { expires_at: Date | null }) => r.expires_at?.toISOString() ?? null)).toEqual([
      expiresAt.toISOString(),
      third.body.previous_secrets_expire_at,
      null,
    ]);
    const listed = await op().get(`/admin/v1/apps/${clientId}`);
    expect(listed.body.secrets).toHaveLength(3);
  });

  it('rotates with the default overlap of one day, or none', async () => {
    const { client_id: clientId, client_secret: first } = (await register()).body;
    const res = await op().post(`/admin/v1/apps/${clientId}/secrets`);
    const expires = Date.parse(res.body.previous_secrets_expire_at);
    expect(expires - Date.now()).toBeGreaterThan(86_000_000);
    expect(expires - Date.now()).toBeLessThanOrEqual(86_400_000);
    await op().post(`/admin/v1/apps/${clientId}/secrets`).send({ overlap_seconds: 0 });
    expect(await verifyClientSecret(t.db, clientId, first, new Date())).toBe(false);
    const bad = await op().post(`/admin/v1/apps/${clientId}/secrets`).send({ overlap_seconds: -1 });
    expect(bad.status).toBe(400);
  });

  it('updates an app, refusing bad URIs and fields that cannot change', async () => {
    const { client_id: clientId } = (await register()).body;
    const ok = await op()
      .patch(`/admin/v1/apps/${clientId}`)
      .send({ name: 'Renamed', redirect_uris: ['https://new.example.com/cb'], backchannel_logout_uri: null });
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ name: 'Renamed', redirect_uris: ['https://new.example.com/cb'] });
    for (const body of [{ redirect_uris: ['http://new.example.com/cb'] }, { client_type: 'public' }, {}]) {
      expect((await op().patch(`/admin/v1/apps/${clientId}`).send(body)).status).toBe(400);
    }
    expect((await op().get(`/admin/v1/apps/${clientId}`)).body.redirect_uris).toEqual([
      'https://new.example.com/cb',
    ]);
  });

  it('soft-deletes an app: gone from reads, its secrets stop working', async () => {
    const { client_id: clientId, client_secret: secret } = (await register()).body;
    expect((await op().delete(`/admin/v1/apps/${clientId}`)).status).toBe(204);
    expect((await op().get(`/admin/v1/apps/${clientId}`)).status).toBe(404);
    expect((await op().delete(`/admin/v1/apps/${clientId}`)).status).toBe(404);
    expect(await findApp(t.db, clientId)).toBeNull();
    expect(await verifyClientSecret(t.db, clientId, secret, new Date())).toBe(false);
    const list = await op().get('/admin/v1/apps?limit=100');
    expect(list.body.data.map((x: { client_id: string }) => x.client_id)).not.toContain(clientId);
    const [row] = await t.db.withPlatform((em) =>
      em.query('SELECT deleted_at FROM apps WHERE id = $1', [clientId]),
    );
    expect(row.deleted_at).not.toBeNull();
  });

  it('answers 404 for unknown and malformed app ids', async () => {
    expect((await op().get('/admin/v1/apps/00000000-0000-4000-8000-000000000000')).status).toBe(404);
    expect((await op().get('/admin/v1/apps/not-a-uuid')).status).toBe(404);
    expect((await op().post('/admin/v1/apps/not-a-uuid/secrets').send({})).status).toBe(404);
    expect(await findApp(t.db, 'not-a-uuid')).toBeNull();
  });

  it('answers 403 to tenant admins on every apps endpoint, changing nothing', async () => {
    const { client_id: clientId } = (await register()).body;
    const before = await appCount();
    const asTenantAdmin = () => a.tenantAdmin(acmeId, 'u-acme-admin');
    const answers = [
      await asTenantAdmin()
        .post('/admin/v1/apps')
        .send({ name: 'x', redirect_uris: ['https://x.example/cb'] }),
      await asTenantAdmin().get('/admin/v1/apps'),
      await asTenantAdmin().get(`/admin/v1/apps/${clientId}`),
      await asTenantAdmin().patch(`/admin/v1/apps/${clientId}`).send({ name: 'pwned' }),
      await asTenantAdmin().delete(`/admin/v1/apps/${clientId}`),
      await asTenantAdmin().post(`/admin/v1/apps/${clientId}/secrets`).send({}),
    ];
    expect(answers.map((r) => r.status)).toEqual([403, 403, 403, 403, 403, 403]);
    expect(answers[0]!.body.code).toBe('forbidden');
    expect(await appCount()).toBe(before);
    expect((await op().get(`/admin/v1/apps/${clientId}`)).body.name).toBe('Main app');
  });

  it('audits every change on the platform chain, without secrets', async () => {
    const events = await t.db.withTenant(PLATFORM_TENANT_ID, (em) =>
      em.query('SELECT action, actor_type, before, after FROM audit_events ORDER BY seq'),
    );
    const actions = new Set(events.map((e: { action: string }) => e.action));
    expect([...actions].sort()).toEqual(['app.created', 'app.deleted', 'app.secret_rotated', 'app.updated']);
    expect(events.every((e: { actor_type: string }) => e.actor_type === 'operator')).toBe(true);
    const text = JSON.stringify(events);
    expect(text).not.toMatch(/gh_secret_/);
    expect(text).not.toMatch(/\$argon2id\$/);
    expect(await verifyAuditChain(t.db, PLATFORM_TENANT_ID)).toMatchObject({ valid: true });
  });
});
