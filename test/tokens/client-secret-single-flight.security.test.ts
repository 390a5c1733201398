import { clientSecretArgon2Checks } from '../../src/tokens/grants/client-auth.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { CALLBACK, postForm } from '../support/main-app.js';
import { registerApp, startOAuthServer, type OAuthServer } from '../support/oauth-server.js';

/**
 * The client-secret herd (issue 13): a node that has not checked a client
 * secret yet and receives many requests with it at once runs ONE argon2id
 * check, which those requests share (src/tokens/grants/client-auth.ts), as the
 * SCIM bearer does. Counted with the real app over HTTP: the counter is the
 * number of argon2 verifications the process ran.
 */
let t: TestDatabase;
let gh: OAuthServer;
beforeAll(async () => {
  t = await createTestDatabase();
  gh = await startOAuthServer(t);
});
afterAll(async () => {
  await gh.close();
  await t.close();
});

type Client = { clientId: string; clientSecret: string };

async function freshApp(): Promise<Client> {
  const a = await registerApp(gh, { redirect_uris: [CALLBACK] });
  return { clientId: a.clientId, clientSecret: a.clientSecret! };
}

/** The same secret id with other random bytes: it reaches the argon2 check and fails there. */
const wrongSecretOf = (secret: string) =>
  `${secret.slice(0, -4)}${secret.endsWith('AAAA') ? 'BBBB' : 'AAAA'}`;

const introspect = (c: Client, secret = c.clientSecret) =>
  postForm(gh, '/oauth/introspect', { token: 'not-a-token' }, { id: c.clientId, secret });

describe('client secret checks under a burst (one argon2id per secret at a time)', () => {
  it('ten concurrent requests with one new secret share one check; a wrong secret among them has its own and fails', async () => {
    const app = await freshApp();
    const before = clientSecretArgon2Checks();
    const answers = await Promise.all([
      ...Array.from({ length: 10 }, () => introspect(app)),
      introspect(app, wrongSecretOf(app.clientSecret)),
    ]);
    expect(answers.slice(0, 10).map((a) => a.status)).toEqual(Array(10).fill(200));
    // The wrong secret never shares the right one's success.
    expect(answers[10]).toMatchObject({ status: 401, body: { error: 'invalid_client' } });
    expect(clientSecretArgon2Checks() - before).toBe(2);
  });

  it('concurrent wrong secrets each get their own check and all fail', async () => {
    const app = await freshApp();
    const before = clientSecretArgon2Checks();
    const guesses = [wrongSecretOf(app.clientSecret), `${app.clientSecret.slice(0, -1)}_`];
    const answers = await Promise.all(guesses.map((g) => introspect(app, g)));
    expect(answers.map((a) => a.status)).toEqual([401, 401]);
    expect(clientSecretArgon2Checks() - before).toBe(2);
  });

  it('two apps checked at once do not share: each runs its own check and each succeeds', async () => {
    const [a, b] = await Promise.all([freshApp(), freshApp()]);
    const before = clientSecretArgon2Checks();
    const answers = await Promise.all([introspect(a), introspect(b), introspect(a), introspect(b)]);
    expect(answers.map((r) => r.status)).toEqual([200, 200, 200, 200]);
    expect(clientSecretArgon2Checks() - before).toBe(2);
    // Another app's client_id with this app's secret names no secret of that app: refused without a check.
    const crossed = await introspect({ clientId: b.clientId, clientSecret: a.clientSecret });
    expect(crossed.status).toBe(401);
    expect(clientSecretArgon2Checks() - before).toBe(2);
  });

  it('once answered, a secret checked within the minute is not checked again (the existing memo), and a new burst after it costs nothing', async () => {
    const app = await freshApp();
    expect((await introspect(app)).status).toBe(200);
    const before = clientSecretArgon2Checks();
    const answers = await Promise.all(Array.from({ length: 5 }, () => introspect(app)));
    expect(answers.map((a) => a.status)).toEqual(Array(5).fill(200));
    expect(clientSecretArgon2Checks() - before).toBe(0);
  });
});
