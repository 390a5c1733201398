import * as jose from 'jose';
import { NotificationBus } from '../../src/db/notification-bus.js';
import {
  BACKCHANNEL_LOGOUT_EVENT,
  startLogoutDelivery,
  type LogoutDelivery,
} from '../../src/sessions/backchannel-logout.js';
import { findActiveSession, revokeSession, revokeUserSessions } from '../../src/sessions/sessions.service.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { createTenant, createUser } from '../support/factories.js';
import {
  createApp,
  ISSUER,
  joseSigner,
  outboxRows,
  signIn,
  startLogoutReceiver,
  type LogoutReceiver,
} from './support.js';

let t: TestDatabase;
let signing: Awaited<ReturnType<typeof joseSigner>>;
const workers: LogoutDelivery[] = [];
const receivers: LogoutReceiver[] = [];

beforeAll(async () => {
  t = await createTestDatabase();
  signing = await joseSigner();
});
afterEach(async () => {
  for (const w of workers.splice(0)) await w.stop();
  for (const r of receivers.splice(0)) await r.close();
});
afterAll(() => t.close());

function worker(options: Partial<Parameters<typeof startLogoutDelivery>[0]> = {}): LogoutDelivery {
  const w = startLogoutDelivery({
    db: t.db,
    signer: signing.signer,
    issuer: ISSUER,
    pollIntervalMs: 50,
    retryBaseMs: 20,
    ...options,
  });
  workers.push(w);
  return w;
}

async function receiver(statuses: number[] = []): Promise<LogoutReceiver> {
  const r = await startLogoutReceiver(statuses);
  receivers.push(r);
  return r;
}

async function signedInUser(uri: string | null) {
  const tenantId = await createTenant(t.db);
  const userId = await createUser(t.db, tenantId, `u-${Math.random()}@acme.test`);
  const appId = await createApp(t.db, uri);
  const sessionId = await signIn(t.db, tenantId, userId, appId);
  return { tenantId, userId, appId, sessionId };
}

describe('back-channel logout outbox', () => {
  it('queues one logout per revoked session of an app with a logout URI, in the revoking transaction', async () => {
    const { tenantId, userId, sessionId } = await signedInUser('https://app.test/logout');
    const appWithoutUri = await createApp(t.db, null);
    await signIn(t.db, tenantId, userId, appWithoutUri);
    await signIn(t.db, tenantId, userId, null);

    const revoked = await t.db.withTenant(tenantId, (em) => revokeUserSessions(em, userId, 'test'));
    expect(revoked).toHaveLength(3);
    expect(await outboxRows(t.db, tenantId)).toEqual([
      { session_id: sessionId, status: 'pending', attempts: 0, last_error: null },
    ]);
  });

  it('queues nothing and revokes nothing when the revoking transaction rolls back', async () => {
    const { tenantId, sessionId } = await signedInUser('https://app.test/logout');
    await expect(
      t.db.withTenant(tenantId, async (em) => {
        await revokeSession(em, sessionId, 'test');
        throw new Error('the change that caused it failed');
      }),
    ).rejects.toThrow('failed');
    expect(await outboxRows(t.db, tenantId)).toEqual([]);
    expect(
      await t.db.withTenant(tenantId, (em) => findActiveSession(em, sessionId, new Date())),
    ).not.toBeNull();
  });

  it('delivers a signed logout token, woken by NOTIFY, that the app verifies with jose', async () => {
    const app = await receiver();
    const { tenantId, userId, appId, sessionId } = await signedInUser(app.url);
    const bus = new NotificationBus({ url: t.appUrl });
    await bus.start();
    try {
      // No polling: only the notification from the revoking transaction can wake this worker.
      worker({ notifications: bus, pollIntervalMs: 600_000 });
      await t.db.withTenant(tenantId, (em) => revokeSession(em, sessionId, 'test'));
      await app.waitFor(1);
    } finally {
      await bus.close();
    }
    expect(app.contentTypes[0]).toMatch(/^application\/x-www-form-urlencoded/);
    const { payload, protectedHeader } = await jose.jwtVerify(app.tokens[0] ?? '', signing.publicKey, {
      issuer: ISSUER,
      audience: appId,
      typ: 'logout+jwt',
      maxTokenAge: '2 minutes',
    });
    expect(protectedHeader).toMatchObject({ alg: 'ES256', typ: 'logout+jwt' });
    expect(payload).toMatchObject({
      sub: userId,
      sid: sessionId,
      events: { [BACKCHANNEL_LOGOUT_EVENT]: {} },
    });
    expect(payload.jti).toEqual(expect.any(String));
    expect(payload.exp).toBeGreaterThan(payload.iat ?? 0);
    expect(payload).not.toHaveProperty('nonce');
    await waitForStatus(tenantId, 'delivered');
  });

  it('retries with backoff until the app accepts, then records the delivery', async () => {
    const app = await receiver([500, 503]);
    const { tenantId, sessionId } = await signedInUser(app.url);
    worker();
    await t.db.withTenant(tenantId, (em) => revokeSession(em, sessionId, 'test'));
    await app.waitFor(1);
    await waitForStatus(tenantId, 'delivered');
    expect(await outboxRows(t.db, tenantId)).toEqual([
      { session_id: sessionId, status: 'delivered', attempts: 3, last_error: null },
    ]);
  });

  it('gives up after the configured number of attempts and keeps the row as failed', async () => {
    const app = await receiver([500, 500, 500, 500]);
    const { tenantId, sessionId } = await signedInUser(app.url);
    worker({ maxAttempts: 2 });
    await t.db.withTenant(tenantId, (em) => revokeSession(em, sessionId, 'test'));
    await waitForStatus(tenantId, 'failed');
    expect(await outboxRows(t.db, tenantId)).toEqual([
      { session_id: sessionId, status: 'failed', attempts: 2, last_error: 'HTTP 500' },
    ]);
    expect(app.tokens).toEqual([]);
  });

  it('delivers after a restart what was queued while no worker ran', async () => {
    const app = await receiver();
    const { tenantId, sessionId } = await signedInUser(app.url);
    const first = worker({ pollIntervalMs: 600_000 });
    await first.stop();
    await t.db.withTenant(tenantId, (em) => revokeSession(em, sessionId, 'test'));
    expect(await outboxRows(t.db, tenantId)).toEqual([expect.objectContaining({ status: 'pending' })]);

    worker();
    await app.waitFor(1);
    await waitForStatus(tenantId, 'delivered');
  });

  it('delivers each logout exactly once when several workers share the database', async () => {
    const app = await receiver();
    const { tenantId, userId, appId } = await signedInUser(app.url);
    for (let i = 0; i < 9; i++) await signIn(t.db, tenantId, userId, appId);
    worker();
    worker();
    worker();
    await t.db.withTenant(tenantId, (em) => revokeUserSessions(em, userId, 'test'));
    await app.waitFor(10);
    await waitForStatus(tenantId, 'delivered');
    await new Promise((r) => setTimeout(r, 200));
    const sids = await Promise.all(app.tokens.map(async (tok) => jose.decodeJwt(tok).sid));
    expect(new Set(sids).size).toBe(10);
    expect(app.tokens).toHaveLength(10);
  });

  it('gives up at once on a logout for an app that was deleted since', async () => {
    const app = await receiver();
    const { tenantId, appId, sessionId } = await signedInUser(app.url);
    await t.db.withTenant(tenantId, (em) => revokeSession(em, sessionId, 'test'));
    await t.db.withPlatform((em) => em.query('UPDATE apps SET deleted_at = now() WHERE id = $1', [appId]));
    worker();
    await waitForStatus(tenantId, 'failed');
    expect(await outboxRows(t.db, tenantId)).toEqual([
      { session_id: sessionId, status: 'failed', attempts: 1, last_error: 'app deleted' },
    ]);
  });
});

async function waitForStatus(tenantId: string, status: string): Promise<void> {
  const until = Date.now() + 5000;
  for (;;) {
    const rows = await outboxRows(t.db, tenantId);
    if (rows.length > 0 && rows.every((r) => r.status === status)) return;
    if (Date.now() > until) throw new Error(`outbox rows ${JSON.stringify(rows)}, expected all ${status}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
