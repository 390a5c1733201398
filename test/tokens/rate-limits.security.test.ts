import request from 'supertest';
import { clientSecretArgon2Checks } from '../../src/tokens/grants/client-auth.js';
import { buildTestApp } from '../support/app.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { CALLBACK, postForm } from '../support/main-app.js';
import { registerApp, startOAuthServer, type OAuthServer } from '../support/oauth-server.js';

/**
 * Guessing limits: failed client authentications at the token, introspection
 * and revocation endpoints (per address, per client_id), and home realm
 * discovery probes at /login (per address). Past a limit: 429 + Retry-After.
 */
let t: TestDatabase;
beforeAll(async () => {
  t = await createTestDatabase();
});
afterAll(() => t.close());

type Client = { clientId: string; clientSecret: string };

async function twoApps(gh: OAuthServer): Promise<[Client, Client]> {
  const a = await registerApp(gh, { redirect_uris: [CALLBACK] });
  const b = await registerApp(gh, { redirect_uris: [CALLBACK] });
  return [
    { clientId: a.clientId, clientSecret: a.clientSecret! },
    { clientId: b.clientId, clientSecret: b.clientSecret! },
  ];
}

const wrong = (c: Client): Client => ({ ...c, clientSecret: `${c.clientSecret.slice(0, -1)}x` });
const introspect = (gh: OAuthServer, c: Client) =>
  postForm(gh, '/oauth/introspect', { token: 'not-a-token' }, { id: c.clientId, secret: c.clientSecret });
const revoke = (gh: OAuthServer, c: Client) =>
  postForm(gh, '/oauth/revoke', { token: 'not-a-token' }, { id: c.clientId, secret: c.clientSecret });
const token = (gh: OAuthServer, c: Client) =>
  postForm(
    gh,
    '/oauth/token',
    { grant_type: 'refresh_token', refresh_token: 'nope' },
    { id: c.clientId, secret: c.clientSecret },
  );

describe('failed client authentication', () => {
  let gh: OAuthServer;
  let app: Client;
  let other: Client;
  beforeAll(async () => {
    gh = await startOAuthServer(t, {
      GATEHOUSE_CLIENT_AUTH_FAILURE_LIMIT: '3',
      GATEHOUSE_CLIENT_AUTH_FAILURE_LIMIT_PER_CLIENT: '100',
    });
    [app, other] = await twoApps(gh);
  });
  afterAll(() => gh.close());

  it('counts only failures, across the three endpoints, then answers 429 temporarily_unavailable with Retry-After per address', async () => {
    for (let i = 0; i < 5; i++) expect((await introspect(gh, app)).status).toBe(200);
    expect((await introspect(gh, wrong(app))).status).toBe(401);
    expect((await revoke(gh, wrong(other))).status).toBe(401);
    expect((await token(gh, wrong(app))).status).toBe(401);

    const limited = await introspect(gh, app);
    expect(limited.status).toBe(429);
    expect(limited.body).toEqual({ error: 'temporarily_unavailable', error_description: expect.any(String) });
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(limited.headers.get('cache-control')).toBe('no-store');
    // The same address with another client's right secret is limited too.
    expect((await token(gh, other)).status).toBe(429);
  });
});

describe('failed client authentication: only failures count', () => {
  let gh: OAuthServer;
  let app: Client;
  beforeAll(async () => {
    // The address already has failures from the tests above (one database): the per-client limit of a
    // new client is what these requests meet first.
    gh = await startOAuthServer(t, {
      GATEHOUSE_CLIENT_AUTH_FAILURE_LIMIT: '100',
      GATEHOUSE_CLIENT_AUTH_FAILURE_LIMIT_PER_CLIENT: '3',
    });
    [app] = await twoApps(gh);
  });
  afterAll(() => gh.close());

  it('refuses none of many more good requests in flight for one client than the limit', async () => {
    // Counting every request and taking successes back after their answers refused these (issue 13).
    const answers = await Promise.all(Array.from({ length: 12 }, () => introspect(gh, app)));
    expect(answers.map((r) => r.status)).toEqual(answers.map(() => 200));
    // …and the limit still holds for failures, the 4th request after 3 failures seeing all three.
    for (let i = 0; i < 3; i++) expect((await introspect(gh, wrong(app))).status).toBe(401);
    expect((await introspect(gh, app)).status).toBe(429);
  });
});

describe('failed client authentication per client_id', () => {
  let gh: OAuthServer;
  let app: Client;
  let other: Client;
  beforeAll(async () => {
    gh = await startOAuthServer(t, {
      GATEHOUSE_CLIENT_AUTH_FAILURE_LIMIT: '100',
      GATEHOUSE_CLIENT_AUTH_FAILURE_LIMIT_PER_CLIENT: '3',
    });
    [app, other] = await twoApps(gh);
  });
  afterAll(() => gh.close());

  it('limits guesses against one client, through Basic or the form, without touching other clients', async () => {
    expect((await introspect(gh, wrong(app))).status).toBe(401);
    expect((await introspect(gh, wrong(app))).status).toBe(401);
    const viaForm = await postForm(gh, '/oauth/introspect', {
      token: 'not-a-token',
      client_id: app.clientId,
      client_secret: 'gh_secret_guess',
    });
    expect(viaForm.status).toBe(401);

    expect(await introspect(gh, app)).toMatchObject({
      status: 429,
      body: { error: 'temporarily_unavailable' },
    });
    expect((await introspect(gh, other)).status).toBe(200);
  });
});

describe('failed client authentication, counted in the trip that reads the app (issue 13)', () => {
  it('counts a 401 that came before any client was read (no or malformed credentials) and answers 429 after', async () => {
    const gh = await startOAuthServer(t, {
      GATEHOUSE_CLIENT_AUTH_FAILURE_LIMIT: '2',
      GATEHOUSE_CLIENT_AUTH_FAILURE_LIMIT_PER_CLIENT: '100',
    });
    try {
      const [app] = await twoApps(gh);
      const noAuth = await postForm(gh, '/oauth/introspect', { token: 'not-a-token' });
      expect(noAuth).toMatchObject({ status: 401, body: { error: 'invalid_client' } });
      const malformed = await fetch(`${gh.url}/oauth/introspect`, {
        method: 'POST',
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          authorization: `Basic ${Buffer.from('no-colon').toString('base64')}`,
        },
        body: 'token=not-a-token',
      });
      expect(malformed.status).toBe(401);
      // Counted after their answers (so the next request may come first: it is asked again until the count lands)
      let limited = await introspect(gh, app);
      for (let i = 0; i < 20 && limited.status !== 429; i++) limited = await introspect(gh, app);
      expect(limited).toMatchObject({ status: 429, body: { error: 'temporarily_unavailable' } });
    } finally {
      await gh.close();
    }
  });

  it('runs no argon2 check past the limit, and holds the limit with counters in memory too', async () => {
    const gh = await startOAuthServer(t, {
      GATEHOUSE_RATE_LIMIT_STORE: 'memory',
      GATEHOUSE_CLIENT_AUTH_FAILURE_LIMIT: '100',
      GATEHOUSE_CLIENT_AUTH_FAILURE_LIMIT_PER_CLIENT: '2',
    });
    try {
      const [app, other] = await twoApps(gh);
      expect((await introspect(gh, wrong(app))).status).toBe(401);
      expect((await introspect(gh, wrong(app))).status).toBe(401);
      const before = clientSecretArgon2Checks();
      expect(await introspect(gh, wrong(app))).toMatchObject({ status: 429 });
      expect(await introspect(gh, app)).toMatchObject({ status: 429 });
      expect(clientSecretArgon2Checks()).toBe(before);
      expect((await introspect(gh, other)).status).toBe(200);
    } finally {
      await gh.close();
    }
  });
});

describe('home realm discovery at /login', () => {
  it('limits discovery probes per address and answers a page with a reason code past the limit', async () => {
    const { app } = buildTestApp(t, { GATEHOUSE_LOGIN_DISCOVERY_RATE_LIMIT: '3' });
    for (const domain of ['a.test', 'b.test', 'c.test']) {
      const probe = await request(app)
        .get('/login')
        .query({ login: 'login-1', email: `x@${domain}` });
      expect(probe.status).not.toBe(429);
    }
    const limited = await request(app).get('/login').query({ login: 'login-1', email: 'x@d.test' });
    expect(limited.status).toBe(429);
    expect(limited.headers['content-type']).toMatch(/text\/html/);
    expect(limited.text).toContain('rate_limited');
    expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
  });
});
