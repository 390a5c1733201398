import { X509Certificate } from 'node:crypto';
import request from 'supertest';
import { runMetadataSweep } from '../../src/connections/metadata-refresh-sweep.js';
import { createHttpMetrics } from '../../src/http/metrics.js';
import { outboundPolicy } from '../../src/outbound/pinned-request.js';
import { startWebhookDelivery, type WebhookDelivery } from '../../src/webhooks/webhook-delivery.js';
import { buildTestApp, type TestApp } from '../support/app.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { auditEvents } from '../support/sso-factories.js';
import {
  outboxRows,
  registerWebhookApp,
  startWebhookReceiver,
  type WebhookReceiver,
} from '../webhooks/support.js';
import { certificateUntil, metadataXml } from './metadata-refresh-support.js';

/**
 * Issue 16: an IdP certificate expiring within 30 days (or expired) raises a
 * `connection.certificate_expiring` webhook event once per threshold, shows
 * as a warning in the admin API's connection view and counts in the
 * `gatehouse_connection_certificates_expiring` gauge — for connections
 * imported from XML too (no metadata URL).
 */
const DAY = 24 * 3600 * 1000;
let t: TestDatabase;
let a: TestApp;
let receiver: WebhookReceiver;
let worker: WebhookDelivery;

beforeAll(async () => {
  t = await createTestDatabase();
  a = buildTestApp(t);
  receiver = await startWebhookReceiver();
  receiver.secret = (await registerWebhookApp(t.db, a.secrets.masterKey, receiver.url)).secret;
  worker = startWebhookDelivery({
    db: t.db,
    masterKey: a.secrets.masterKey,
    pollIntervalMs: 50,
    retryBaseMs: 20,
  });
});
afterAll(async () => {
  await worker.stop();
  await receiver.close();
  await t.close();
});

const op = () => request.agent(a.app).set('Authorization', `Bearer ${a.secrets.adminToken}`);

async function samlConnection(slug: string, certificatePem: string) {
  const tenantId = (await op().post('/admin/v1/tenants').send({ slug, name: slug })).body.id as string;
  const res = await op()
    .post(`/admin/v1/tenants/${tenantId}/connections`)
    .send({
      type: 'saml',
      name: 'IdP',
      metadata_xml: metadataXml(`https://${slug}.idp.test/metadata`, `https://${slug}.idp.test/sso`, [
        certificatePem,
      ]),
    });
  expect(res.status).toBe(201);
  return { tenantId, connectionId: res.body.id as string };
}

const sweep = (now: Date) =>
  runMetadataSweep(
    { db: t.db, fetch: outboundPolicy(a.config.outboundFetch), overlapMs: 7 * DAY, intervalMs: DAY },
    now,
  );

describe('IdP certificate expiry', () => {
  it('announces a certificate expiring in 10 days once, warns in the API view and counts it in the gauge', async () => {
    const pem = await certificateUntil(new Date(Date.now() + 10 * DAY), 'soon');
    const fingerprint = new X509Certificate(pem).fingerprint256;
    const soon = await samlConnection('soon', pem);
    // A healthy certificate elsewhere: no notice, no warning.
    const fine = await samlConnection(
      'fine',
      await certificateUntil(new Date(Date.now() + 400 * DAY), 'fine'),
    );

    await sweep(new Date());
    await sweep(new Date());
    await receiver.waitFor(1);
    // Exactly one event was ever queued for it: the outbox is the truth, whatever arrived so far.
    expect(
      (await outboxRows(t.db, soon.tenantId)).filter(
        (r) => r.event_type === 'connection.certificate_expiring',
      ),
    ).toHaveLength(1);
    const notices = receiver.ofType('connection.certificate_expiring');
    expect(notices).toHaveLength(1);
    expect(notices[0]?.verified).toBe(true);
    expect(notices[0]?.event).toMatchObject({
      tenant_id: soon.tenantId,
      data: {
        connection_id: soon.connectionId,
        fingerprint_sha256: fingerprint,
        threshold: '30d',
        expired: false,
      },
    });
    expect(await auditEvents(t.db, soon.tenantId, 'connection.certificate_expiring')).toHaveLength(1);
    expect(await auditEvents(t.db, fine.tenantId, 'connection.certificate_expiring')).toHaveLength(0);

    const view = (await op().get(`/admin/v1/tenants/${soon.tenantId}/connections/${soon.connectionId}`)).body;
    expect(view.warnings).toEqual([
      expect.objectContaining({ code: 'certificate_expiring', fingerprint, expired: false, days_left: 9 }),
    ]);
    expect(view.warnings[0].not_after).toBe(new Date(new X509Certificate(pem).validTo).toISOString());
    const fineView = (await op().get(`/admin/v1/tenants/${fine.tenantId}/connections/${fine.connectionId}`))
      .body;
    expect(fineView.warnings).toEqual([]);

    const metrics = createHttpMetrics({ db: t.db });
    try {
      const text = await metrics.registry.getSingleMetricAsString(
        'gatehouse_connection_certificates_expiring',
      );
      expect(text).toContain('gatehouse_connection_certificates_expiring{status="within_30d"} 1');
      expect(text).toContain('gatehouse_connection_certificates_expiring{status="within_7d"} 0');
      expect(text).toContain('gatehouse_connection_certificates_expiring{status="expired"} 0');
    } finally {
      metrics.close();
    }
  });

  it('sends the 7-day and the expired notices later, each once', async () => {
    const pem = await certificateUntil(new Date(Date.now() + 10 * DAY), 'later');
    const c = await samlConnection('later', pem);
    const ofConnection = () =>
      receiver
        .ofType('connection.certificate_expiring')
        .filter((w) => w.event.data.connection_id === c.connectionId);

    await sweep(new Date());
    await sweep(new Date(Date.now() + 4 * DAY));
    await sweep(new Date(Date.now() + 11 * DAY));
    await sweep(new Date(Date.now() + 12 * DAY));
    const until = Date.now() + 5000;
    while (ofConnection().length < 3 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    expect(
      ofConnection()
        .map((w) => String(w.event.data.threshold))
        .sort(),
    ).toEqual(['30d', '7d', 'expired']);
  });
});
