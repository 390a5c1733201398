import {
  createRemoteJWKSet,
  decodeJwt,
  decodeProtectedHeader,
  exportJWK,
  generateKeyPair,
  importJWK,
  exportSPKI,
  jwtVerify,
  SignJWT,
  type JWK,
  type JWTPayload,
} from 'jose';
import * as client from 'openid-client';
import { revokeUserSessions } from '../../src/sessions/sessions.service.js';
import { TestBrowser } from '../support/browser.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { CALLBACK, mainAppClient, postForm, signIn } from '../support/main-app.js';
import { createPerson, createTenantWithConnection } from '../support/oauth-fixtures.js';
import { registerApp, startOAuthServer, type OAuthServer, type Person } from '../support/oauth-server.js';

/**
 * Gatehouse's own tokens cannot be forged or outlive their session: algorithm
 * confusion, foreign keys, expiry, and revocation seen at once on every node.
 * Sign-in goes through the test's DirectLoginFlow (internal seam).
 */
let t: TestDatabase;
let gh: OAuthServer;
let node2: OAuthServer;
let app: { clientId: string; clientSecret: string | undefined };
let alice: Person;
let config: client.Configuration;

beforeAll(async () => {
  t = await createTestDatabase();
  gh = await startOAuthServer(t);
  // A second node on the same database, issuer and master key, as behind a load balancer.
  node2 = await startOAuthServer(t, { GATEHOUSE_BASE_URL: gh.baseUrl }, { secrets: gh.secrets });
  const acme = await createTenantWithConnection(t.db, 'acme');
  alice = await createPerson(t.db, acme, 'alice@acme.test');
  gh.flow.people.set('alice@acme.test', alice);
  app = await registerApp(gh, { redirect_uris: [CALLBACK] });
  config = await mainAppClient(gh, app.clientId, app.clientSecret);
});
afterAll(async () => {
  await node2.close();
  await gh.close();
  await t.close();
});

async function userinfoStatus(server: OAuthServer, token: string): Promise<number> {
  const res = await fetch(`${server.url}/oauth/userinfo`, { headers: { authorization: `Bearer ${token}` } });
  if (res.status === 401)
    expect(res.headers.get('www-authenticate')).toMatch(/^Bearer .*error="invalid_token"/);
  return res.status;
}

async function introspect(server: OAuthServer, token: string) {
  const res = await postForm(
    server,
    '/oauth/introspect',
    { token },
    { id: app.clientId, secret: app.clientSecret! },
  );
  expect(res.status).toBe(200);
  return res.body;
}

async function publishedKey(alg: string): Promise<JWK> {
  const { keys } = (await (await fetch(`${gh.baseUrl}/.well-known/jwks.json`)).json()) as { keys: JWK[] };
  return keys.find((k) => k.alg === alg)!;
}

const encode = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');

describe('forged access tokens', () => {
  let genuine: string;
  let claims: JWTPayload;
  let kid: string;

  beforeAll(async () => {
    genuine = (await signIn(config, new TestBrowser(), 'alice@acme.test')).tokens.access_token;
    claims = decodeJwt(genuine);
    kid = decodeProtectedHeader(genuine).kid!;
  });

  const forgeries: [string, () => Promise<string>][] = [
    ['alg none', async () => `${encode({ alg: 'none', typ: 'at+jwt', kid })}.${encode(claims)}.`],
    [
      'HS256 keyed with the published EC key (JWK JSON)',
      async () =>
        new SignJWT(claims)
          .setProtectedHeader({ alg: 'HS256', typ: 'at+jwt', kid })
          .sign(new TextEncoder().encode(JSON.stringify(await publishedKey('ES256')))),
    ],
    [
      'HS256 keyed with the published RSA key (PEM)',
      async () => {
        const rsa = await publishedKey('RS256');
        const pem = await exportSPKI((await importJWK(rsa, 'RS256', { extractable: true })) as CryptoKey);
        return new SignJWT(claims)
          .setProtectedHeader({ alg: 'HS256', typ: 'at+jwt', kid: rsa.kid! })
          .sign(new TextEncoder().encode(pem));
      },
    ],
    [
      "an attacker's own key under a published kid",
      async () => {
        const attacker = await generateKeyPair('ES256');
        return new SignJWT(claims)
          .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid })
          .sign(attacker.privateKey);
      },
    ],
    [
      "an attacker's key embedded in the header (jwk)",
      async () => {
        const attacker = await generateKeyPair('ES256', { extractable: true });
        return new SignJWT(claims)
          .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', jwk: await exportJWK(attacker.publicKey) })
          .sign(attacker.privateKey);
      },
    ],
    [
      'ES256 claimed for the EdDSA key',
      async () => {
        const ed = await publishedKey('EdDSA');
        const [, payload, signature] = genuine.split('.');
        return `${encode({ alg: 'ES256', typ: 'at+jwt', kid: ed.kid })}.${payload}.${signature}`;
      },
    ],
    [
      'a genuine signature over changed claims (another tenant)',
      async () => {
        const [header, , signature] = genuine.split('.');
        return `${header}.${encode({ ...claims, tid: '00000000-0000-4000-8000-000000000000' })}.${signature}`;
      },
    ],
    [
      'an ID token presented as an access token',
      async () => (await signIn(config, new TestBrowser(), 'alice@acme.test')).tokens.id_token!,
    ],
    [
      'a genuine key signing for another issuer',
      async () => gh.keys.sign({ ...claims, iss: 'https://evil.example' }, { alg: 'ES256', typ: 'at+jwt' }),
    ],
  ];

  it('accepts the genuine token (control)', async () => {
    expect(await userinfoStatus(gh, genuine)).toBe(200);
    expect(await introspect(gh, genuine)).toMatchObject({ active: true });
  });

  it.each(forgeries)('rejects %s at userinfo and introspection', async (_name, forge) => {
    const forged = await forge();
    expect(await userinfoStatus(gh, forged)).toBe(401);
    expect(await introspect(gh, forged)).toEqual({ active: false });
  });

  it.each(forgeries)('is rejected by an app verifying with pinned algorithms: %s', async (_name, forge) => {
    const forged = await forge();
    await expect(
      jwtVerify(forged, createRemoteJWKSet(new URL(`${gh.baseUrl}/.well-known/jwks.json`)), {
        issuer: gh.baseUrl,
        audience: app.clientId,
        typ: 'at+jwt',
        algorithms: ['ES256'],
      }),
    ).rejects.toThrow();
  });
});

describe('expiry and revocation', () => {
  it('treats an expired access token as inactive, and an app verifying it refuses it', async () => {
    const { tokens } = await signIn(config, new TestBrowser(), 'alice@acme.test');
    const claims = decodeJwt(tokens.access_token);
    const now = Math.floor(Date.now() / 1000);
    const expired = await gh.keys.sign(
      { ...claims, iat: now - 600, exp: now - 300 },
      { alg: 'ES256', typ: 'at+jwt' },
    );
    expect(await introspect(gh, expired)).toEqual({ active: false });
    expect(await userinfoStatus(gh, expired)).toBe(401);
    await expect(
      jwtVerify(expired, createRemoteJWKSet(new URL(`${gh.baseUrl}/.well-known/jwks.json`)), {
        issuer: gh.baseUrl,
        typ: 'at+jwt',
        algorithms: ['ES256'],
      }),
    ).rejects.toMatchObject({ code: 'ERR_JWT_EXPIRED' });
  });

  it('sees a revoked session at once on every node: introspection inactive, refresh and userinfo refused', async () => {
    const { tokens } = await signIn(config, new TestBrowser(), 'alice@acme.test');
    expect(await introspect(node2, tokens.access_token)).toMatchObject({ active: true });
    // As SCIM deprovisioning does, in the directory's own transaction.
    await t.db.withTenant(alice.tenantId, (em) => revokeUserSessions(em, alice.userId, 'scim_deprovisioned'));
    for (const server of [gh, node2]) {
      expect(await introspect(server, tokens.access_token)).toEqual({ active: false });
      expect(await introspect(server, tokens.refresh_token!)).toEqual({ active: false });
      expect(await userinfoStatus(server, tokens.access_token)).toBe(401);
    }
    const refresh = await postForm(
      node2,
      '/oauth/token',
      { grant_type: 'refresh_token', refresh_token: tokens.refresh_token! },
      { id: app.clientId, secret: app.clientSecret! },
    );
    expect(refresh.body).toMatchObject({ error: 'invalid_grant' });
  });

  it('refuses the tokens of a person suspended in the directory, even before any revocation', async () => {
    const acme = { tenantId: alice.tenantId, connectionId: alice.connectionId };
    const dave = await createPerson(t.db, acme, 'dave@acme.test');
    gh.flow.people.set('dave@acme.test', dave);
    const { tokens } = await signIn(config, new TestBrowser(), 'dave@acme.test');
    await t.db.withTenant(dave.tenantId, (em) =>
      em.query(`UPDATE users SET status = 'suspended' WHERE id = $1`, [dave.userId]),
    );
    expect(await introspect(gh, tokens.access_token)).toEqual({ active: false });
    expect(await userinfoStatus(gh, tokens.access_token)).toBe(401);
    await expect(client.refreshTokenGrant(config, tokens.refresh_token!)).rejects.toMatchObject({
      error: 'invalid_grant',
    });
  });

  it('refuses every token of an organization once it is suspended', async () => {
    const initech = await createTenantWithConnection(t.db, 'initech');
    const peter = await createPerson(t.db, initech, 'peter@initech.test');
    gh.flow.people.set('peter@initech.test', peter);
    const { tokens } = await signIn(config, new TestBrowser(), 'peter@initech.test');
    await t.db.withPlatform((em) =>
      em.query(`UPDATE tenants SET status = 'suspended' WHERE id = $1`, [initech.tenantId]),
    );
    expect(await introspect(gh, tokens.access_token)).toEqual({ active: false });
    expect(await introspect(gh, tokens.refresh_token!)).toEqual({ active: false });
    expect(await userinfoStatus(gh, tokens.access_token)).toBe(401);
    await expect(client.refreshTokenGrant(config, tokens.refresh_token!)).rejects.toMatchObject({
      error: 'invalid_grant',
    });
  });

  it('answers introspection only to the app the token was issued to', async () => {
    const { tokens } = await signIn(config, new TestBrowser(), 'alice@acme.test');
    const stranger = await registerApp(gh, { redirect_uris: [CALLBACK] });
    const strangerConfig = await mainAppClient(gh, stranger.clientId, stranger.clientSecret);
    expect(await client.tokenIntrospection(strangerConfig, tokens.access_token)).toEqual({ active: false });
    expect(await client.tokenIntrospection(strangerConfig, tokens.refresh_token!)).toEqual({ active: false });
    // Nor can it revoke them.
    await client.tokenRevocation(strangerConfig, tokens.refresh_token!);
    expect(await introspect(gh, tokens.access_token)).toMatchObject({ active: true });
  });
});
