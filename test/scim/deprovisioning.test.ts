import * as jose from 'jose';
import { startLogoutDelivery, type LogoutDelivery } from '../../src/sessions/backchannel-logout.js';
import { createSession, findActiveSession } from '../../src/sessions/sessions.service.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import {
  createApp,
  ISSUER,
  joseSigner,
  outboxRows,
  signIn,
  startLogoutReceiver,
  type LogoutReceiver,
} from '../sessions/support.js';
import {
  createTenant,
  issueToken,
  newUser,
  patchOp,
  scimClient,
  startNode,
  type ScimClient,
  type ScimNode,
} from './support.js';

/**
 * Deprovisioning reaches the main app: SCIM active=false or DELETE revokes
 * every session of the user in the same transaction, and the app's
 * back-channel logout endpoint receives a signed logout token per session.
 */
let t: TestDatabase;
let node: ScimNode;
let worker: LogoutDelivery;
let receiver: LogoutReceiver;
let signing: Awaited<ReturnType<typeof joseSigner>>;
let tenantId: string;
let appId: string;
let quietAppId: string;
let c: ScimClient;

beforeAll(async () => {
  t = await createTestDatabase();
  node = await startNode(t);
  signing = await joseSigner();
  receiver = await startLogoutReceiver();
  worker = startLogoutDelivery({
    db: t.db,
    signer: signing.signer,
    issuer: ISSUER,
    notifications: node.notifications,
    pollIntervalMs: 600_000,
  });
  tenantId = await createTenant(t);
  appId = await createApp(t.db, receiver.url);
  quietAppId = await createApp(t.db, null);
  c = scimClient(node.app, tenantId, (await issueToken(t.db, tenantId)).token);
});
afterAll(async () => {
  await worker.stop();
  await receiver.close();
  await node.close();
  await t.close();
});

async function signedInUser(userName: string) {
  const userId = (await c.post('/Users', newUser(userName)).expect(201)).body.id as string;
  const sessions = [await signIn(t.db, tenantId, userId, appId), await signIn(t.db, tenantId, userId, appId)];
  const quiet = await signIn(t.db, tenantId, userId, quietAppId);
  return { userId, sessions, quiet, before: receiver.tokens.length };
}

const live = (sessionId: string) =>
  t.db.withTenant(tenantId, (em) => findActiveSession(em, sessionId, new Date()));

/** The logout tokens received since `before` tokens had arrived, verified as the app would. */
async function logoutsFor(before: number, sessions: string[]) {
  await receiver.waitFor(before + sessions.length);
  const tokens = receiver.tokens.slice(before);
  const payloads = await Promise.all(
    tokens.map(
      async (tok) =>
        (await jose.jwtVerify(tok, signing.publicKey, { issuer: ISSUER, audience: appId, typ: 'logout+jwt' }))
          .payload,
    ),
  );
  return payloads;
}

describe('SCIM deprovisioning', () => {
  it('active=false ends every session at once and delivers a verified back-channel logout per app session', async () => {
    const { userId, sessions, quiet, before } = await signedInUser('leaver@acme.test');
    const res = await c.patch(`/Users/${userId}`, patchOp({ op: 'Replace', path: 'active', value: 'False' }));
    expect(res.status).toBe(200);
    for (const s of [...sessions, quiet]) expect(await live(s)).toBeNull();
    const payloads = await logoutsFor(before, sessions);
    expect(payloads.map((p) => p.sid).sort()).toEqual([...sessions].sort());
    expect(payloads.every((p) => p.sub === userId)).toBe(true);
    const audit = await t.db.withTenant(tenantId, (em) =>
      em.query(`SELECT after FROM audit_events WHERE action = 'scim.user.suspended' AND target_id = $1`, [
        userId,
      ]),
    );
    expect(audit).toEqual([{ after: expect.objectContaining({ status: 'suspended', revoked_sessions: 3 }) }]);
  });

  it('DELETE ends every session and delivers the logouts too', async () => {
    const { userId, sessions, before } = await signedInUser('deleted@acme.test');
    await c.delete(`/Users/${userId}`).expect(204);
    for (const s of sessions) expect(await live(s)).toBeNull();
    const payloads = await logoutsFor(before, sessions);
    expect(payloads.map((p) => p.sid).sort()).toEqual([...sessions].sort());
  });

  it('a wizard app deactivating by PUT (Okta) ends the sessions as well', async () => {
    const { userId, sessions, before } = await signedInUser('put@acme.test');
    await c.put(`/Users/${userId}`, newUser('put@acme.test', { id: userId, active: false })).expect(200);
    for (const s of sessions) expect(await live(s)).toBeNull();
    await logoutsFor(before, sessions);
  });

  it('reactivation lets the user sign in again but revives no old session', async () => {
    const { userId, sessions, before } = await signedInUser('returner@acme.test');
    await c.patch(`/Users/${userId}`, patchOp({ op: 'replace', value: { active: false } })).expect(200);
    await logoutsFor(before, sessions);
    await c.patch(`/Users/${userId}`, patchOp({ op: 'replace', value: { active: true } })).expect(200);
    for (const s of sessions) expect(await live(s)).toBeNull();
    const status = await t.db.withTenant(tenantId, (em) =>
      em.query('SELECT status FROM users WHERE id = $1', [userId]),
    );
    expect(status).toEqual([{ status: 'active' }]);
    const fresh = await t.db.withTenant(tenantId, (em) =>
      createSession(em, tenantId, {
        userId,
        appId,
        connectionId: null,
        authTime: new Date(),
        ttlSeconds: 60,
      }),
    );
    expect(await live(fresh.id)).not.toBeNull();
  });

  it('a deprovisioning request that fails leaves the sessions live and queues nothing', async () => {
    const { userId, sessions } = await signedInUser('stays@acme.test');
    const queued = (await outboxRows(t.db, tenantId)).length;
    const stale = await c
      .patch(`/Users/${userId}`, patchOp({ op: 'replace', path: 'active', value: false }))
      .set('If-Match', 'W/"99"');
    expect(stale.status).toBe(412);
    const invalid = await c.patch(
      `/Users/${userId}`,
      patchOp(
        { op: 'replace', path: 'active', value: false },
        { op: 'replace', path: 'userName', value: 42 },
      ),
    );
    expect(invalid.status).toBe(400);
    for (const s of sessions) expect(await live(s)).not.toBeNull();
    expect(await outboxRows(t.db, tenantId)).toHaveLength(queued);
  });
});
