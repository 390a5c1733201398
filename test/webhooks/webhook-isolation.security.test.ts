import { randomBytes, randomUUID } from 'node:crypto';
import { createUser, findUser, setUserStatus } from '../../src/directory/users.service.js';
import { startWebhookDelivery, type WebhookDelivery } from '../../src/webhooks/webhook-delivery.js';
import { issueToken, patchOp, scimClient, startNode, type ScimNode } from '../scim/support.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { createTenant } from '../support/factories.js';
import { outboxRows, registerWebhookApp, startWebhookReceiver, type WebhookReceiver } from './support.js';

/**
 * Webhook events are tenant data: the outbox is under forced RLS, each event
 * names its own tenant, and one tenant's credentials cannot cause or read
 * another tenant's events. (Apps are platform-level: an app receives every
 * tenant's events, each labelled with its tenant_id.)
 */
let t: TestDatabase;
let receiver: WebhookReceiver;
let worker: WebhookDelivery | undefined;
let acme: string;
let globex: string;
const masterKey = randomBytes(32);

const fields = (userName: string) => ({
  userName,
  email: userName,
  givenName: null,
  familyName: null,
  displayName: null,
  externalId: null,
  attributes: {},
});

beforeAll(async () => {
  t = await createTestDatabase();
  receiver = await startWebhookReceiver();
  receiver.secret = (await registerWebhookApp(t.db, masterKey, receiver.url)).secret;
  acme = await createTenant(t.db);
  globex = await createTenant(t.db);
  await t.db.withTenant(acme, (em) => createUser(em, acme, fields('ann@acme.test')));
  await t.db.withTenant(globex, (em) => createUser(em, globex, fields('gus@globex.test')));
});
afterAll(async () => {
  await worker?.stop();
  await receiver.close();
  await t.close();
});

describe('webhook outbox isolation', () => {
  it('shows a tenant only its own events, and nothing outside withTenant', async () => {
    const ofAcme = await outboxRows(t.db, acme);
    const ofGlobex = await outboxRows(t.db, globex);
    expect(ofAcme.map((r) => r.tenant_id)).toEqual([acme]);
    expect(ofGlobex.map((r) => r.tenant_id)).toEqual([globex]);
    expect(await t.asApp('SELECT * FROM webhook_outbox')).toEqual([]);
  });

  it("refuses writing or changing another tenant's events from inside a tenant", async () => {
    await expect(
      t.db.withTenant(acme, (em) =>
        em.query(
          `INSERT INTO webhook_outbox (tenant_id, event_id, event_type, app_id, payload)
           SELECT $1, $2, 'user.created', id, '{}'::jsonb FROM apps LIMIT 1`,
          [globex, randomUUID()],
        ),
      ),
    ).rejects.toThrow(/row-level security/);
    const [, changed] = await t.db.withTenant(acme, (em) =>
      em.query<[unknown[], number]>(`UPDATE webhook_outbox SET status = 'failed' WHERE tenant_id = $1`, [
        globex,
      ]),
    );
    expect(changed).toBe(0);
    expect((await outboxRows(t.db, globex)).map((r) => r.status)).toEqual(['pending']);
  });

  it('exposes only tenant ids through the due-tenants resolver', async () => {
    const due = await t.asApp<Record<string, unknown>>(
      'SELECT * FROM webhook_outbox_due_tenants(10) AS tenant_id',
    );
    expect(due.map((r) => Object.keys(r))).toEqual(due.map(() => ['tenant_id']));
    expect(due.map((r) => r.tenant_id).sort()).toEqual([acme, globex].sort());
  });

  it("refuses one tenant's SCIM token on another tenant's user: 404 and no event", async () => {
    let node: ScimNode | undefined;
    try {
      node = await startNode(t, { listen: false });
      const gus = await t.db.withTenant(globex, (em) =>
        em.query<{ id: string }[]>("SELECT id FROM users WHERE user_name = 'gus@globex.test'"),
      );
      const acmeScim = scimClient(node.app, acme, (await issueToken(t.db, acme)).token);
      const before = { acme: await outboxRows(t.db, acme), globex: await outboxRows(t.db, globex) };
      await acmeScim
        .patch(`/Users/${gus[0]?.id}`, patchOp({ op: 'replace', path: 'active', value: false }))
        .expect(404);
      await acmeScim.delete(`/Users/${gus[0]?.id}`).expect(404);
      expect(await outboxRows(t.db, acme)).toEqual(before.acme);
      expect(await outboxRows(t.db, globex)).toEqual(before.globex);
    } finally {
      await node?.close();
    }
  });

  it('delivers each tenant its events labelled with their own tenant_id', async () => {
    await t.db.withTenant(globex, async (em) => {
      const [row] = await em.query<{ id: string }[]>(
        "SELECT id FROM users WHERE user_name = 'gus@globex.test'",
      );
      const user = await findUser(em, row?.id ?? '', { lock: true });
      if (user) await setUserStatus(em, user, 'suspended', 'test_suspended');
    });
    worker = startWebhookDelivery({ db: t.db, masterKey, pollIntervalMs: 50 });
    await receiver.waitFor(3);
    const byTenant = receiver.received.map((w) => [w.event.tenant_id, w.event.type, w.event.data.user_name]);
    expect(byTenant).toEqual(
      expect.arrayContaining([
        [acme, 'user.created', 'ann@acme.test'],
        [globex, 'user.created', 'gus@globex.test'],
        [globex, 'user.deprovisioned', 'gus@globex.test'],
      ]),
    );
    expect(receiver.received.every((w) => w.verified)).toBe(true);
  });
});
