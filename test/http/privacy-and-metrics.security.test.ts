import { Writable } from 'node:stream';
import * as client from 'openid-client';
import { pino } from 'pino';
import request from 'supertest';
import type { Connection } from '../../src/connections/connection.entity.js';
import { createApp } from '../../src/app.js';
import { ConfigError, parseConfig, redactConfig } from '../../src/config/config.js';
import { TestBrowser } from '../support/browser.js';
import { buildTestApp } from '../support/app.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { freshSecrets } from '../support/gatehouse-node.js';
import { SamlTestIdp } from '../support/saml-idp.js';
import { createSamlConnection, createTenantWithDomains, spOf } from '../support/sso-factories.js';
import {
  issueScimToken,
  MainApp,
  operator,
  PATCH_OP,
  registerMainApp,
  scimClient,
  startNode,
  type GatehouseNode,
} from '../e2e/support.js';

/**
 * Issue 8, "privacy and exposure": what an operator's log pipeline and a
 * Prometheus scraper receive. Every party is real (samlify IdP, openid-client
 * main app, SCIM over HTTP, two tenants); the assertions read the node's
 * captured log output and a real /metrics scrape.
 */
const CALLBACK = 'http://localhost:3000/callback';
const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/i;

let t: TestDatabase;
let node: GatehouseNode;
let mainApp: MainApp;
let saml: { idp: SamlTestIdp; connection: Connection };
const tenants: { id: string; domain: string; token: string; scim: ReturnType<typeof scimClient> }[] = [];
/** Every value that must never reach a log line or a metric label. */
const secrets: { what: string; value: string }[] = [];

beforeAll(async () => {
  t = await createTestDatabase();
  node = await startNode(t);
  mainApp = await MainApp.connect(node, await registerMainApp(node, { redirect_uris: [CALLBACK] }), CALLBACK);
  for (const slug of ['acme', 'globex']) {
    const domain = `${slug}.test`;
    const id = await createTenantWithDomains(t.db, slug, [domain]);
    const issued = await issueScimToken(node, id);
    tenants.push({
      id,
      domain,
      token: issued.token,
      scim: scimClient(node, issued.scimBaseUrl, issued.token),
    });
    secrets.push({ what: `${slug} SCIM token`, value: issued.token });
  }
  const idp = await SamlTestIdp.create('acme');
  saml = {
    idp,
    connection: await createSamlConnection(t.db, tenants[0]!.id, idp, { defaultRole: 'member' }),
  };
  await driveEverySurface();
});
afterAll(async () => {
  await node.close();
  await t.close();
});

/** SP-initiated SAML sign-in, code exchange and refresh, SCIM in both tenants, the admin API, discovery. */
async function driveEverySurface(): Promise<void> {
  // Sign-in through the real ACS, keeping what crossed the wire.
  const email = 'alice.liddell@acme.test';
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const url = client.buildAuthorizationUrl(mainApp.config, {
    redirect_uri: CALLBACK,
    scope: 'openid email profile',
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
    nonce,
    login_hint: email,
  });
  const browser = new TestBrowser();
  const toIdp = await browser.visit(url.toString(), saml.idp.ssoUrl);
  const sp = spOf(mainApp.issuer, saml.connection);
  const answer = await saml.idp.answer(toIdp.redirectedTo ?? '', sp, {
    nameId: email,
    attributes: { email, firstName: 'Alice', lastName: 'Liddell' },
  });
  const back = await browser.visit(sp.acsUrl, CALLBACK, {
    method: 'POST',
    form: { SAMLResponse: answer.samlResponse },
  });
  const callback = new URL(back.redirectedTo ?? 'http://missing/');
  const code = callback.searchParams.get('code') ?? '';
  const tokens = await client.authorizationCodeGrant(mainApp.config, callback, {
    pkceCodeVerifier: verifier,
    expectedState: state,
    expectedNonce: nonce,
    idTokenExpected: true,
  });
  const refreshed = await client.refreshTokenGrant(mainApp.config, tokens.refresh_token ?? '');
  secrets.push(
    { what: 'the person’s email', value: email },
    { what: 'the URL-encoded email', value: encodeURIComponent(email) },
    { what: 'the SAMLResponse', value: answer.samlResponse.slice(0, 60) },
    { what: 'the authorization code', value: code },
    { what: 'the access token', value: tokens.access_token },
    { what: 'the ID token', value: tokens.id_token ?? 'missing' },
    { what: 'the refresh token', value: tokens.refresh_token ?? 'missing' },
    { what: 'the rotated refresh token', value: refreshed.refresh_token ?? 'missing' },
    { what: 'the PKCE verifier', value: verifier },
  );
  expect(code).toMatch(/^gh_code_/);

  // Home realm discovery with an email in the query.
  const discovery = await fetch(`${node.address}/login?email=${encodeURIComponent('bob@globex.test')}`, {
    redirect: 'manual',
  });
  expect(discovery.status).toBeLessThan(500);
  secrets.push({ what: 'a discovery email', value: 'bob@globex.test' });

  // SCIM in both tenants: create, read, filter by userName (an email), patch.
  for (const [i, tenant] of tenants.entries()) {
    const userName = `carol${i}@${tenant.domain}`;
    secrets.push({ what: `a SCIM userName of tenant ${i}`, value: userName });
    const created = await tenant.scim('POST', '/Users', {
      schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'],
      userName,
      emails: [{ primary: true, value: userName, type: 'work' }],
      active: true,
    });
    expect(created.status).toBe(201);
    expect((await tenant.scim('GET', `/Users/${String(created.body.id)}`)).status).toBe(200);
    const filter = encodeURIComponent(`userName eq "${userName}"`);
    expect((await tenant.scim('GET', `/Users?filter=${filter}`)).status).toBe(200);
    const patched = await tenant.scim('PATCH', `/Users/${String(created.body.id)}`, {
      schemas: [PATCH_OP],
      Operations: [{ op: 'replace', path: 'displayName', value: 'Carol' }],
    });
    expect(patched.status).toBe(200);
    // A conflict: the database refuses the second user with the same name.
    const duplicate = await tenant.scim('POST', '/Users', {
      schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'],
      userName,
    });
    expect(duplicate.status).toBe(409);
    // The admin API on this tenant.
    expect((await operator(node, 'GET', `/tenants/${tenant.id}`)).status).toBe(200);
  }
  // A method outside the closed set.
  await fetch(`${node.address}/healthz`, { method: 'PROPFIND' });
}

describe('logs', () => {
  it('carries no email, token, code, assertion or PKCE verifier on any line', () => {
    const logs = node.logs();
    // The traffic was logged (one access line per request), so absence means redaction.
    expect(logs).toMatch(/"url":"\/scim\/v2\/[0-9a-f-]{36}\/Users\?filter=%5Bredacted%5D"/);
    expect(logs).toMatch(/"url":"\/oauth\/authorize\?[^"]*login_hint=%5Bredacted%5D/);
    expect(logs).toMatch(/"url":"\/login\?email=%5Bredacted%5D"/);
    expect(logs).toMatch(/"location":"http:\/\/localhost:3000\/callback\?code=%5Bredacted%5D/);
    const leaked = secrets.filter(({ value }) => logs.includes(value)).map(({ what }) => what);
    expect(leaked).toEqual([]);
    expect(logs).not.toMatch(/gh_(scim|rt|code|secret|admin)_[A-Za-z0-9]/);
    expect(logs).not.toMatch(/[\w.+-]+@[\w-]+\.test/);
  });
});

describe('/metrics', () => {
  it('labels routes with their templates: no tenant id, user id, email or method a client chose', async () => {
    const res = await fetch(`${node.address}/metrics`);
    expect(res.status).toBe(200);
    const text = await res.text();
    const routes = new Set([...text.matchAll(/route="([^"]*)"/g)].map((m) => m[1]));
    expect([...routes]).toEqual(
      expect.arrayContaining([
        '/scim/v2/:tenantId/Users',
        '/scim/v2/:tenantId/Users/:id',
        '/admin/v1/tenants/:tenantId',
        '/saml/:connectionId/acs',
        '/oauth/authorize',
        '/oauth/token',
        '/login',
      ]),
    );
    for (const tenant of tenants) expect(text).not.toContain(tenant.id);
    expect(text).not.toMatch(UUID);
    expect(text).not.toContain('@');
    expect(text).toMatch(/method="OTHER",route="unmatched",status_code="404"/);
    expect(text).not.toContain('PROPFIND');
    const methods = new Set([...text.matchAll(/method="([^"]*)"/g)].map((m) => m[1]));
    for (const method of methods) expect(['GET', 'POST', 'PATCH', 'OTHER']).toContain(method);
  });

  it('is open when GATEHOUSE_METRICS_TOKEN is unset, as before', async () => {
    expect(node.config.metrics.token).toBeUndefined();
    expect((await fetch(`${node.address}/metrics`)).status).toBe(200);
  });

  describe('with GATEHOUSE_METRICS_TOKEN', () => {
    const token = 'metrics-token-0123456789-abcdefghijklmnop';

    it('answers 401 with WWW-Authenticate: Bearer without the token or with another one', async () => {
      const { app } = buildTestApp(t, { GATEHOUSE_METRICS_TOKEN: token });
      for (const authorization of [
        undefined,
        `Bearer ${token}x`,
        `Bearer ${token.slice(0, -1)}`,
        `Basic ${token}`,
      ]) {
        const req = request(app).get('/metrics');
        const res = await (authorization ? req.set('Authorization', authorization) : req);
        expect(res.status).toBe(401);
        expect(res.headers['www-authenticate']).toMatch(/^Bearer realm="metrics"/);
        expect(res.body).toMatchObject({ code: 'unauthorized' });
        expect(res.text).not.toContain('gatehouse_http_requests_total');
      }
    });

    it('scrapes with the bearer token, and keeps /healthz open', async () => {
      const { app } = buildTestApp(t, { GATEHOUSE_METRICS_TOKEN: token });
      expect((await request(app).get('/healthz')).status).toBe(200);
      const res = await request(app).get('/metrics').set('Authorization', `Bearer ${token}`);
      expect(res.status).toBe(200);
      expect(res.text).toContain('gatehouse_http_requests_total');
    });

    it('refuses a token shorter than 32 characters at start, and never logs the token', () => {
      expect(() => parseConfig({ GATEHOUSE_METRICS_TOKEN: 'short' })).toThrow(ConfigError);
      const shown = JSON.stringify(redactConfig(parseConfig({ GATEHOUSE_METRICS_TOKEN: token })));
      expect(shown).not.toContain(token);
      expect(shown).toContain('"metrics":{"token":"[redacted]"}');
    });
  });
});

describe('response hooks', () => {
  it('a logger that throws in the finish hook fails no request and does not reach uncaughtException', async () => {
    // A log destination that fails every write: the access-log hook and its failure report both throw.
    const broken = new Writable({
      write(_chunk: Buffer, _enc, done) {
        done();
      },
    });
    const logger = pino({ level: 'info' }, broken);
    broken.write = () => {
      throw new Error('log destination is gone');
    };
    const config = parseConfig({ GATEHOUSE_BASE_URL: 'https://gatehouse.test', LOG_LEVEL: 'info' });
    const app = createApp({ config, db: t.db, secrets: freshSecrets(), logger });
    const uncaught: unknown[] = [];
    const record = (error: unknown) => uncaught.push(error);
    process.on('uncaughtExceptionMonitor', record);
    try {
      expect((await request(app).get('/no/such/route')).status).toBe(404);
      expect((await request(app).get('/healthz')).status).toBe(200);
      await new Promise((resolve) => setImmediate(resolve));
      // The metrics hook ran too: the 404 was counted.
      const metrics = await request(app).get('/metrics');
      expect(metrics.text).toMatch(/method="GET",route="unmatched",status_code="404"\} 1/);
    } finally {
      process.off('uncaughtExceptionMonitor', record);
    }
    expect(uncaught).toEqual([]);
  });

  it('keeps counting and logging while Object.prototype is polluted (the scimmy defect of issue 8)', async () => {
    // Another node of the same installation (the signing keys are sealed with its master key).
    const { app, logs } = buildTestApp(t, {}, { secrets: node.secrets });
    const proto = Object.prototype as Record<string, unknown>;
    proto.polluted = 'yes';
    try {
      expect((await request(app).get('/healthz')).status).toBe(200);
      expect((await request(app).get('/readyz')).status).toBe(200);
      const metrics = await request(app).get('/metrics');
      expect(metrics.status).toBe(200);
      expect(metrics.text).toMatch(/method="GET",route="\/readyz",status_code="200"\} 1/);
      expect(metrics.text).not.toContain('polluted');
    } finally {
      delete proto.polluted;
    }
    expect(logs()).toMatch(/"msg":"request completed"/);
  });
});
