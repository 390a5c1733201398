import request from 'supertest';
import { TestBrowser } from '../support/browser.js';
import { endBusyBackends } from '../support/backend-loss.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { authorize, CALLBACK, codeOf, mainAppClient } from '../support/main-app.js';
import { createPerson, createTenantWithConnection } from '../support/oauth-fixtures.js';
import { registerApp, startOAuthServer, type OAuthServer } from '../support/oauth-server.js';

/*
 * Connections lost while token requests are in flight (a database restart, a failover): client
 * authentication sends its counters and the app's read together (tokens/client-auth-limits.ts), a grant
 * sends its statements pipelined (db/pipelined-transaction.ts). Whatever step a request had reached, it is
 * answered as usual or 503 `temporarily_unavailable` (RFC 6749) — never 500. Real backends are ended by a
 * superuser while the requests run.
 */
const CLIENTS = 8;
const RUN_MS = 2_000;

let t: TestDatabase;
let gh: OAuthServer;
let app: { clientId: string; clientSecret: string };
let accessToken: string;

beforeAll(async () => {
  t = await createTestDatabase();
  // The failed-authentication limits count a request before its answer and take it back after; a
  // take-back lost with its connection stays counted for the window, which is not what this test is about.
  gh = await startOAuthServer(t, {
    GATEHOUSE_CLIENT_AUTH_FAILURE_LIMIT: '1000000',
    GATEHOUSE_CLIENT_AUTH_FAILURE_LIMIT_PER_CLIENT: '1000000',
  });
  const acme = await createTenantWithConnection(t.db, 'acme');
  gh.flow.people.set('alice@acme.test', await createPerson(t.db, acme, 'alice@acme.test'));
  const a = await registerApp(gh, { redirect_uris: [CALLBACK] });
  app = { clientId: a.clientId, clientSecret: a.clientSecret! };
  const config = await mainAppClient(gh, app.clientId, app.clientSecret);
  const attempt = await authorize(config, new TestBrowser(), { login_hint: 'alice@acme.test' });
  const exchanged = await post('/oauth/token', {
    grant_type: 'authorization_code',
    code: codeOf(attempt.callback),
    redirect_uri: CALLBACK,
    code_verifier: attempt.verifier,
  });
  expect(exchanged.status).toBe(200);
  accessToken = exchanged.body.access_token as string;
});
afterAll(async () => {
  await gh.close();
  await t.close();
});

function post(path: string, form: Record<string, string>) {
  return request(gh.app).post(path).auth(app.clientId, app.clientSecret).type('form').send(form);
}

describe('token requests whose connection is lost', () => {
  it('are answered as usual or 503 temporarily_unavailable, never 500', async () => {
    let running = true;
    const seen = new Map<string, number>();
    const bad: unknown[] = [];
    const clients = Array.from({ length: CLIENTS }, async (_, c) => {
      for (let n = 0; running; n++) {
        const introspect = (c + n) % 2 === 0;
        const res = introspect
          ? await post('/oauth/introspect', { token: accessToken })
          : await post('/oauth/token', { grant_type: 'refresh_token', refresh_token: `not-a-token-${n}` });
        const what = `${introspect ? 'introspect' : 'token'} ${res.status}`;
        seen.set(what, (seen.get(what) ?? 0) + 1);
        if (
          res.status === 503 &&
          !(res.body.error === 'temporarily_unavailable' && res.headers['retry-after'])
        )
          bad.push(res.body);
      }
    });
    const ended = await endBusyBackends(t, RUN_MS).finally(() => {
      running = false;
    });
    await Promise.all(clients);
    const answers = Object.fromEntries(seen);
    expect(ended).toBeGreaterThan(0);
    expect(Object.keys(answers).filter((k) => !/^(introspect 200|token 400|\w+ 503)$/.test(k))).toEqual([]);
    expect(answers['introspect 200']).toBeGreaterThan(0);
    expect(Object.keys(answers).some((k) => k.endsWith(' 503'))).toBe(true);
    expect(bad).toEqual([]);
    // And afterwards, all well.
    expect((await post('/oauth/introspect', { token: accessToken })).body.active).toBe(true);
  }, 60_000);
});
