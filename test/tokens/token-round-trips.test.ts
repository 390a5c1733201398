import request from 'supertest';
import type { DataSource } from 'typeorm';
import { TestBrowser } from '../support/browser.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { authorize, CALLBACK, codeOf, mainAppClient } from '../support/main-app.js';
import { createPerson, createTenantWithConnection } from '../support/oauth-fixtures.js';
import { registerApp, startOAuthServer, type OAuthServer } from '../support/oauth-server.js';
import { RoundTripCounter, unitsOf, type Tally } from '../support/round-trips.js';

const counter = new RoundTripCounter();
let t: TestDatabase;
let gh: OAuthServer;
let app: { clientId: string; clientSecret: string };
let handler: ReturnType<RoundTripCounter['wrap']>;

beforeAll(async () => {
  t = await createTestDatabase();
  counter.countDataSource((t.db as unknown as { dataSource: DataSource }).dataSource);
  gh = await startOAuthServer(t);
  handler = counter.wrap(gh.app);
  const acme = await createTenantWithConnection(t.db, 'acme');
  gh.flow.people.set('alice@acme.test', await createPerson(t.db, acme, 'alice@acme.test'));
  const a = await registerApp(gh, { redirect_uris: [CALLBACK] });
  app = { clientId: a.clientId, clientSecret: a.clientSecret! };
});
afterAll(async () => {
  await gh.close();
  await t.close();
});

async function post(path: string, form: Record<string, string>) {
  const from = counter.tallies.length;
  const res = await request(handler).post(path).auth(app.clientId, app.clientSecret).type('form').send(form);
  const [tally] = counter.since(from);
  return { res, tally: tally as Tally };
}

async function exchange() {
  const config = await mainAppClient(gh, app.clientId, app.clientSecret);
  const attempt = await authorize(config, new TestBrowser(), { login_hint: 'alice@acme.test' });
  return post('/oauth/token', {
    grant_type: 'authorization_code',
    code: codeOf(attempt.callback),
    redirect_uri: CALLBACK,
    code_verifier: attempt.verifier,
  });
}

/** At most `bound` round trips before the answer; the statements are in the message when not. */
function within(tally: Tally | undefined, bound: number): void {
  if (!tally) throw new Error('the request was not counted');
  if (tally.roundTrips > bound)
    throw new Error(
      `${tally.request}: ${tally.roundTrips} trips > ${bound}\n  ${tally.statements.join('\n  ')}`,
    );
  expect(tally.roundTrips).toBeGreaterThan(0);
}

/*
 * What remains (issue 13 asks ≤ 6 and ≤ 3; not reached, docs/scaling.md):
 * - 2: the two shared failed-authentication limits (per address, per client_id), one
 *   INSERT … ON CONFLICT each before the handler (and one decrement each after the answer);
 * - 2: the app and its secret's hash, one statement each (since issue 13; each was a transaction of 3);
 * - 2: the tenant of the session (resolve_tenant_by_session), then BEGIN with the tenant setting;
 * - exchange only: the code consumed (UPDATE … RETURNING), the refresh token stored;
 * - 4: liveGrantWithPerson: session, user, connection default role, groups and roles;
 * - 1: COMMIT.
 */
describe('token endpoints, round trips to PostgreSQL before the answer', () => {
  it('a code exchange stays within 13 (17 before issue 13)', async () => {
    await exchange(); // the first one also creates the signing keys
    const { res, tally } = await exchange();
    expect(res.status).toBe(200);
    expect(res.body.id_token).toEqual(expect.any(String));
    within(tally, 13);
  });

  it('an introspection stays within 11 (15 before issue 13)', async () => {
    const { res: exchanged } = await exchange();
    const { res, tally } = await post('/oauth/introspect', { token: exchanged.body.access_token as string });
    expect(res.status).toBe(200);
    expect(res.body.active).toBe(true);
    within(tally, 11);
    expect(unitsOf(tally)).toBeLessThanOrEqual(6);
  });
});
