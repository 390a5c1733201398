import { randomBytes } from 'node:crypto';
import { startWebhookDelivery, type WebhookDelivery } from '../../src/webhooks/webhook-delivery.js';
import {
  createTenant,
  GROUP_SCHEMA,
  issueToken,
  newUser,
  patchOp,
  scimClient,
  startNode,
  type ScimClient,
  type ScimNode,
} from '../scim/support.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import {
  outboxRows,
  registerWebhookApp,
  startWebhookReceiver,
  verifyGatehouseSignature,
  type WebhookReceiver,
} from './support.js';

/**
 * Directory changes made through SCIM reach an app as signed webhook events:
 * queued in the SCIM request's transaction, delivered by the worker (woken by
 * NOTIFY, no polling here), verified by the receiver as an app would.
 */
let t: TestDatabase;
let node: ScimNode;
let worker: WebhookDelivery;
let receiver: WebhookReceiver;
let tenantId: string;
let c: ScimClient;
const masterKey = randomBytes(32);

beforeAll(async () => {
  t = await createTestDatabase();
  node = await startNode(t);
  receiver = await startWebhookReceiver();
  receiver.secret = (await registerWebhookApp(t.db, masterKey, receiver.url)).secret;
  worker = startWebhookDelivery({
    db: t.db,
    masterKey,
    notifications: node.notifications,
    pollIntervalMs: 600_000,
  });
  tenantId = await createTenant(t);
  c = scimClient(node.app, tenantId, (await issueToken(t.db, tenantId)).token);
});
afterAll(async () => {
  await worker.stop();
  await receiver.close();
  await node.close();
  await t.close();
});

/** The deliveries that arrive after `before` of them, once `count` more are in. */
async function next(before: number, count: number) {
  await receiver.waitFor(before + count);
  return receiver.received.slice(before);
}

describe('webhook events from SCIM', () => {
  it('delivers user.created as signed JSON that the app verifies, with the event id header', async () => {
    const before = receiver.received.length;
    const res = await c.post('/Users', newUser('ada@acme.test')).expect(201);
    const [delivery] = await next(before, 1);
    expect(delivery?.contentType).toMatch(/^application\/json/);
    expect(delivery?.verified).toBe(true);
    expect(delivery?.signature).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/);
    expect(delivery?.eventId).toBe(delivery?.event.id);
    expect(delivery?.event).toEqual({
      id: expect.stringMatching(/^[0-9a-f-]{36}$/),
      type: 'user.created',
      created_at: expect.any(String),
      tenant_id: tenantId,
      data: {
        object: 'user',
        id: res.body.id,
        user_name: 'ada@acme.test',
        email: 'ada@acme.test',
        email_verified: false,
        given_name: 'Given',
        family_name: 'Family',
        display_name: null,
        external_id: null,
        status: 'active',
        version: 1,
        created_at: expect.any(String),
        updated_at: expect.any(String),
      },
    });
  });

  it('fails verification with another secret, a tampered body or a stale timestamp', async () => {
    const before = receiver.received.length;
    await c.post('/Users', newUser('check@acme.test')).expect(201);
    const [d] = await next(before, 1);
    if (!d) throw new Error('no delivery');
    const t0 = Number(/t=(\d+)/.exec(d.signature)?.[1]);
    expect(verifyGatehouseSignature(d.signature, d.body, receiver.secret, t0)).toBe(true);
    expect(verifyGatehouseSignature(d.signature, d.body, 'gh_whsec_another', t0)).toBe(false);
    expect(
      verifyGatehouseSignature(d.signature, d.body.replace('check@', 'evil@'), receiver.secret, t0),
    ).toBe(false);
    expect(verifyGatehouseSignature(d.signature, d.body, receiver.secret, t0 + 301)).toBe(false);
  });

  it('sends user.deprovisioned exactly once for a deactivation, with the reason, and nothing for a repeat', async () => {
    const id = (await c.post('/Users', newUser('leaver@acme.test')).expect(201)).body.id as string;
    await receiver.waitFor(receiver.received.length);
    const deactivate = patchOp({ op: 'Replace', path: 'active', value: 'False' });
    await c.patch(`/Users/${id}`, deactivate).expect(200);
    await c.patch(`/Users/${id}`, deactivate).expect(200);
    // A later event proves the worker has caught up past both PATCHes.
    await c.patch(`/Users/${id}`, patchOp({ op: 'replace', path: 'active', value: true })).expect(200);
    await waitForType('user.reactivated', id);
    const deprovisioned = receiver.ofType('user.deprovisioned').filter((w) => w.event.data.id === id);
    expect(deprovisioned).toHaveLength(1);
    expect(deprovisioned[0]?.event.data).toMatchObject({ status: 'suspended', reason: 'scim_deactivated' });
    expect(deprovisioned[0]?.verified).toBe(true);
    expect(receiver.ofType('user.updated').filter((w) => w.event.data.id === id)).toEqual([]);
  });

  it('sends user.deprovisioned with reason scim_deleted for a DELETE', async () => {
    const id = (await c.post('/Users', newUser('gone@acme.test')).expect(201)).body.id as string;
    await c.delete(`/Users/${id}`).expect(204);
    const [event] = await waitForType('user.deprovisioned', id);
    expect(event?.data).toMatchObject({ status: 'deleted', reason: 'scim_deleted' });
  });

  it('sends user.updated for a profile change', async () => {
    const id = (await c.post('/Users', newUser('rename@acme.test')).expect(201)).body.id as string;
    await c
      .patch(`/Users/${id}`, patchOp({ op: 'replace', path: 'displayName', value: 'Renamed' }))
      .expect(200);
    const [event] = await waitForType('user.updated', id);
    expect(event?.data).toMatchObject({ display_name: 'Renamed', version: 2, status: 'active' });
  });

  it('sends group.created with its first members, group.updated for a membership PATCH, group.deleted', async () => {
    const alice = (await c.post('/Users', newUser('alice@acme.test')).expect(201)).body.id as string;
    const bob = (await c.post('/Users', newUser('bob@acme.test')).expect(201)).body.id as string;
    const group = await c
      .post('/Groups', { schemas: [GROUP_SCHEMA], displayName: 'Engineering', members: [{ value: alice }] })
      .expect(201);
    const groupId = group.body.id as string;
    const [created] = await waitForType('group.created', groupId);
    expect(created?.data).toMatchObject({
      object: 'group',
      display_name: 'Engineering',
      source: 'scim',
      members_added: [alice],
      members_removed: [],
    });

    await c
      .patch(
        `/Groups/${groupId}`,
        patchOp(
          { op: 'Add', path: 'members', value: [{ value: bob }] },
          { op: 'Remove', path: `members[value eq "${alice}"]` },
        ),
      )
      .expect(204);
    const [updated] = await waitForType('group.updated', groupId);
    expect(updated?.data).toMatchObject({ version: 2, members_added: [bob], members_removed: [alice] });

    await c.delete(`/Groups/${groupId}`).expect(204);
    const [deleted] = await waitForType('group.deleted', groupId);
    expect(deleted?.data).toMatchObject({ id: groupId, display_name: 'Engineering' });
  });

  it('queues no event for a SCIM request that fails', async () => {
    const id = (await c.post('/Users', newUser('taken@acme.test')).expect(201)).body.id as string;
    await waitForType('user.created', id);
    const queued = (await outboxRows(t.db, tenantId)).length;
    await c.post('/Users', newUser('TAKEN@acme.test')).expect(409);
    // A group whose members include an unknown user: 400, the group is not created either.
    await c
      .post('/Groups', {
        schemas: [GROUP_SCHEMA],
        displayName: 'Broken',
        members: [{ value: '00000000-0000-4000-8000-000000000000' }],
      })
      .expect(400);
    await c.patch(`/Users/${id}`, patchOp({ op: 'remove', path: 'userName' })).expect(400);
    expect((await outboxRows(t.db, tenantId)).length).toBe(queued);
  });
});

async function waitForType(type: string, id: string) {
  const until = Date.now() + 5000;
  for (;;) {
    const found = receiver.ofType(type).filter((w) => w.event.data.id === id);
    if (found.length > 0) return found.map((w) => w.event);
    if (Date.now() > until) throw new Error(`no ${type} for ${id}`);
    await receiver.waitFor(receiver.received.length + 1, Math.max(0, until - Date.now())).catch(() => {});
  }
}
