import { createPublicKey, randomUUID } from 'node:crypto';
import * as jose from 'jose';
import type { Connection } from '../../src/connections/connection.entity.js';
import { oidcCallbackUrl } from '../../src/sso/oidc/oidc-flow.js';
import { TestBrowser } from '../support/browser.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { startRogueProvider, type RogueContext, type RogueProvider } from '../support/oidc-op.js';
import { RecordingCompleter, startSsoServer, type SsoServer } from '../support/sso-app.js';
import {
  auditEvents,
  createOidcConnection,
  createTenantWithDomains,
  loginFootprint,
} from '../support/sso-factories.js';

/**
 * The OIDC callback against a hostile IdP: each ID token or authorization
 * response is crafted with jose by a rogue provider on loopback, and must be
 * refused with its reason code, no user, identity or session created, and a
 * login.failed audit event.
 */
let t: TestDatabase;
let gh: SsoServer;
const completer = new RecordingCompleter();
let rogue: RogueProvider;
let tenantId: string;
let connection: Connection;
let es256Only: Connection;

beforeAll(async () => {
  t = await createTestDatabase();
  gh = await startSsoServer(t, { completer });
  rogue = await startRogueProvider();
  tenantId = await createTenantWithDomains(t.db, 'rogue-co', ['rogue.test']);
  const client = { issuer: rogue.issuer, clientId: rogue.clientId, clientSecret: rogue.clientSecret };
  connection = await createOidcConnection(t.db, gh.secrets.masterKey, tenantId, client, { name: 'Rogue' });
  es256Only = await createOidcConnection(t.db, gh.secrets.masterKey, tenantId, client, {
    name: 'Pinned',
    oidcIdTokenAlgs: ['ES256'],
  });
});
afterAll(async () => {
  await rogue.close();
  await gh.close();
  await t.close();
});

beforeEach(() => {
  rogue.idToken = (ctx) => rogue.validIdToken(ctx);
  rogue.authorizationResponse = {};
});

function start(browser: TestBrowser, via: Connection = connection) {
  return browser.visit(
    `${gh.baseUrl}/login?login=${randomUUID()}&email=rick%40rogue.test&connection=${via.id}`,
    'about:',
  );
}

async function expectRefused(visit: { status: number; body: string }, reason: string, via = connection) {
  expect(visit.body).toContain(`<code>${reason}</code>`);
  expect(visit.status).toBeGreaterThanOrEqual(400);
  expect(visit.body).not.toMatch(/at \w+ \(|openid-client|oauth4webapi/);
  expect(await loginFootprint(t.db, tenantId)).toMatchObject({ users: 0, identities: 0, sessions: 0 });
  const failures = await auditEvents(t.db, tenantId, 'login.failed');
  expect(failures.at(-1)?.after).toEqual({ reason, connection_id: via.id });
}

const unsigned = (claims: Record<string, unknown>) =>
  `${jose.base64url.encode(JSON.stringify({ alg: 'none', typ: 'JWT' }))}.${jose.base64url.encode(JSON.stringify(claims))}.`;

const baseClaims = (ctx: RogueContext, extra: Record<string, unknown> = {}) => ({
  iss: ctx.issuer,
  aud: ctx.clientId,
  sub: 'rogue-sub-1',
  email: 'rick@rogue.test',
  nonce: ctx.nonce,
  iat: Math.floor(Date.now() / 1000),
  exp: Math.floor(Date.now() / 1000) + 300,
  ...extra,
});

describe('OIDC callback attack suite', () => {
  it('accepts the rogue IdP’s genuine ID token (the baseline the attacks below bend)', async () => {
    const browser = new TestBrowser();
    const done = await start(browser);
    expect(done.body).toMatch(/^completed /);
    await t.db.withTenant(tenantId, (em) => em.query('DELETE FROM users'));
  });

  it.each<[string, (ctx: RogueContext) => Promise<string>, string]>([
    ['an unsigned ID token (alg none)', async (ctx) => unsigned(baseClaims(ctx)), 'oidc_id_token_algorithm'],
    [
      'an ID token "signed" with HS256 using the IdP’s public key as the secret',
      async (ctx) => {
        const pem = createPublicKey({ key: ctx.publicJwk, format: 'jwk' }).export({
          type: 'spki',
          format: 'pem',
        });
        return new jose.SignJWT(baseClaims(ctx)).setProtectedHeader({ alg: 'HS256' }).sign(Buffer.from(pem));
      },
      'oidc_id_token_algorithm',
    ],
    [
      'an ID token signed by a key the IdP does not publish',
      async (ctx) => {
        const { privateKey } = await jose.generateKeyPair('RS256');
        return new jose.SignJWT(baseClaims(ctx))
          .setProtectedHeader({ alg: 'RS256', kid: 'rogue-1' })
          .sign(privateKey);
      },
      'oidc_id_token_invalid',
    ],
    [
      'an ID token for another client (aud)',
      (ctx) => rogue.validIdToken(ctx, { aud: 'another-client' }),
      'oidc_audience_mismatch',
    ],
    [
      'an ID token from another issuer (iss)',
      (ctx) => rogue.validIdToken(ctx, { iss: 'https://evil.test' }),
      'oidc_issuer_mismatch',
    ],
    [
      'an expired ID token',
      (ctx) =>
        rogue.validIdToken(ctx, {
          iat: Math.floor(Date.now() / 1000) - 7200,
          exp: Math.floor(Date.now() / 1000) - 3600,
        }),
      'oidc_id_token_expired',
    ],
    [
      'an ID token with another nonce',
      (ctx) => rogue.validIdToken(ctx, { nonce: 'not-the-one-we-sent' }),
      'oidc_nonce_mismatch',
    ],
    [
      'an ID token without a nonce',
      (ctx) => rogue.validIdToken(ctx, { nonce: undefined }),
      'oidc_nonce_mismatch',
    ],
  ])('refuses %s', async (_name, idToken, reason) => {
    rogue.idToken = idToken;
    await expectRefused(await start(new TestBrowser()), reason);
  });

  it('refuses an RS256 ID token where the connection pins ES256', async () => {
    await expectRefused(await start(new TestBrowser(), es256Only), 'oidc_id_token_algorithm', es256Only);
  });

  it('refuses a callback whose state was altered', async () => {
    rogue.authorizationResponse = { state: 'attacker-chosen-state' };
    await expectRefused(await start(new TestBrowser()), 'oidc_state_invalid');
  });

  it('refuses a callback naming another issuer (RFC 9207 iss), before any code is exchanged', async () => {
    rogue.authorizationResponse = { iss: 'https://evil.test' };
    await expectRefused(await start(new TestBrowser()), 'oidc_issuer_mismatch');
  });

  it('refuses the IdP’s error answer with its code only', async () => {
    rogue.authorizationResponse = {
      code: null,
      error: 'access_denied',
      error_description: '<script>x</script>',
    };
    const visit = await start(new TestBrowser());
    await expectRefused(visit, 'oidc_idp_error');
    expect(visit.body).not.toContain('<script>');
  });

  it('refuses a callback carried to another browser, and lets the right browser finish', async () => {
    const browser = new TestBrowser();
    const toCallback = await browser.visit(
      `${gh.baseUrl}/login?login=${randomUUID()}&email=rick%40rogue.test&connection=${connection.id}`,
      oidcCallbackUrl(gh.baseUrl, connection.id),
    );
    const callbackUrl = toCallback.redirectedTo ?? '';
    await expectRefused(await new TestBrowser().visit(callbackUrl, 'about:'), 'oidc_state_invalid');
    const here = await browser.visit(callbackUrl, 'about:');
    expect(here.body).toMatch(/^completed /);
  });
});
