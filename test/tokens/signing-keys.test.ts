import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify, type JWK } from 'jose';
import { verifyAuditChain } from '../../src/audit/audit.service.js';
import { open } from '../../src/config/secret-box.js';
import { PLATFORM_TENANT_ID } from '../../src/db/database.js';
import { SigningKeyStore, signingKeyStoreOptions } from '../../src/tokens/keys/key-store.js';
import { privateKeyContext } from '../../src/tokens/keys/signing-keys.service.js';
import { TestBrowser } from '../support/browser.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { authorize, CALLBACK, codeOf, mainAppClient, postForm } from '../support/main-app.js';
import { createPerson, createTenantWithConnection } from '../support/oauth-fixtures.js';
import { registerApp, startOAuthServer, type OAuthServer } from '../support/oauth-server.js';

/**
 * Signing keys: published before they sign, kept after they stop, rotated on
 * command and on schedule, picked up by every node without a restart, private
 * parts sealed at rest. Sign-in uses the test's DirectLoginFlow (internal seam).
 */
let t: TestDatabase;
let gh: OAuthServer;
let node2: OAuthServer;
let app: { clientId: string; clientSecret: string };

beforeAll(async () => {
  t = await createTestDatabase();
  gh = await startOAuthServer(t);
  // Another node: same database, issuer and master key; re-reads keys every second.
  node2 = await startOAuthServer(
    t,
    { GATEHOUSE_BASE_URL: gh.baseUrl, GATEHOUSE_SIGNING_KEY_CACHE_TTL: '1' },
    { secrets: gh.secrets },
  );
  const acme = await createTenantWithConnection(t.db, 'acme');
  gh.flow.people.set('alice@acme.test', await createPerson(t.db, acme, 'alice@acme.test'));
  const registered = await registerApp(gh, { redirect_uris: [CALLBACK] });
  app = { clientId: registered.clientId, clientSecret: registered.clientSecret! };
});
afterAll(async () => {
  await node2.close();
  await gh.close();
  await t.close();
});

const operator = () => ({ Authorization: `Bearer ${gh.secrets.adminToken}` });

interface KeyInfo {
  kid: string;
  alg: string;
  status: 'next' | 'active' | 'retired';
  published_until: string | null;
}

async function listKeys(): Promise<KeyInfo[]> {
  const res = await fetch(`${gh.url}/admin/v1/signing-keys`, { headers: operator() });
  expect(res.status).toBe(200);
  return ((await res.json()) as { data: KeyInfo[] }).data;
}

async function publishedKids(): Promise<string[]> {
  const res = await fetch(`${gh.url}/.well-known/jwks.json`);
  return ((await res.json()) as { keys: JWK[] }).keys.map((k) => k.kid!);
}

async function rotate(): Promise<Response> {
  return fetch(`${gh.url}/admin/v1/signing-keys/rotate`, { method: 'POST', headers: operator() });
}

/** Signs in through gh and exchanges the code at `node`: the token is signed by that node. */
async function tokensFrom(node: OAuthServer) {
  const config = await mainAppClient(gh, app.clientId, app.clientSecret);
  const attempt = await authorize(config, new TestBrowser(), { login_hint: 'alice@acme.test' });
  const res = await postForm(
    node,
    '/oauth/token',
    {
      grant_type: 'authorization_code',
      code: codeOf(attempt.callback),
      redirect_uri: CALLBACK,
      code_verifier: attempt.verifier,
    },
    { id: app.clientId, secret: app.clientSecret },
  );
  expect(res.status).toBe(200);
  return res.body as { access_token: string; id_token: string };
}

const verify = (token: string) =>
  jwtVerify(token, createRemoteJWKSet(new URL(`${gh.baseUrl}/.well-known/jwks.json`)), {
    issuer: gh.baseUrl,
    audience: app.clientId,
    typ: 'at+jwt',
    algorithms: ['ES256'],
  });

describe('rotation on command', () => {
  it('signs with the key that was already published as next, and keeps the old key published', async () => {
    const before = await tokensFrom(gh);
    const keys = await listKeys();
    const active = keys.find((k) => k.alg === 'ES256' && k.status === 'active')!;
    const next = keys.find((k) => k.alg === 'ES256' && k.status === 'next')!;
    expect(decodeProtectedHeader(before.access_token).kid).toBe(active.kid);
    expect(await publishedKids()).toContain(next.kid);

    const res = await rotate();
    expect(res.status).toBe(200);
    const body = (await res.json()) as { activated: { kid: string; alg: string }[]; retired: KeyInfo[] };
    expect(body.activated).toContainEqual({ kid: next.kid, alg: 'ES256' });
    const retired = body.retired.find((k) => k.kid === active.kid)!;
    // Access/ID tokens live 300 s; + one cache period (60 s) + 60 s of skew.
    const publishedFor = (Date.parse(retired.published_until!) - Date.now()) / 1000;
    expect(publishedFor).toBeGreaterThan(400);
    expect(publishedFor).toBeLessThanOrEqual(420);

    const after = await tokensFrom(gh);
    expect(decodeProtectedHeader(after.access_token).kid).toBe(next.kid);
    const kids = await publishedKids();
    expect(kids).toContain(active.kid);
    const fresh = (await listKeys()).find((k) => k.alg === 'ES256' && k.status === 'next')!;
    expect(kids).toContain(fresh.kid);
    // A token signed before the rotation still verifies, as does one signed after.
    await verify(before.access_token);
    await verify(after.access_token);
  });

  it('is picked up by another node without a restart', async () => {
    const old = decodeProtectedHeader((await tokensFrom(node2)).access_token).kid;
    expect(await rotate()).toMatchObject({ status: 200 });
    const current = (await listKeys()).find((k) => k.alg === 'ES256' && k.status === 'active')!.kid;
    expect(current).not.toBe(old);
    // node2 re-reads its keys after its cache period (1 s here); poll without asserting time.
    let kid = old;
    for (let i = 0; i < 50 && kid !== current; i++) {
      await new Promise((r) => setTimeout(r, 200));
      kid = decodeProtectedHeader((await tokensFrom(node2)).access_token).kid;
    }
    expect(kid).toBe(current);
  });

  it('is for the operator only, and audited under the platform tenant', async () => {
    const anonymous = await fetch(`${gh.url}/admin/v1/signing-keys/rotate`, { method: 'POST' });
    expect(anonymous.status).toBe(401);
    const extra = await fetch(`${gh.url}/admin/v1/signing-keys/rotate`, {
      method: 'POST',
      headers: { ...operator(), 'content-type': 'application/json' },
      body: JSON.stringify({ force: true }),
    });
    expect(extra.status).toBe(400);
    const events = await t.db.withTenant(PLATFORM_TENANT_ID, (em) =>
      em.query<{ actor_type: string; after: { scheduled: boolean } }[]>(
        `SELECT actor_type, after FROM audit_events WHERE action = 'signing_keys.rotated' ORDER BY seq`,
      ),
    );
    expect(events).toHaveLength(2);
    expect(events[0]).toMatchObject({ actor_type: 'operator', after: { scheduled: false } });
    expect(await verifyAuditChain(t.db, PLATFORM_TENANT_ID)).toMatchObject({ valid: true });
  });
});

describe('keys at rest', () => {
  it('stores private keys sealed under the master key, bound to their kid', async () => {
    const rows = await t.asOwner<{ kid: string; private_key_enc: string; public_jwk: JWK }>(
      'SELECT kid, private_key_enc, public_jwk FROM signing_keys',
    );
    expect(rows.length).toBeGreaterThanOrEqual(6);
    for (const row of rows) {
      expect(row.private_key_enc).toMatch(/^v1\./);
      expect(row.private_key_enc).not.toContain('PRIVATE KEY');
      expect(row.public_jwk).not.toHaveProperty('d');
      expect(open(gh.secrets.masterKey, row.private_key_enc, privateKeyContext(row.kid))).toContain(
        'BEGIN PRIVATE KEY',
      );
    }
    const [a, b] = rows;
    expect(() => open(gh.secrets.masterKey, a!.private_key_enc, privateKeyContext(b!.kid))).toThrow();
  });
});

describe('rotation on schedule', () => {
  it('rotates once when the interval has passed, even with two nodes noticing together', async () => {
    let now = Date.now();
    const config = { ...gh.config, tokens: { ...gh.config.tokens, signingKeyRotationInterval: 3600 } };
    const store = () =>
      new SigningKeyStore({
        ...signingKeyStoreOptions(config, t.db, gh.secrets.masterKey),
        clock: () => new Date(now),
      });
    const [a, b] = [store(), store()];
    const countRotations = async () =>
      (
        await t.db.withTenant(PLATFORM_TENANT_ID, (em) =>
          em.query<{ n: number }[]>(
            `SELECT count(*)::int AS n FROM audit_events WHERE action = 'signing_keys.rotated'`,
          ),
        )
      )[0]!.n;
    await Promise.all([a.jwks(), b.jwks()]);
    const rotationsBefore = await countRotations();

    now += 3601 * 1000;
    await Promise.all([a.jwks(), b.jwks()]);
    expect(await countRotations()).toBe(rotationsBefore + 1);
    const scheduled = await t.db.withTenant(PLATFORM_TENANT_ID, (em) =>
      em.query<{ actor_id: string }[]>(
        `SELECT actor_id FROM audit_events WHERE action = 'signing_keys.rotated' ORDER BY seq DESC LIMIT 1`,
      ),
    );
    expect(scheduled).toEqual([{ actor_id: 'rotation-schedule' }]);

    // Once every token the retired key signed has expired, it leaves the JWKS.
    const retired = (await listKeys()).filter((k) => k.status === 'retired').map((k) => k.kid);
    const publishedNow = (await a.jwks()).keys.map((k) => k.kid);
    expect(retired.some((kid) => publishedNow.includes(kid))).toBe(true);
    now += 600 * 1000;
    const later = (await a.jwks()).keys.map((k) => k.kid);
    expect(retired.filter((kid) => later.includes(kid))).toEqual([]);
  });
});
