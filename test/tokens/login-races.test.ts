import { createAuthorizationCompleter } from '../../src/tokens/authorize/completer.js';
import { TestBrowser } from '../support/browser.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { authorize, CALLBACK, mainAppClient } from '../support/main-app.js';
import { createPerson, createTenantWithConnection } from '../support/oauth-fixtures.js';
import { registerApp, startOAuthServer, startSideServer, type OAuthServer } from '../support/oauth-server.js';

/**
 * A person removed while they were at their IdP: the completer refuses the login with a reason
 * (error=access_denied back to the app) instead of failing on the session's foreign key with a 500.
 */
let t: TestDatabase;
let gh: OAuthServer;
let idpReturn: { url: string; close(): Promise<void> };

beforeAll(async () => {
  t = await createTestDatabase();
  gh = await startOAuthServer(t);
});
afterAll(async () => {
  await idpReturn?.close();
  await gh.close();
  await t.close();
});

it('refuses a login whose person was deleted while at the IdP, without a 500 and without a session', async () => {
  const acme = await createTenantWithConnection(t.db, 'acme');
  const carol = await createPerson(t.db, acme, 'carol@acme.test');
  const registered = await registerApp(gh, { redirect_uris: [CALLBACK] });
  const config = await mainAppClient(gh, registered.clientId, registered.clientSecret);
  const completer = createAuthorizationCompleter({ config: gh.config, db: t.db });
  idpReturn = await startSideServer(async (req, res) => {
    await completer.complete(req, res, typeof req.query.login === 'string' ? req.query.login : '', {
      ...carol,
      authTime: new Date(),
    });
  });

  const browser = new TestBrowser();
  gh.flow.defer = true;
  let attempt;
  try {
    attempt = await authorize(config, browser, { login_hint: 'carol@acme.test' });
  } finally {
    gh.flow.defer = false;
  }
  const loginId = gh.flow.deferred.pop()!.loginId;
  // The person's rows go while the browser is away (as a tenant deletion removes them).
  await t.db.withTenant(carol.tenantId, async (em) => {
    await em.query('DELETE FROM identities WHERE user_id = $1', [carol.userId]);
    await em.query('DELETE FROM group_members WHERE user_id = $1', [carol.userId]);
    await em.query('DELETE FROM users WHERE id = $1', [carol.userId]);
  });

  const back = await browser.visit(`${idpReturn.url}/return?login=${loginId}`, CALLBACK);
  expect(back.status).toBeLessThan(500);
  expect(back.redirectedTo).not.toBeNull();
  const params = new URL(back.redirectedTo ?? '').searchParams;
  expect(params.get('error')).toBe('access_denied');
  expect(params.get('error_description')).toBe('user_not_active');
  expect(params.get('state')).toBe(attempt.state);
  const sessions = await t.db.withTenant(carol.tenantId, (em) =>
    em.query<unknown[]>('SELECT 1 FROM sessions WHERE user_id = $1', [carol.userId]),
  );
  expect(sessions).toEqual([]);
});
