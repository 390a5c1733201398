import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { createUser } from '../../src/directory/users.service.js';
import { startWebhookDelivery, type WebhookDelivery } from '../../src/webhooks/webhook-delivery.js';
import { buildAdminTestApp, type AdminTestApp } from '../support/admin.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { fuzzRuns, fuzzSeed } from '../scim/hardening-support.js';
import {
  outboxRows,
  registerWebhookApp,
  startWebhookReceiver,
  type WebhookReceiver,
} from '../webhooks/support.js';

/**
 * GET /admin/v1/tenants/{id}/deliveries/{kind} and POST …/{deliveryId}/retry
 * (issue 11, "Operator endpoints for deliveries"): a webhook the receiver
 * refused until the outbox gave up is listed with its status, attempts and
 * last error, sent again on request, and then delivered.
 */
let t: TestDatabase;
let a: AdminTestApp;
let receiver: WebhookReceiver;
let worker: WebhookDelivery;
let tenantId: string;

const userFields = (userName: string) => ({
  userName,
  email: userName,
  givenName: null,
  familyName: null,
  displayName: null,
  externalId: null,
  attributes: {},
});

async function waitFor(check: () => Promise<boolean>, what: string): Promise<void> {
  const until = Date.now() + 10_000;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

beforeAll(async () => {
  t = await createTestDatabase();
  a = buildAdminTestApp(t);
  // The receiver refuses once: with one attempt allowed, the outbox gives the event up.
  receiver = await startWebhookReceiver([500]);
  const app = await registerWebhookApp(t.db, a.secrets.masterKey, receiver.url);
  receiver.secret = app.secret;
  tenantId = await a.createTenant('acme', 'Acme');
  worker = startWebhookDelivery({
    db: t.db,
    masterKey: a.secrets.masterKey,
    pollIntervalMs: 50,
    retryBaseMs: 20,
    maxAttempts: 1,
  });
  await t.db.withTenant(tenantId, (em) => createUser(em, tenantId, userFields('ada@acme.test')));
  await waitFor(
    async () => (await outboxRows(t.db, tenantId)).some((r) => r.status === 'failed'),
    'the event to be given up',
  );
});
afterAll(async () => {
  await worker.stop();
  await receiver.close();
  await t.close();
});

describe('deliveries', () => {
  it('lists a given-up webhook with its attempts and last error, never its payload', async () => {
    const res = await a
      .op()
      .get(`/admin/v1/tenants/${tenantId}/deliveries/webhooks?status=failed`)
      .expect(200);
    expect(res.body).toMatchObject({ total: 1, limit: 50, offset: 0 });
    expect(res.body.data).toEqual([
      expect.objectContaining({
        status: 'failed',
        attempts: 1,
        last_error: 'HTTP 500',
        event_type: 'user.created',
        next_attempt_at: null,
      }),
    ]);
    expect(JSON.stringify(res.body)).not.toContain('ada@acme.test');
    // Other statuses and the other outbox: nothing.
    expect(
      (await a.op().get(`/admin/v1/tenants/${tenantId}/deliveries/webhooks?status=delivered`)).body,
    ).toMatchObject({ total: 0, data: [] });
    expect(
      (await a.op().get(`/admin/v1/tenants/${tenantId}/deliveries/backchannel-logouts`).expect(200)).body,
    ).toMatchObject({ total: 0, data: [] });
  });

  it('sends a given-up delivery again: 202, queued with a fresh budget, delivered, and audited', async () => {
    const [failed] = (await a.op().get(`/admin/v1/tenants/${tenantId}/deliveries/webhooks`)).body.data as {
      id: string;
    }[];
    const id = String(failed?.id);
    const res = await a
      .op()
      .post(`/admin/v1/tenants/${tenantId}/deliveries/webhooks/${id}/retry`)
      .expect(202);
    expect(res.body).toMatchObject({ id, status: 'pending', attempts: 0 });

    // The NOTIFY at commit wakes the worker; the receiver now answers 200.
    await receiver.waitFor(1);
    await waitFor(
      async () => (await outboxRows(t.db, tenantId)).every((r) => r.status === 'delivered'),
      'the delivery after the retry',
    );
    expect(receiver.received[0]?.verified).toBe(true);
    expect(receiver.received[0]?.event).toMatchObject({ type: 'user.created' });

    // A delivered one is not sent twice.
    const again = await a
      .op()
      .post(`/admin/v1/tenants/${tenantId}/deliveries/webhooks/${id}/retry`)
      .expect(409);
    expect(again.body).toMatchObject({ code: 'conflict' });

    const audit = await a.op().get(`/admin/v1/tenants/${tenantId}/audit-events`).expect(200);
    expect(JSON.stringify(audit.body)).toContain('delivery.retried');
  });

  it('answers 404 for an unknown delivery, an unknown kind and a malformed id; 400 for a bad status', async () => {
    const base = `/admin/v1/tenants/${tenantId}/deliveries`;
    await a.op().post(`${base}/webhooks/${randomUUID()}/retry`).expect(404);
    await a.op().post(`${base}/webhooks/not-a-uuid/retry`).expect(404);
    await a.op().get(`${base}/emails`).expect(404);
    await a
      .op()
      .get(`${base}/__proto__`)
      .expect((r) => expect([400, 404]).toContain(r.status));
    await a.op().get(`${base}/webhooks?status=lost`).expect(400);
  });

  it("lets the tenant's own admin read and retry, and answers another tenant's admin 404 changing nothing", async () => {
    const other = await a.createTenant('globex', 'Globex');
    const before = await outboxRows(t.db, tenantId);
    const [listed] = (await a.op().get(`/admin/v1/tenants/${tenantId}/deliveries/webhooks`)).body.data as {
      id: string;
    }[];
    const id = String(listed?.id);
    await a
      .tenantAdmin(tenantId, 'root')
      .get(`/admin/v1/tenants/${tenantId}/deliveries/webhooks`)
      .expect(200);
    await a.tenantAdmin(other, 'root').get(`/admin/v1/tenants/${tenantId}/deliveries/webhooks`).expect(404);
    await a
      .tenantAdmin(other, 'root')
      .post(`/admin/v1/tenants/${tenantId}/deliveries/webhooks/${id}/retry`)
      .expect(404);
    // Acme's delivery id under Globex's own path: RLS finds nothing.
    await a
      .tenantAdmin(other, 'root')
      .post(`/admin/v1/tenants/${other}/deliveries/webhooks/${id}/retry`)
      .expect(404);
    expect(await outboxRows(t.db, tenantId)).toEqual(before);
  });

  it('answers any kind, status, paging and id with 2xx or a 4xx that changes nothing — never 5xx (property)', async () => {
    const kinds = fc.oneof(
      fc.constantFrom('webhooks', 'backchannel-logouts', '__proto__', 'constructor', 'WEBHOOKS'),
      fc.string({ maxLength: 20 }),
    );
    const param = fc.oneof(
      fc.constantFrom(undefined, 'pending', 'delivered', 'failed'),
      fc.string({ maxLength: 12 }),
    );
    const number = fc.oneof(fc.integer({ min: -5, max: 300 }).map(String), fc.string({ maxLength: 8 }));
    const [known] = (await a.op().get(`/admin/v1/tenants/${tenantId}/deliveries/webhooks`)).body.data as {
      id: string;
    }[];
    const ids = fc.oneof(fc.uuid(), fc.constant(String(known?.id)), fc.string());
    await fc.assert(
      fc.asyncProperty(
        kinds,
        param,
        number,
        number,
        ids,
        fc.boolean(),
        async (kind, status, limit, offset, id, retry) => {
          const before = await outboxRows(t.db, tenantId);
          const base = `/admin/v1/tenants/${tenantId}/deliveries/${encodeURIComponent(kind)}`;
          const res = retry
            ? await a.op().post(`${base}/${encodeURIComponent(id)}/retry`)
            : await a
                .op()
                .get(base)
                .query({ ...(status === undefined ? {} : { status }), limit, offset });
          expect(res.status).toBeLessThan(500);
          if (res.status >= 400) {
            expect(res.body).toMatchObject({ code: expect.any(String), message: expect.any(String) });
            expect(await outboxRows(t.db, tenantId)).toEqual(before);
          } else if (!retry) {
            // Accepted ⇒ a page within the limit, of the status asked for.
            const rows = res.body.data as { status: string }[];
            expect(rows.length).toBeLessThanOrEqual(Number(limit));
            if (status !== undefined) for (const row of rows) expect(row.status).toBe(status);
          }
        },
      ),
      { numRuns: fuzzRuns(40), seed: fuzzSeed(0xde1) },
    );
    expect(Object.prototype).not.toHaveProperty('polluted');
  });
});
