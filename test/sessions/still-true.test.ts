import { createApp } from '../../src/apps/apps.service.js';
import { CHANNELS, NotificationBus } from '../../src/db/notification-bus.js';
import { liveGrant } from '../../src/sessions/live-grant.js';
import { revokeSessions, type RevocationScope } from '../../src/sessions/revoke-sessions.js';
import { parseSessionsRevoked, type SessionsRevokedEvent } from '../../src/sessions/session-events.js';
import { createSession } from '../../src/sessions/sessions.service.js';
import { TestBrowser } from '../support/browser.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { createTenant, createUser } from '../support/factories.js';
import { CALLBACK, mainAppClient, postForm, signIn } from '../support/main-app.js';
import { createPerson, createTenantWithConnection, grantRole } from '../support/oauth-fixtures.js';
import { startOAuthServer, type OAuthServer } from '../support/oauth-server.js';
import { createApp as createPlatformApp, outboxRows } from './support.js';

/**
 * "Is it still true right now?" has one answer (src/sessions/live-grant.ts)
 * and one way to stop being true (src/sessions/revoke-sessions.ts);
 * docs/architecture.md. Part one drives every token path through the same
 * matrix of states and expects the same answer from all of them; part two
 * drives revokeSessions through each scope. Sign-in goes through the test's
 * DirectLoginFlow (internal seam), as in test/tokens.
 */
let t: TestDatabase;

beforeAll(async () => {
  t = await createTestDatabase();
});
afterAll(() => t.close());

type SessionState = 'live' | 'revoked' | 'expired';
type PersonState = 'active' | 'suspended' | 'deleted';
type TenantState = 'active' | 'suspended' | 'deleted';
type AppState = 'present' | 'deleted';
type Answer = 'live' | 'refused';

describe('every token path gives the same answer for the same state', () => {
  let gh: OAuthServer;
  let adminApp: { clientId: string; clientSecret: string };
  let n = 0;

  beforeAll(async () => {
    // Gatehouse's own admin client: its access tokens also reach the tenant-admin check.
    const registered = await createApp(
      t.db,
      { name: 'Gatehouse admin console', redirect_uris: [CALLBACK] },
      { actor: { type: 'operator', id: 'operator' }, requestId: 'test', sourceIp: undefined },
    );
    adminApp = { clientId: registered.client_id, clientSecret: registered.client_secret! };
    // Refused tokens and a deleted app's calls count as failed authentications; the matrix makes more than the guessing limits allow.
    gh = await startOAuthServer(t, {
      GATEHOUSE_ADMIN_CLIENT_ID: registered.client_id,
      GATEHOUSE_CLIENT_AUTH_FAILURE_LIMIT: '10000',
      GATEHOUSE_CLIENT_AUTH_FAILURE_LIMIT_PER_CLIENT: '10000',
      GATEHOUSE_ADMIN_AUTH_FAILURE_LIMIT: '10000',
    });
  });
  afterAll(() => gh.close());

  const basic = () => ({ id: adminApp.clientId, secret: adminApp.clientSecret });
  /** A refusal is an inactive answer, or the caller (a deleted app) turned away. */
  const introspected = async (token: string): Promise<Answer> => {
    const res = await postForm(gh, '/oauth/introspect', { token }, basic());
    if (res.status === 401) return 'refused';
    expect(res.status).toBe(200);
    return res.body.active === true ? 'live' : 'refused';
  };
  const statusAnswer = (status: number, live: number, refused: number[]): Answer => {
    expect([live, ...refused]).toContain(status);
    return status === live ? 'live' : 'refused';
  };

  /** Each path's answer for one signed-in admin, the refresh grant last (it rotates the token). */
  async function answers(tokens: { access: string; refresh: string }, tenantId: string) {
    const bearer = { authorization: `Bearer ${tokens.access}` };
    return {
      'introspection (access token)': await introspected(tokens.access),
      'introspection (refresh token)': await introspected(tokens.refresh),
      userinfo: statusAnswer(
        (await fetch(`${gh.url}/oauth/userinfo`, { headers: bearer })).status,
        200,
        [401],
      ),
      'tenant-admin check': statusAnswer(
        (await fetch(`${gh.url}/admin/v1/tenants/${tenantId}`, { headers: bearer })).status,
        200,
        [401],
      ),
      'refresh grant': statusAnswer(
        (
          await postForm(
            gh,
            '/oauth/token',
            { grant_type: 'refresh_token', refresh_token: tokens.refresh },
            basic(),
          )
        ).status,
        200,
        [400, 401],
      ),
    };
  }

  /** Puts one signed-in session, its person, tenant and app into the given states (rows changed directly). */
  async function enter(
    who: { tenantId: string; userId: string; sessionId: string },
    state: { session: SessionState; person: PersonState; tenant: TenantState },
  ): Promise<void> {
    await t.db.withTenant(who.tenantId, async (em) => {
      if (state.session === 'revoked')
        await em.query(`UPDATE sessions SET revoked_at = now(), revoked_reason = 'test' WHERE id = $1`, [
          who.sessionId,
        ]);
      if (state.session === 'expired')
        await em.query(`UPDATE sessions SET expires_at = now() - interval '1 second' WHERE id = $1`, [
          who.sessionId,
        ]);
      if (state.person !== 'active')
        await em.query('UPDATE users SET status = $2 WHERE id = $1', [who.userId, state.person]);
      if (state.tenant !== 'active')
        await em.query(
          `UPDATE tenants SET status = $2, deleted_at = CASE WHEN $2 = 'deleted' THEN now() END WHERE id = $1`,
          [who.tenantId, state.tenant],
        );
    });
  }

  const matrix: [SessionState, PersonState, TenantState, AppState][] = [];
  for (const session of ['live', 'revoked', 'expired'] as const)
    for (const person of ['active', 'suspended', 'deleted'] as const)
      for (const tenant of ['active', 'suspended', 'deleted'] as const)
        for (const app of ['present', 'deleted'] as const) matrix.push([session, person, tenant, app]);

  it.each(matrix)('session %s, person %s, tenant %s, app %s', async (session, person, tenant, app) => {
    const slug = `still-${++n}`;
    const home = await createTenantWithConnection(t.db, slug);
    const email = `admin@${slug}.test`;
    const admin = await createPerson(t.db, home, email);
    await grantRole(t.db, admin, 'admin');
    gh.flow.people.set(email, admin);
    const config = await mainAppClient(gh, adminApp.clientId, adminApp.clientSecret);
    const { tokens } = await signIn(config, new TestBrowser(), email);
    const sessionId = tokens.claims()!.sid as string;

    await enter({ ...admin, sessionId }, { session, person, tenant });
    if (app === 'deleted')
      await t.asOwner('UPDATE apps SET deleted_at = now() WHERE id = $1', [adminApp.clientId]);
    try {
      const expected: Answer =
        session === 'live' && person === 'active' && tenant === 'active' && app === 'present'
          ? 'live'
          : 'refused';
      const seen = await answers(
        { access: tokens.access_token, refresh: tokens.refresh_token! },
        home.tenantId,
      );
      expect(seen).toEqual({
        'introspection (access token)': expected,
        'introspection (refresh token)': expected,
        userinfo: expected,
        'tenant-admin check': expected,
        'refresh grant': expected,
      });
    } finally {
      if (app === 'deleted')
        await t.asOwner('UPDATE apps SET deleted_at = NULL WHERE id = $1', [adminApp.clientId]);
    }
  });

  it('refuses a session that expired although nothing revoked it, with the reason', async () => {
    const tenantId = await createTenant(t.db);
    const userId = await createUser(t.db, tenantId, 'late@acme.test');
    const answer = await t.db.withTenant(tenantId, async (em) => {
      const session = await createSession(em, tenantId, {
        userId,
        appId: null,
        connectionId: null,
        authTime: new Date(),
        ttlSeconds: 60,
      });
      const now = new Date(session.expiresAt.getTime());
      return {
        before: (await liveGrant(em, { sessionId: session.id, now: new Date(now.getTime() - 1) })).live,
        at: await liveGrant(em, { sessionId: session.id, now }),
      };
    });
    expect(answer).toEqual({ before: true, at: { live: false, reason: 'session_ended' } });
  });
});

describe('revokeSessions ends exactly the sessions of its scope', () => {
  /**
   * One tenant: two people, two connections, two apps (both with a back-channel
   * logout URI), a session for each combination, plus an expired and an
   * already-revoked session that no scope may touch again; and a second tenant
   * whose sessions nothing here may reach.
   */
  async function world() {
    const tenantId = await createTenant(t.db);
    const other = await createTenant(t.db);
    const ann = await createUser(t.db, tenantId, 'ann@acme.test');
    const ben = await createUser(t.db, tenantId, 'ben@acme.test');
    const stranger = await createUser(t.db, other, 'eve@globex.test');
    const appA = await createPlatformApp(t.db, 'https://a.test/backchannel');
    const appB = await createPlatformApp(t.db, 'https://b.test/backchannel');
    const connections = await t.db.withTenant(tenantId, async (em) => {
      const ids: string[] = [];
      for (const name of ['IdP 1', 'IdP 2']) {
        const [row] = await em.query<{ id: string }[]>(
          `INSERT INTO connections (tenant_id, id, type, name, status, default_role)
           VALUES ($1, gen_random_uuid(), 'saml', $2, 'active', 'member') RETURNING id`,
          [tenantId, name],
        );
        ids.push(row!.id);
      }
      return ids as [string, string];
    });
    const open = (tid: string, userId: string, appId: string, connectionId: string | null, ttl = 3600) =>
      t.db.withTenant(tid, async (em) => {
        const s = await createSession(em, tid, {
          userId,
          appId,
          connectionId,
          authTime: new Date(),
          ttlSeconds: ttl,
        });
        return { id: s.id, userId, appId, connectionId };
      });
    const sessions = [
      await open(tenantId, ann, appA, connections[0]),
      await open(tenantId, ann, appB, connections[1]),
      await open(tenantId, ben, appA, connections[1]),
      await open(tenantId, ben, appB, connections[0]),
    ];
    const expired = await open(tenantId, ann, appA, connections[0]);
    const revoked = await open(tenantId, ann, appA, connections[0]);
    await t.db.withTenant(tenantId, async (em) => {
      await em.query(`UPDATE sessions SET expires_at = now() - interval '1 second' WHERE id = $1`, [
        expired.id,
      ]);
      await em.query(`UPDATE sessions SET revoked_at = now(), revoked_reason = 'earlier' WHERE id = $1`, [
        revoked.id,
      ]);
    });
    const foreign = await open(other, stranger, appA, null);
    return { tenantId, other, ann, ben, appA, appB, connections, sessions, expired, revoked, foreign };
  }

  type World = Awaited<ReturnType<typeof world>>;
  const cases: [
    string,
    (w: World) => RevocationScope,
    (w: World, s: World['sessions'][number]) => boolean,
  ][] = [
    ['session', (w) => ({ session: w.sessions[1]!.id }), (w, s) => s.id === w.sessions[1]!.id],
    ['user', (w) => ({ user: w.ann }), (w, s) => s.userId === w.ann],
    ['connection', (w) => ({ connection: w.connections[0] }), (w, s) => s.connectionId === w.connections[0]],
    ['app', (w) => ({ app: w.appB }), (w, s) => s.appId === w.appB],
    ['tenant', (w) => ({ tenant: w.tenantId }), () => true],
  ];

  let bus: NotificationBus;
  const heard: SessionsRevokedEvent[] = [];
  beforeAll(async () => {
    bus = new NotificationBus({ url: t.appUrl, reconnectDelayMs: 20 });
    bus.on(CHANNELS.sessionsRevoked, (payload) => {
      const event = parseSessionsRevoked(payload);
      if (event) heard.push(event);
    });
    await bus.start();
  });
  afterAll(() => bus.close());

  it.each(cases)('scope %s', async (name, scopeOf, inScope) => {
    const w = await world();
    const revoked = await t.db.withTenant(w.tenantId, (em) =>
      revokeSessions(em, scopeOf(w), `test_${name}`, { audit: { actor: { type: 'system', id: 'test' } } }),
    );

    const ended = w.sessions.filter((s) => inScope(w, s)).map((s) => s.id);
    expect(revoked.map((s) => s.id).sort()).toEqual([...ended].sort());
    const rows = await t.db.withTenant(w.tenantId, (em) =>
      em.query<{ id: string; revoked_reason: string | null }[]>('SELECT id, revoked_reason FROM sessions'),
    );
    const reasons = Object.fromEntries(rows.map((r) => [r.id, r.revoked_reason]));
    for (const s of w.sessions) expect(reasons[s.id]).toBe(ended.includes(s.id) ? `test_${name}` : null);
    // Already over: an expired session is not revoked again, nor one revoked before.
    expect(reasons[w.expired.id]).toBeNull();
    expect(reasons[w.revoked.id]).toBe('earlier');
    const [foreign] = await t.db.withTenant(w.other, (em) =>
      em.query<{ revoked_at: Date | null }[]>('SELECT revoked_at FROM sessions WHERE id = $1', [
        w.foreign.id,
      ]),
    );
    expect(foreign).toEqual({ revoked_at: null });

    // One back-channel logout per revoked session, none for anything else.
    expect((await outboxRows(t.db, w.tenantId)).map((r) => r.session_id).sort()).toEqual([...ended].sort());
    expect(await outboxRows(t.db, w.other)).toEqual([]);

    // The other nodes hear of exactly those sessions.
    await until(() => heardFor(w.tenantId).length >= ended.length);
    expect(heardFor(w.tenantId).sort()).toEqual([...ended].sort());

    const audit = await t.db.withTenant(w.tenantId, (em) =>
      em.query<{ target_type: string; after: Record<string, unknown> }[]>(
        `SELECT target_type, after FROM audit_events WHERE action = 'session.revoked'`,
      ),
    );
    expect(audit).toEqual([
      {
        target_type: name,
        after:
          name === 'session'
            ? { reason: 'test_session' }
            : { reason: `test_${name}`, sessions: ended.length },
      },
    ]);
  });

  it('revokes nothing, and says nothing, when the scope has no live session', async () => {
    const w = await world();
    const revoked = await t.db.withTenant(w.tenantId, (em) =>
      revokeSessions(em, { session: w.expired.id }, 'test', {
        audit: { actor: { type: 'system', id: 'test' } },
      }),
    );
    expect(revoked).toEqual([]);
    expect(await outboxRows(t.db, w.tenantId)).toEqual([]);
    const audit = await t.db.withTenant(w.tenantId, (em) =>
      em.query('SELECT 1 FROM audit_events WHERE action = $1', ['session.revoked']),
    );
    expect(audit).toEqual([]);
  });

  function heardFor(tenantId: string): string[] {
    return heard.filter((e) => e.tenant_id === tenantId).flatMap((e) => e.session_ids);
  }
});

async function until(done: () => boolean): Promise<void> {
  for (let i = 0; i < 100 && !done(); i++) await new Promise((resolve) => setTimeout(resolve, 50));
}
