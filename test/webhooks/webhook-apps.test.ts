import { open } from '../../src/config/secret-box.js';
import { PLATFORM_TENANT_ID } from '../../src/db/database.js';
import { openWebhookSecrets, signatureHeader } from '../../src/webhooks/webhook-secrets.js';
import { buildAdminTestApp, type AdminTestApp } from '../support/admin.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { verifyGatehouseSignature } from './support.js';

let t: TestDatabase;
let a: AdminTestApp;

beforeAll(async () => {
  t = await createTestDatabase();
  a = buildAdminTestApp(t);
});
afterAll(() => t.close());

const SECRET = /^gh_whsec_[A-Za-z0-9_-]{43}$/;
const register = (body: Record<string, unknown> = {}) =>
  a
    .op()
    .post('/admin/v1/apps')
    .send({ name: 'Main app', redirect_uris: ['https://app.example.com/callback'], ...body });
const sealedRows = (appId: string) =>
  t.db.withPlatform((em) =>
    em.query<{ id: string; secret_sealed: string; expires_at: Date | null }[]>(
      'SELECT id, secret_sealed, expires_at FROM app_webhook_secrets WHERE app_id = $1 ORDER BY created_at',
      [appId],
    ),
  );
const liveSecrets = (appId: string) =>
  t.db.withPlatform((em) => openWebhookSecrets(em, a.secrets.masterKey, appId, new Date()));

describe('admin API: app webhooks', () => {
  it('registers a webhook URL and shows its signing secret once, stored sealed with the master key', async () => {
    const res = await register({ webhook_url: 'https://app.example.com/webhooks' }).expect(201);
    expect(res.body.webhook_url).toBe('https://app.example.com/webhooks');
    expect(res.body.webhook_secret).toMatch(SECRET);
    const [row] = await sealedRows(res.body.client_id);
    expect(row?.secret_sealed).not.toContain(res.body.webhook_secret);
    expect(
      open(
        a.secrets.masterKey,
        row?.secret_sealed ?? '',
        `app-webhook-secret:${res.body.client_id}:${row?.id}`,
      ),
    ).toBe(res.body.webhook_secret);
    const got = await a.op().get(`/admin/v1/apps/${res.body.client_id}`).expect(200);
    expect(got.body.webhook_url).toBe('https://app.example.com/webhooks');
    expect(got.body.webhook_secret).toBeUndefined();
    expect(JSON.stringify(got.body)).not.toContain('gh_whsec_');
  });

  it('issues no webhook secret to an app without a webhook URL', async () => {
    const res = await register().expect(201);
    expect(res.body.webhook_url).toBeNull();
    expect(res.body.webhook_secret).toBeUndefined();
    expect(await sealedRows(res.body.client_id)).toEqual([]);
  });

  it.each([
    ['http on a public host', 'http://app.example.com/webhooks'],
    ['a fragment', 'https://app.example.com/webhooks#x'],
    ['credentials', 'https://user:pw@app.example.com/webhooks'],
    ['a relative URL', '/webhooks'],
  ])('refuses a webhook URL with %s (400, nothing written)', async (_what, url) => {
    const before = await t.db.withPlatform((em) =>
      em.query<{ n: string }[]>('SELECT count(*) AS n FROM apps'),
    );
    const res = await register({ webhook_url: url });
    expect(res.status).toBe(400);
    expect(res.body.code).toBe('bad_request');
    const after = await t.db.withPlatform((em) =>
      em.query<{ n: string }[]>('SELECT count(*) AS n FROM apps'),
    );
    expect(after).toEqual(before);
  });

  it('refuses loopback without the development setting, accepts http on loopback with it', async () => {
    // Issue 8: operator URLs obey the outbound address rule (outbound-guard.security.test.ts).
    expect((await register({ webhook_url: 'http://127.0.0.1:4000/webhooks' })).status).toBe(400);
    const dev = buildAdminTestApp(t, { GATEHOUSE_ALLOW_PRIVATE_METADATA_URLS: 'true' });
    const res = await dev
      .op()
      .post('/admin/v1/apps')
      .send({
        name: 'Main app',
        redirect_uris: ['https://app.example.com/callback'],
        webhook_url: 'http://127.0.0.1:4000/webhooks',
      })
      .expect(201);
    expect(res.body.webhook_secret).toMatch(SECRET);
  });

  it('issues the secret when PATCH first sets a webhook URL, and not again when it changes', async () => {
    const id = (await register().expect(201)).body.client_id as string;
    const first = await a
      .op()
      .patch(`/admin/v1/apps/${id}`)
      .send({ webhook_url: 'https://app.example.com/hooks' })
      .expect(200);
    expect(first.body.webhook_secret).toMatch(SECRET);
    const second = await a
      .op()
      .patch(`/admin/v1/apps/${id}`)
      .send({ webhook_url: 'https://app.example.com/hooks/v2' })
      .expect(200);
    expect(second.body.webhook_url).toBe('https://app.example.com/hooks/v2');
    expect(second.body.webhook_secret).toBeUndefined();
    await a.op().patch(`/admin/v1/apps/${id}`).send({ webhook_url: null }).expect(200);
    expect((await a.op().get(`/admin/v1/apps/${id}`)).body.webhook_url).toBeNull();
  });

  it('rotates the secret with an overlap in which deliveries carry a signature for each', async () => {
    const created = await register({ webhook_url: 'https://app.example.com/webhooks' }).expect(201);
    const id = created.body.client_id as string;
    const old = created.body.webhook_secret as string;
    const rotated = await a.op().post(`/admin/v1/apps/${id}/webhook-secret`).send({}).expect(201);
    expect(rotated.body).toEqual({
      client_id: id,
      webhook_secret: expect.stringMatching(SECRET),
      secret_id: expect.any(String),
      previous_secrets_expire_at: expect.any(String),
    });
    const fresh = rotated.body.webhook_secret as string;
    expect(fresh).not.toBe(old);

    const body = JSON.stringify({ id: 'e', type: 'user.created' });
    const now = Math.floor(Date.now() / 1000);
    const header = signatureHeader(await liveSecrets(id), body, now);
    expect(header.split(',').filter((p) => p.startsWith('v1='))).toHaveLength(2);
    expect(verifyGatehouseSignature(header, body, old, now)).toBe(true);
    expect(verifyGatehouseSignature(header, body, fresh, now)).toBe(true);

    // No overlap: only the newest secret signs from now on.
    const again = await a
      .op()
      .post(`/admin/v1/apps/${id}/webhook-secret`)
      .send({ overlap_seconds: 0 })
      .expect(201);
    const only = signatureHeader(await liveSecrets(id), body, now);
    expect(verifyGatehouseSignature(only, body, again.body.webhook_secret, now)).toBe(true);
    expect(verifyGatehouseSignature(only, body, fresh, now)).toBe(false);
    expect(verifyGatehouseSignature(only, body, old, now)).toBe(false);

    const audit = await t.db.withTenant(PLATFORM_TENANT_ID, (em) =>
      em.query<{ action: string; after: unknown }[]>(
        "SELECT action, after FROM audit_events WHERE action = 'app.webhook_secret_rotated' AND target_id = $1",
        [id],
      ),
    );
    expect(audit).toHaveLength(2);
    expect(JSON.stringify(audit)).not.toContain('gh_whsec_');
  });

  it('answers 404 for an unknown or deleted app, 400 for unknown fields, 403 to a tenant admin', async () => {
    await a
      .op()
      .post('/admin/v1/apps/00000000-0000-4000-8000-000000000000/webhook-secret')
      .send({})
      .expect(404);
    const id = (await register({ webhook_url: 'https://app.example.com/w' }).expect(201)).body
      .client_id as string;
    await a.op().post(`/admin/v1/apps/${id}/webhook-secret`).send({ secret: 'mine' }).expect(400);
    const tenantId = await a.createTenant('acme-webhooks', 'Acme');
    await a.tenantAdmin(tenantId, 'admin-1').post(`/admin/v1/apps/${id}/webhook-secret`).send({}).expect(403);
    await a.op().delete(`/admin/v1/apps/${id}`).expect(204);
    await a.op().post(`/admin/v1/apps/${id}/webhook-secret`).send({}).expect(404);
  });
});
