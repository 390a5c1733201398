import request from 'supertest';
import { TestBrowser } from '../support/browser.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { authorize, CALLBACK, codeOf, mainAppClient } from '../support/main-app.js';
import { createPerson, createTenantWithConnection } from '../support/oauth-fixtures.js';
import { registerApp, startOAuthServer, type OAuthServer } from '../support/oauth-server.js';

/*
 * More token requests in flight than the pool has connections (the test pool has 5). A code exchange
 * signs its tokens inside its transaction; had signing ever to read the keys from the database there, every
 * connection could be held by a transaction waiting for one more, until the pool's 5 s connect timeout —
 * a 503 for all of them (issue 13, seen at 16 in flight in bench cluster-workers). The key store is
 * loaded before the transaction opens and an expired copy is served while it is re-read
 * (tokens/keys/key-store.ts), so none of them waits on the pool from inside a transaction.
 */
const IN_FLIGHT = 16;

let t: TestDatabase;
let gh: OAuthServer;
let app: { clientId: string; clientSecret: string };

beforeAll(async () => {
  t = await createTestDatabase();
  gh = await startOAuthServer(t);
  const acme = await createTenantWithConnection(t.db, 'acme');
  gh.flow.people.set('alice@acme.test', await createPerson(t.db, acme, 'alice@acme.test'));
  const a = await registerApp(gh, { redirect_uris: [CALLBACK] });
  app = { clientId: a.clientId, clientSecret: a.clientSecret! };
});
afterAll(async () => {
  await gh.close();
  await t.close();
});

async function codes(n: number): Promise<{ code: string; verifier: string }[]> {
  const config = await mainAppClient(gh, app.clientId, app.clientSecret);
  const out = [];
  for (let i = 0; i < n; i++) {
    const attempt = await authorize(config, new TestBrowser(), { login_hint: 'alice@acme.test' });
    out.push({ code: codeOf(attempt.callback), verifier: attempt.verifier });
  }
  return out;
}

function post(form: Record<string, string>, path = '/oauth/token') {
  return request(gh.app).post(path).auth(app.clientId, app.clientSecret).type('form').send(form);
}

async function exchangeAll(batch: { code: string; verifier: string }[]) {
  const started = Date.now();
  const answers = await Promise.all(
    batch.map(({ code, verifier }) =>
      post({ grant_type: 'authorization_code', code, redirect_uri: CALLBACK, code_verifier: verifier }),
    ),
  );
  return {
    statuses: answers.map((r) => r.status),
    bodies: answers.map((r) => r.body),
    ms: Date.now() - started,
  };
}

describe(`${IN_FLIGHT} token requests in flight over a pool of 5`, () => {
  it('the first exchanges of a node (no signing keys read yet) all answer 200', async () => {
    const batch = await codes(IN_FLIGHT);
    const { statuses, bodies } = await exchangeAll(batch);
    expect(statuses).toEqual(batch.map(() => 200));
    for (const body of bodies) expect(body.id_token).toEqual(expect.any(String));
  });

  it('exchanges while the key copy is out of date (a rotation elsewhere, or the TTL) all answer 200', async () => {
    const batch = await codes(IN_FLIGHT);
    gh.keys.invalidate();
    const { statuses } = await exchangeAll(batch);
    expect(statuses).toEqual(batch.map(() => 200));
  });

  it('refresh grants and introspections in flight together all answer 200', async () => {
    const batch = await codes(IN_FLIGHT / 2);
    const { bodies } = await exchangeAll(batch);
    gh.keys.invalidate();
    const answers = await Promise.all(
      bodies.flatMap((b: { refresh_token: string; access_token: string }) => [
        post({ grant_type: 'refresh_token', refresh_token: b.refresh_token }),
        post({ token: b.access_token }, '/oauth/introspect'),
      ]),
    );
    expect(answers.map((r) => r.status)).toEqual(answers.map(() => 200));
    expect(answers.filter((r) => r.body.active === true)).toHaveLength(IN_FLIGHT / 2);
  });
});
