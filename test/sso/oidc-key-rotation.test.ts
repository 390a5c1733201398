import { randomBytes, randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as jose from 'jose';
import Provider from 'oidc-provider';
import { oidcCallbackUrl } from '../../src/sso/oidc/oidc-flow.js';
import { TestBrowser } from '../support/browser.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { RecordingCompleter, startSsoServer, type SsoServer } from '../support/sso-app.js';
import { createOidcConnection, createTenantWithDomains } from '../support/sso-factories.js';

/**
 * Issue 16: an OIDC IdP that rotates its signing key is accepted at once.
 * A real oidc-provider signs with key 1; a first login makes Gatehouse cache
 * its JWKS; the provider is replaced (same issuer and client) by one that
 * signs with key 2 only; the next login, seconds later, must succeed — before,
 * oauth4webapi refused an unknown kid until its JWKS copy was 60 s old. The
 * JWKS endpoint counts its fetches: the rotation costs exactly one.
 */
let t: TestDatabase;
let gh: SsoServer;
const completer = new RecordingCompleter();
let server: http.Server;
let issuer: string;
let current: Provider;
let jwksFetches = 0;
const clientId = `gatehouse-${randomBytes(4).toString('hex')}`;
const clientSecret = randomBytes(24).toString('base64url');
const connectionId = randomUUID();
let next: { sub: string; email: string } | null = null;

async function providerSigningWith(kid: string): Promise<Provider> {
  const { privateKey } = await jose.generateKeyPair('RS256', { extractable: true });
  return new Provider(issuer, {
    clients: [
      {
        client_id: clientId,
        client_secret: clientSecret,
        redirect_uris: [oidcCallbackUrl(gh.baseUrl, connectionId)],
        token_endpoint_auth_method: 'client_secret_basic',
      },
    ],
    jwks: { keys: [{ ...(await jose.exportJWK(privateKey)), kid, use: 'sig', alg: 'RS256' }] },
    cookies: { keys: [randomBytes(16).toString('hex')] },
    claims: { openid: ['sub'], email: ['email', 'email_verified'] },
    scopes: ['openid', 'email'],
    conformIdTokenClaims: false,
    features: { devInteractions: { enabled: false } },
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    findAccount: (_ctx, sub) =>
      next && next.sub === sub
        ? { accountId: sub, claims: () => ({ sub, email: next?.email, email_verified: true }) }
        : undefined,
  });
}

async function interact(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const details = await current.interactionDetails(req, res);
  if (details.prompt.name === 'login') {
    await current.interactionFinished(
      req,
      res,
      { login: { accountId: next?.sub ?? '' } },
      { mergeWithLastSubmission: false },
    );
    return;
  }
  const grant = new current.Grant({ accountId: details.session?.accountId ?? '', clientId });
  grant.addOIDCScope('openid email');
  await current.interactionFinished(
    req,
    res,
    { consent: { grantId: await grant.save() } },
    { mergeWithLastSubmission: true },
  );
}

beforeAll(async () => {
  t = await createTestDatabase();
  gh = await startSsoServer(t, { completer });
  server = http.createServer((req, res) => {
    if (req.url?.startsWith('/jwks')) jwksFetches++;
    if (req.url?.startsWith('/interaction/')) {
      interact(req, res).catch((error: unknown) => res.writeHead(500).end(String(error)));
      return;
    }
    void current.callback()(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  current = await providerSigningWith('key-1');
  const tenantId = await createTenantWithDomains(t.db, 'rotating', ['rotating.test']);
  await createOidcConnection(
    t.db,
    gh.secrets.masterKey,
    tenantId,
    { issuer, clientId, clientSecret },
    { id: connectionId, oidcScopes: ['openid', 'email'] },
  );
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  await gh.close();
  await t.close();
});

async function signIn(name: string): Promise<{ loginId: string; body: string }> {
  next = { sub: `sub-${name}`, email: `${name}@rotating.test` };
  const loginId = randomUUID();
  const done = await new TestBrowser().visit(
    `${gh.baseUrl}/login?login=${loginId}&email=${encodeURIComponent(next.email)}`,
    'about:',
  );
  return { loginId, body: done.body };
}

describe('the IdP rotates its ID token signing key', () => {
  it('accepts the first ID token signed with the new key at once, with one JWKS refetch', async () => {
    const before = await signIn('first');
    expect(before.body).toBe(`completed ${before.loginId}`);
    expect(jwksFetches).toBe(1);

    const again = await signIn('cached');
    expect(again.body).toBe(`completed ${again.loginId}`);
    expect(jwksFetches).toBe(1);

    current = await providerSigningWith('key-2');
    const after = await signIn('after');
    expect(after.body).toBe(`completed ${after.loginId}`);
    expect(jwksFetches).toBe(2);

    const later = await signIn('later');
    expect(later.body).toBe(`completed ${later.loginId}`);
    expect(jwksFetches).toBe(2);
  });
});
