import { createHash, randomUUID, X509Certificate } from 'node:crypto';
import fc from 'fast-check';
import * as jose from 'jose';
import request from 'supertest';
import { oidcCallbackUrl } from '../../src/sso/oidc/oidc-flow.js';
import { TestBrowser } from '../support/browser.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { startOidcProvider, type OidcProviderPeer } from '../support/oidc-op.js';
import { RecordingCompleter, startSsoServer, type SsoServer } from '../support/sso-app.js';
import {
  auditEvents,
  createOidcConnection,
  createTenantWithDomains,
  loginFootprint,
} from '../support/sso-factories.js';

/**
 * OIDC upstream with client assertions instead of a secret on the wire
 * (issue 16; RFC 7523 §2.2, OIDC Core §9), against oidc-provider as the IdP:
 * `private_key_jwt` with the connection's own key, which the OP fetches from
 * Gatehouse's per-connection JWKS URL (the client's registered `jwks_uri`),
 * and `client_secret_jwt` (HS256 over the shared secret).
 */
let t: TestDatabase;
let gh: SsoServer;
const completer = new RecordingCompleter();
const peers: OidcProviderPeer[] = [];

beforeAll(async () => {
  t = await createTestDatabase();
  gh = await startSsoServer(t, { completer });
});
afterAll(async () => {
  for (const p of peers) await p.close();
  await gh.close();
  await t.close();
});

const op = () => request.agent(gh.app).set('Authorization', `Bearer ${gh.secrets.adminToken}`);
const jwksUrl = (connectionId: string) => `${gh.baseUrl}/oidc/${connectionId}/jwks`;

/** A tenant whose OIDC connection's client is registered at a fresh OP with `client` metadata. */
async function setup(
  domain: string,
  method: string,
  client: (connectionId: string) => Record<string, unknown>,
) {
  const connectionId = randomUUID();
  const peer = await startOidcProvider({
    redirectUris: [oidcCallbackUrl(gh.baseUrl, connectionId)],
    claimsInIdToken: true,
    client: client(connectionId),
  });
  peers.push(peer);
  const tenantId = await createTenantWithDomains(t.db, `t-${randomUUID().slice(0, 8)}`, [domain]);
  await createOidcConnection(
    t.db,
    gh.secrets.masterKey,
    tenantId,
    { issuer: peer.issuer, clientId: peer.clientId, clientSecret: peer.clientSecret },
    { id: connectionId },
  );
  // The admin switches the method; private_key_jwt gets its key pair in the same transaction.
  const res = await op()
    .patch(`/admin/v1/tenants/${tenantId}/connections/${connectionId}`)
    .send({ client_auth_method: method });
  expect(res.status).toBe(200);
  expect(res.body.oidc).toMatchObject({ client_auth_method: method, jwks_uri: jwksUrl(connectionId) });
  return { tenantId, connectionId, peer };
}

async function signIn(peer: OidcProviderPeer, email: string) {
  peer.signInAs({ sub: `sub-${email}`, claims: { email, email_verified: true } });
  const loginId = randomUUID();
  const done = await new TestBrowser().visit(
    `${gh.baseUrl}/login?login=${loginId}&email=${encodeURIComponent(email)}`,
    'about:',
  );
  return { loginId, done };
}

describe('OIDC client authentication with JWT assertions', () => {
  it('signs in with private_key_jwt, the OP verifying our assertion with the key from our JWKS URL', async () => {
    const s = await setup('pkjwt.test', 'private_key_jwt', (id) => ({
      token_endpoint_auth_method: 'private_key_jwt',
      jwks_uri: jwksUrl(id),
    }));
    const jwks = await fetch(jwksUrl(s.connectionId));
    expect(jwks.status).toBe(200);
    const published = (await jwks.json()) as { keys: jose.JWK[] };
    expect(published.keys).toEqual([expect.objectContaining({ kty: 'RSA', alg: 'RS256', use: 'sig' })]);
    expect(JSON.stringify(published)).not.toMatch(/"d"|"p"|"q"/);

    const { loginId, done } = await signIn(s.peer, 'pia@pkjwt.test');
    expect(done.body).toBe(`completed ${loginId}`);
  });

  it('publishes a certificate for the key (x5c, x5t) and names it by x5t in the assertion header, as Entra requires', async () => {
    const s = await setup('x5t.test', 'private_key_jwt', (id) => ({
      token_endpoint_auth_method: 'private_key_jwt',
      jwks_uri: jwksUrl(id),
    }));
    const published = (await (await fetch(jwksUrl(s.connectionId))).json()) as { keys: jose.JWK[] };
    const [jwk] = published.keys;
    const der = Buffer.from(jwk?.x5c?.[0] ?? '', 'base64');
    const certificate = new X509Certificate(der);
    // The certificate wraps the very key the JWK describes, and the thumbprints are of its DER (RFC 7517 §4.8-4.9).
    expect(certificate.publicKey.export({ format: 'jwk' })).toMatchObject({ n: jwk?.n, e: jwk?.e });
    expect(certificate.verify(certificate.publicKey)).toBe(true);
    const sha1 = createHash('sha1').update(der).digest('base64url');
    expect(jwk).toMatchObject({
      x5t: sha1,
      'x5t#S256': createHash('sha256').update(der).digest('base64url'),
    });

    // What the admin uploads to Entra: the same certificate, and the thumbprint Entra shows (hex SHA-1).
    const keys = await op().get(`/admin/v1/tenants/${s.tenantId}/connections/${s.connectionId}/client-keys`);
    const [listed] = keys.body.data as {
      certificate_pem: string;
      x5t: string;
      certificate_thumbprint: string;
    }[];
    expect(new X509Certificate(listed?.certificate_pem ?? '').raw).toEqual(der);
    expect(listed).toMatchObject({
      x5t: sha1,
      certificate_thumbprint: createHash('sha1').update(der).digest('hex').toUpperCase(),
    });

    const { loginId, done } = await signIn(s.peer, 'xena@x5t.test');
    expect(done.body).toBe(`completed ${loginId}`);
    const [assertion] = s.peer.clientAssertions;
    expect(s.peer.clientAssertions).toHaveLength(1);
    expect(jose.decodeProtectedHeader(assertion ?? '')).toMatchObject({
      alg: 'RS256',
      kid: jwk?.kid,
      x5t: sha1,
      'x5t#S256': createHash('sha256').update(der).digest('base64url'),
    });
  });

  it('gives a key made before certificates one on first need, and the login that needs it succeeds', async () => {
    const s = await setup('legacy.test', 'private_key_jwt', (id) => ({
      token_endpoint_auth_method: 'private_key_jwt',
      jwks_uri: jwksUrl(id),
    }));
    await t.db.withTenant(s.tenantId, (em) =>
      em.query('UPDATE connection_client_keys SET certificate_pem = NULL WHERE connection_id = $1', [
        s.connectionId,
      ]),
    );
    const bare = (await (await fetch(jwksUrl(s.connectionId))).json()) as { keys: jose.JWK[] };
    expect(bare.keys[0]?.x5c).toBeUndefined();

    const { loginId, done } = await signIn(s.peer, 'lee@legacy.test');
    expect(done.body).toBe(`completed ${loginId}`);
    const after = (await (await fetch(jwksUrl(s.connectionId))).json()) as { keys: jose.JWK[] };
    const der = Buffer.from(after.keys[0]?.x5c?.[0] ?? '', 'base64');
    const sha1 = createHash('sha1').update(der).digest('base64url');
    expect(after.keys[0]).toMatchObject({ kid: bare.keys[0]?.kid, x5t: sha1 });
    expect(jose.decodeProtectedHeader(s.peer.clientAssertions[0] ?? '')).toMatchObject({ x5t: sha1 });
  });

  it('gives an ES256 key an ECDSA certificate around the same key', async () => {
    const s = await setup('es256.test', 'private_key_jwt', (id) => ({
      token_endpoint_auth_method: 'private_key_jwt',
      jwks_uri: jwksUrl(id),
    }));
    const next = await op()
      .post(`/admin/v1/tenants/${s.tenantId}/connections/${s.connectionId}/client-keys/rotate`)
      .send({ alg: 'ES256' });
    expect(next.status).toBe(201);
    const certificate = new X509Certificate(next.body.certificate_pem as string);
    expect(certificate.publicKey.asymmetricKeyType).toBe('ec');
    expect(certificate.publicKey.export({ format: 'jwk' })).toMatchObject({
      x: next.body.public_jwk.x,
      y: next.body.public_jwk.y,
    });
    expect(certificate.verify(certificate.publicKey)).toBe(true);
  });

  it('rotates: the next key is published before it signs, so the OP has it when it switches', async () => {
    const s = await setup('rotate.test', 'private_key_jwt', (id) => ({
      token_endpoint_auth_method: 'private_key_jwt',
      jwks_uri: jwksUrl(id),
    }));
    const keys = `/admin/v1/tenants/${s.tenantId}/connections/${s.connectionId}/client-keys`;
    const next = await op().post(`${keys}/rotate`).send({ alg: 'ES256' });
    expect(next.status).toBe(201);
    expect(next.body).toMatchObject({ status: 'next', alg: 'ES256' });
    const both = (await (await fetch(jwksUrl(s.connectionId))).json()) as { keys: jose.JWK[] };
    expect(both.keys.map((k) => k.kid)).toContain(next.body.kid);
    expect(both.keys).toHaveLength(2);
    // Signed with the current key; the OP caches our JWKS, next key included (oidc-provider: >= 60 s).
    expect((await signIn(s.peer, 'rae@rotate.test')).done.body).toMatch(/^completed /);

    const activated = await op().post(`${keys}/activate`).send({});
    expect(activated.status).toBe(200);
    expect(activated.body.activated).toMatchObject({ kid: next.body.kid, status: 'current' });
    const after = (await (await fetch(jwksUrl(s.connectionId))).json()) as { keys: jose.JWK[] };
    expect(after.keys.map((k) => k.kid)).toEqual([next.body.kid]);
    // Signed with the new key, which the OP already holds: no failed login at the switch.
    const { loginId, done } = await signIn(s.peer, 'ray@rotate.test');
    expect(done.body).toBe(`completed ${loginId}`);
    expect(await auditEvents(t.db, s.tenantId, 'connection.client_key_published')).toHaveLength(1);
    expect(await auditEvents(t.db, s.tenantId, 'connection.client_key_activated')).toHaveLength(1);
    // Nothing left to activate.
    expect((await op().post(`${keys}/activate`).send({})).status).toBe(404);
  });

  it('signs in with client_secret_jwt', async () => {
    const s = await setup('csjwt.test', 'client_secret_jwt', () => ({
      token_endpoint_auth_method: 'client_secret_jwt',
    }));
    const { loginId, done } = await signIn(s.peer, 'cas@csjwt.test');
    expect(done.body).toBe(`completed ${loginId}`);
  });

  it('shows a typed reason when the OP refuses our assertion (it holds another key for us)', async () => {
    const decoy = await setup('decoy.test', 'private_key_jwt', (id) => ({
      token_endpoint_auth_method: 'private_key_jwt',
      jwks_uri: jwksUrl(id),
    }));
    // The IdP admin registered another connection's JWKS URL: our assertion's kid is not in it.
    const s = await setup('wrongkey.test', 'private_key_jwt', () => ({
      token_endpoint_auth_method: 'private_key_jwt',
      jwks_uri: jwksUrl(decoy.connectionId),
    }));
    const { done } = await signIn(s.peer, 'wes@wrongkey.test');
    expect(done.body).toContain('<code>oidc_token_exchange_failed</code>');
    expect(done.status).toBeGreaterThanOrEqual(400);
    expect(await loginFootprint(t.db, s.tenantId)).toMatchObject({ users: 0, sessions: 0 });
    const failures = await auditEvents(t.db, s.tenantId, 'login.failed');
    expect(failures.at(-1)?.after).toEqual({
      reason: 'oidc_token_exchange_failed',
      connection_id: s.connectionId,
    });
  });

  it('creates a private_key_jwt connection without a client secret; refuses a secret method without one, writing nothing', async () => {
    const connectionId = randomUUID();
    const peer = await startOidcProvider({ redirectUris: [oidcCallbackUrl(gh.baseUrl, connectionId)] });
    peers.push(peer);
    const tenantId = await createTenantWithDomains(t.db, `t-${randomUUID().slice(0, 8)}`, ['create.test']);
    const base = { type: 'oidc', name: 'IdP', issuer: peer.issuer, client_id: peer.clientId };
    const refused = await op()
      .post(`/admin/v1/tenants/${tenantId}/connections`)
      .send({ ...base, client_auth_method: 'client_secret_jwt' });
    expect(refused.status).toBe(400);
    expect(refused.body).toMatchObject({
      code: 'bad_request',
      message: expect.stringMatching(/client_secret/),
    });
    const count = async (table: string) =>
      Number((await t.db.withTenant(tenantId, (em) => em.query(`SELECT count(*) AS n FROM ${table}`)))[0].n);
    expect(await count('connections')).toBe(0);

    const created = await op()
      .post(`/admin/v1/tenants/${tenantId}/connections`)
      .send({ ...base, client_auth_method: 'private_key_jwt' });
    expect(created.status).toBe(201);
    expect(created.body.oidc).toMatchObject({ client_auth_method: 'private_key_jwt' });
    const keys = await op().get(`/admin/v1/tenants/${tenantId}/connections/${created.body.id}/client-keys`);
    expect(keys.body.data).toEqual([expect.objectContaining({ status: 'current', alg: 'RS256' })]);
    expect(JSON.stringify(keys.body)).not.toMatch(/private|"d":/);
  });

  it('property: any body on rotate, activate and refresh never answers 5xx, and a 4xx changes no key', async () => {
    const s = await setup('prop.test', 'private_key_jwt', (id) => ({
      token_endpoint_auth_method: 'private_key_jwt',
      jwks_uri: jwksUrl(id),
    }));
    const base = `/admin/v1/tenants/${s.tenantId}/connections/${s.connectionId}`;
    const keys = () =>
      t.db.withTenant(s.tenantId, (em) =>
        em.query<{ kid: string; status: string }[]>(
          'SELECT kid, status FROM connection_client_keys ORDER BY kid',
        ),
      );
    const runs = Number(process.env.GATEHOUSE_FUZZ_RUNS ?? 40);
    const seed = Number.isInteger(Number(process.env.GATEHOUSE_FUZZ_SEED))
      ? Number(process.env.GATEHOUSE_FUZZ_SEED)
      : 16;
    const body = fc.oneof(
      fc.record(
        { alg: fc.oneof(fc.constantFrom('RS256', 'ES256', 'HS256', 'none', '__proto__'), fc.string()) },
        { requiredKeys: [] },
      ),
      fc.dictionary(fc.constantFrom('alg', 'kid', '__proto__', 'constructor', 'x'), fc.jsonValue(), {
        maxKeys: 3,
      }),
      fc.jsonValue(),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('client-keys/rotate', 'client-keys/activate', 'metadata/refresh'),
        body,
        async (path, b) => {
          const before = await keys();
          const res = await op()
            .post(`${base}/${path}`)
            .set('Content-Type', 'application/json')
            .send(JSON.stringify(b));
          expect(res.status).toBeLessThan(500);
          if (res.status >= 400) {
            expect(res.body).toMatchObject({ code: expect.any(String), message: expect.any(String) });
            expect(await keys()).toEqual(before);
          }
          expect(({} as Record<string, unknown>).polluted).toBeUndefined();
        },
      ),
      { seed, numRuns: runs },
    );
    // Whatever happened, the connection still has exactly one current key and at most one next.
    const after = await keys();
    expect(after.filter((k) => k.status === 'current')).toHaveLength(1);
    expect(after.filter((k) => k.status === 'next').length).toBeLessThanOrEqual(1);
  });

  it('answers 404 on the JWKS URL of a connection that does not use private_key_jwt, or does not exist', async () => {
    const s = await setup('nojwks.test', 'client_secret_basic', () => ({}));
    expect((await fetch(jwksUrl(s.connectionId))).status).toBe(404);
    expect((await fetch(jwksUrl(randomUUID()))).status).toBe(404);
    expect((await fetch(`${gh.baseUrl}/oidc/not-a-uuid/jwks`)).status).toBe(404);
  });
});
