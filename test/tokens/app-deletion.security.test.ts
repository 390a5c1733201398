import { TestBrowser } from '../support/browser.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { CALLBACK, mainAppClient, postForm, signIn } from '../support/main-app.js';
import { createPerson, createTenantWithConnection, sessionRow } from '../support/oauth-fixtures.js';
import { registerApp, startOAuthServer, type OAuthServer, type Person } from '../support/oauth-server.js';

/**
 * Deleting an app ends what it issued, at once and in every tenant; a client
 * secret that no longer counts (app deleted, secret rotated out) is refused
 * even right after it was verified and cached.
 */
let t: TestDatabase;
let gh: OAuthServer;
let alice: Person;
let bob: Person;

beforeAll(async () => {
  t = await createTestDatabase();
  gh = await startOAuthServer(t);
  alice = await createPerson(t.db, await createTenantWithConnection(t.db, 'acme'), 'alice@acme.test');
  bob = await createPerson(t.db, await createTenantWithConnection(t.db, 'globex'), 'bob@globex.test');
  gh.flow.people.set('alice@acme.test', alice);
  gh.flow.people.set('bob@globex.test', bob);
});
afterAll(async () => {
  await gh.close();
  await t.close();
});

async function newApp() {
  const { clientId, clientSecret } = await registerApp(gh, { redirect_uris: [CALLBACK] });
  return { clientId, clientSecret: clientSecret! };
}

async function signedIn(app: { clientId: string; clientSecret: string }, email: string) {
  const config = await mainAppClient(gh, app.clientId, app.clientSecret);
  const { tokens } = await signIn(config, new TestBrowser(), email);
  const sid = (tokens.claims()?.sid ?? '') as string;
  return { tokens, sid };
}

const admin = (method: string, path: string, body?: unknown) =>
  fetch(`${gh.baseUrl}/admin/v1${path}`, {
    method,
    headers: { Authorization: `Bearer ${gh.secrets.adminToken}`, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });

const userinfo = (accessToken: string) =>
  fetch(`${gh.url}/oauth/userinfo`, { headers: { Authorization: `Bearer ${accessToken}` } });

const refresh = (app: { clientId: string; clientSecret: string }, refreshToken: string) =>
  postForm(
    gh,
    '/oauth/token',
    { grant_type: 'refresh_token', refresh_token: refreshToken },
    { id: app.clientId, secret: app.clientSecret },
  );

const introspectAs = (app: { clientId: string; clientSecret: string }) =>
  postForm(gh, '/oauth/introspect', { token: 'not-a-token' }, { id: app.clientId, secret: app.clientSecret });

describe('deleting an app', () => {
  it("revokes the app's live sessions in every tenant, audited there, and leaves other apps' sessions alone", async () => {
    const doomed = await newApp();
    const kept = await newApp();
    const a = await signedIn(doomed, 'alice@acme.test');
    const b = await signedIn(doomed, 'bob@globex.test');
    const other = await signedIn(kept, 'alice@acme.test');

    expect((await admin('DELETE', `/apps/${doomed.clientId}`)).status).toBe(204);

    expect(await sessionRow(t.db, alice.tenantId, a.sid)).toMatchObject({ revoked_reason: 'app_deleted' });
    expect(await sessionRow(t.db, bob.tenantId, b.sid)).toMatchObject({ revoked_reason: 'app_deleted' });
    expect(await sessionRow(t.db, alice.tenantId, other.sid)).toMatchObject({ revoked_at: null });
    expect((await userinfo(a.tokens.access_token)).status).toBe(401);
    expect((await userinfo(b.tokens.access_token)).status).toBe(401);
    expect(await refresh(doomed, a.tokens.refresh_token!)).toMatchObject({
      status: 401,
      body: { error: 'invalid_client' },
    });
    expect((await userinfo(other.tokens.access_token)).status).toBe(200);
    expect((await refresh(kept, other.tokens.refresh_token!)).status).toBe(200);

    for (const tenantId of [alice.tenantId, bob.tenantId]) {
      const events = await t.db.withTenant(tenantId, (em) =>
        em.query<{ after: { reason: string; sessions: number } }[]>(
          `SELECT after FROM audit_events WHERE action = 'session.revoked' AND target_id = $1`,
          [doomed.clientId],
        ),
      );
      expect(events.map((e) => e.after)).toEqual([{ reason: 'app_deleted', sessions: 1 }]);
    }
  });

  it('refuses its tokens from the moment the app is marked deleted, before any session is revoked', async () => {
    const app = await newApp();
    const { tokens, sid } = await signedIn(app, 'bob@globex.test');
    // The deletion committed but the per-tenant revocation has not run (yet, or it failed).
    await t.asOwner(`UPDATE apps SET deleted_at = now() WHERE id = '${app.clientId}'`);
    expect(await sessionRow(t.db, bob.tenantId, sid)).toMatchObject({ revoked_at: null });
    expect((await userinfo(tokens.access_token)).status).toBe(401);
  });
});

describe('the client-secret verification cache', () => {
  it('refuses a secret rotated out without overlap at once, although it was just verified', async () => {
    const app = await newApp();
    expect((await introspectAs(app)).status).toBe(200);
    const rotated = await admin('POST', `/apps/${app.clientId}/secrets`, { overlap_seconds: 0 });
    expect(rotated.status).toBe(201);
    const { client_secret: fresh } = (await rotated.json()) as { client_secret: string };

    expect(await introspectAs(app)).toMatchObject({ status: 401, body: { error: 'invalid_client' } });
    expect((await introspectAs({ clientId: app.clientId, clientSecret: fresh })).status).toBe(200);
  });

  it('refuses the secret of a deleted app, although it was just verified', async () => {
    const app = await newApp();
    expect((await introspectAs(app)).status).toBe(200);
    expect((await admin('DELETE', `/apps/${app.clientId}`)).status).toBe(204);
    expect(await introspectAs(app)).toMatchObject({ status: 401, body: { error: 'invalid_client' } });
  });
});
