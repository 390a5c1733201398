import { randomBytes } from 'node:crypto';
import { createUser } from '../../src/directory/users.service.js';
import { startWebhookDelivery, type WebhookDelivery } from '../../src/webhooks/webhook-delivery.js';
import { buildAdminTestApp, type AdminTestApp } from '../support/admin.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { createTenant } from '../support/factories.js';
import { loopbackCertificate, startLocalServer, type LocalServer } from '../support/local-http.js';
import { outboxRows, registerWebhookApp } from './support.js';

/**
 * Issue 8: the URLs an operator registers for Gatehouse to call or send
 * browsers to — webhook_url, backchannel_logout_uri, initiate_login_uri — go
 * through the address rule of metadata fetches (src/outbound/address-policy.ts):
 * refused at registration when they name a private, loopback, link-local or
 * cloud-metadata address (unless GATEHOUSE_OUTBOUND_ALLOWED_NETWORKS or the
 * development setting allows it), and checked again at every delivery, on
 * the address the socket actually connects to (a DNS answer can change after
 * registration). Real HTTPS servers on loopback play the targets.
 */
let t: TestDatabase;
let strict: AdminTestApp;
let tls: { key: string; cert: string };
let target: LocalServer;
const posts: string[] = [];
const masterKey = randomBytes(32);
const workers: WebhookDelivery[] = [];

beforeAll(async () => {
  t = await createTestDatabase();
  strict = buildAdminTestApp(t);
  tls = await loopbackCertificate();
  target = await startLocalServer(
    {
      '/hooks': (req, res) => {
        posts.push(req.method ?? '');
        req.resume();
        res.writeHead(200).end();
      },
    },
    tls,
  );
});
afterEach(async () => {
  for (const w of workers.splice(0)) await w.stop();
});
afterAll(async () => {
  await target.close();
  await t.close();
});

const appCount = async () =>
  Number(
    (await t.db.withPlatform((em) => em.query<{ n: string }[]>('SELECT count(*) AS n FROM apps')))[0]?.n,
  );

const body = (extra: Record<string, unknown>) => ({
  name: 'Main app',
  redirect_uris: ['https://app.example.com/callback'],
  ...extra,
});

describe('operator URLs at registration', () => {
  it.each([
    ['webhook_url', 'loopback', 'https://127.0.0.1:8443/hooks'],
    ['webhook_url', 'the cloud metadata service', 'https://169.254.169.254/latest/meta-data'],
    ['webhook_url', 'a private network', 'https://10.1.2.3/hooks'],
    ['webhook_url', 'IPv6 loopback', 'https://[::1]/hooks'],
    ['webhook_url', 'an IPv4-mapped private address', 'https://[::ffff:192.168.0.1]/hooks'],
    ['webhook_url', 'a name resolving to loopback', 'https://localhost/hooks'],
    ['backchannel_logout_uri', 'a private network', 'https://192.168.1.10/logout'],
    ['backchannel_logout_uri', 'link-local', 'https://169.254.10.10/logout'],
    ['initiate_login_uri', 'unique-local IPv6', 'https://[fd00::1]/start'],
  ])('refuses %s on %s (400, nothing written)', async (field, _what, url) => {
    const before = await appCount();
    const res = await strict
      .op()
      .post('/admin/v1/apps')
      .send(body({ [field]: url }));
    expect(res.status).toBe(400);
    expect(res.body.code).toBe('bad_request');
    expect(String(res.body.message)).toContain(field);
    expect(await appCount()).toBe(before);
  });

  it('refuses the same on PATCH, leaving the app as it was', async () => {
    const created = await strict
      .op()
      .post('/admin/v1/apps')
      .send(body({ webhook_url: 'https://hooks.example.com/x' }))
      .expect(201);
    const id = created.body.client_id as string;
    const res = await strict
      .op()
      .patch(`/admin/v1/apps/${id}`)
      .send({ backchannel_logout_uri: 'https://169.254.169.254/' });
    expect(res.status).toBe(400);
    const app = await strict.op().get(`/admin/v1/apps/${id}`).expect(200);
    expect(app.body.backchannel_logout_uri).toBeNull();
  });

  it('accepts a public name (and one that does not resolve yet: checked again at delivery)', async () => {
    await strict
      .op()
      .post('/admin/v1/apps')
      .send(
        body({
          webhook_url: 'https://hooks.example.com/x',
          initiate_login_uri: 'https://app.example.com/start',
        }),
      )
      .expect(201);
  });

  it('accepts loopback over https when the operator allows that network', async () => {
    const allowing = buildAdminTestApp(t, { GATEHOUSE_OUTBOUND_ALLOWED_NETWORKS: '127.0.0.0/8' });
    await allowing
      .op()
      .post('/admin/v1/apps')
      .send(body({ webhook_url: `${target.url}/hooks`, backchannel_logout_uri: `${target.url}/hooks` }))
      .expect(201);
    // http stays refused outside the development setting.
    const http = await allowing
      .op()
      .post('/admin/v1/apps')
      .send(body({ webhook_url: 'http://127.0.0.1:9/hooks' }));
    expect(http.status).toBe(400);
  });
});

describe('operator URLs at delivery', () => {
  // Apps registered above (under another master key) stop receiving: only this test's app does.
  beforeAll(() => t.db.withPlatform((em) => em.query('UPDATE apps SET webhook_url = NULL')));

  it('does not deliver a webhook to an address the rule refuses, whatever was registered', async () => {
    // As if the name had resolved to a public address at registration: the row names loopback now.
    await registerWebhookApp(t.db, masterKey, `${target.url}/hooks`);
    const tenantId = await createTenant(t.db);
    await t.db.withTenant(tenantId, (em) =>
      createUser(em, tenantId, {
        userName: 'rebind@acme.test',
        email: 'rebind@acme.test',
        givenName: null,
        familyName: null,
        displayName: null,
        externalId: null,
        attributes: {},
      }),
    );
    const sent = posts.length;
    const w = startWebhookDelivery({
      db: t.db,
      masterKey,
      pollIntervalMs: 50,
      retryBaseMs: 20,
      maxAttempts: 2,
      outbound: { allowPrivate: false, allowedNetworks: [], ca: tls.cert },
    });
    workers.push(w);
    const until = Date.now() + 5000;
    while ((await outboxRows(t.db, tenantId)).some((r) => r.status !== 'failed')) {
      if (Date.now() > until) throw new Error('the webhook was not given up');
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(posts.length).toBe(sent);
    const [row] = await t.db.withTenant(tenantId, (em) =>
      em.query<{ last_error: string }[]>('SELECT last_error FROM webhook_outbox'),
    );
    expect(row?.last_error).toMatch(/outbound call refused: 127\.0\.0\.1 resolves to a private, loopback/);
    await w.stop();
    workers.splice(0);

    // The operator allows the network: the next event goes out over https to that same server.
    await t.db.withTenant(tenantId, (em) =>
      createUser(em, tenantId, {
        userName: 'allowed@acme.test',
        email: 'allowed@acme.test',
        givenName: null,
        familyName: null,
        displayName: null,
        externalId: null,
        attributes: {},
      }),
    );
    workers.push(
      startWebhookDelivery({
        db: t.db,
        masterKey,
        pollIntervalMs: 50,
        retryBaseMs: 20,
        outbound: { allowPrivate: false, allowedNetworks: ['127.0.0.1/32'], ca: tls.cert },
      }),
    );
    const deadline = Date.now() + 5000;
    while (!(await outboxRows(t.db, tenantId)).some((r) => r.status === 'delivered')) {
      if (Date.now() > deadline) throw new Error('the webhook was not delivered');
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(posts.length).toBe(sent + 1);
  });
});
