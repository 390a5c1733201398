import { randomBytes, randomUUID } from 'node:crypto';
import { writeFileSync, mkdtempSync } from 'node:fs';
import type http from 'node:http';
import https from 'node:https';
import net, { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as jose from 'jose';
import type { Connection } from '../../src/connections/connection.entity.js';
import { TestBrowser } from '../support/browser.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { loopbackCertificate } from '../support/local-http.js';
import { RecordingCompleter, startSsoServer, type SsoServer } from '../support/sso-app.js';
import {
  auditEvents,
  createOidcConnection,
  createTenantWithDomains,
  loginFootprint,
} from '../support/sso-factories.js';

/**
 * SSRF at login time: the calls a login makes to the IdP (discovery, JWKS,
 * token, userinfo) go through the outbound guard, with the development setting
 * off. The IdP here is served over https from 127.0.0.1, which the operator
 * allowed (GATEHOUSE_OUTBOUND_ALLOWED_NETWORKS=127.0.0.1/32, as for an
 * on-premises IdP); its discovery document points jwks_uri at 127.0.0.2, where
 * a trap counts every connection. The IdP's browser leg (authorize, then back
 * to the callback with a code) is played by the test with the same browser.
 */
let t: TestDatabase;
let tenantId: string;
let certFile: string;
let tls: { key: string; cert: string };
const completer = new RecordingCompleter();
const closers: (() => Promise<void>)[] = [];

let trapHits = 0;
let trapUrl: string;
let idpHits = 0;
let idpUrl: string;
const nonces = new Map<string, string>();
const clientId = 'gatehouse';
const clientSecret = randomBytes(16).toString('hex');
let signingKey: jose.CryptoKey;

function closer(server: net.Server): () => Promise<void> {
  return () =>
    new Promise<void>((resolve) => {
      (server as http.Server).closeAllConnections?.();
      server.close(() => resolve());
    });
}

async function listen(server: net.Server, host: string): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  closers.push(closer(server));
  return (server.address() as AddressInfo).port;
}

const json = (res: http.ServerResponse, body: unknown) =>
  res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));

beforeAll(async () => {
  t = await createTestDatabase();
  tls = await loopbackCertificate();
  certFile = join(mkdtempSync(join(tmpdir(), 'gh-ssrf-')), 'ca.pem');
  writeFileSync(certFile, tls.cert);
  signingKey = (await jose.generateKeyPair('RS256')).privateKey;

  // Anything reaching 127.0.0.2 is the SSRF this suite is about.
  const trap = net.createServer((socket) => {
    trapHits += 1;
    socket.destroy();
  });
  trapUrl = `https://127.0.0.2:${await listen(trap, '127.0.0.2')}`;

  // The server leg Gatehouse calls: discovery and token, over https.
  const idp = https.createServer(tls, (req, res) => {
    idpHits += 1;
    const url = new URL(req.url ?? '/', idpUrl);
    if (url.pathname === '/.well-known/openid-configuration') {
      json(res, {
        issuer: idpUrl,
        authorization_endpoint: `${idpUrl}/authorize`,
        token_endpoint: `${idpUrl}/token`,
        jwks_uri: `${trapUrl}/jwks`,
        response_types_supported: ['code'],
        subject_types_supported: ['public'],
        id_token_signing_alg_values_supported: ['RS256'],
        code_challenge_methods_supported: ['S256'],
      });
      return;
    }
    if (url.pathname === '/token') {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        const code = new URLSearchParams(body).get('code') ?? '';
        const now = Math.floor(Date.now() / 1000);
        void new jose.SignJWT({ email: 'rick@ssrf.test', email_verified: true, nonce: nonces.get(code) })
          .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
          .setIssuer(idpUrl)
          .setAudience(clientId)
          .setSubject('rick-1')
          .setIssuedAt(now)
          .setExpirationTime(now + 300)
          .sign(signingKey)
          .then((idToken) => json(res, { access_token: 'at', token_type: 'Bearer', id_token: idToken }));
      });
      return;
    }
    res.writeHead(404).end();
  });
  idpUrl = `https://127.0.0.1:${await listen(idp, '127.0.0.1')}`;
  tenantId = await createTenantWithDomains(t.db, 'ssrf-co', ['ssrf.test']);
});
afterAll(async () => {
  for (const close of closers) await close();
  await t.close();
});

async function gatehouse(env: Record<string, string>): Promise<{ gh: SsoServer; connection: Connection }> {
  const gh = await startSsoServer(t, {
    completer,
    env: { GATEHOUSE_ALLOW_PRIVATE_METADATA_URLS: 'false', GATEHOUSE_OUTBOUND_CA_FILE: certFile, ...env },
  });
  closers.push(() => gh.close());
  const connection = await createOidcConnection(t.db, gh.secrets.masterKey, tenantId, {
    issuer: idpUrl,
    clientId,
    clientSecret,
  });
  return { gh, connection };
}

async function expectRefusedWith(visit: { status: number; body: string }, connection: Connection) {
  expect(visit.status).toBe(502);
  expect(visit.body).toContain('<code>connection_misconfigured</code>');
  expect(visit.body).not.toMatch(/127\.0\.0\.2|openid-client|at \w+ \(/);
  expect(await loginFootprint(t.db, tenantId)).toMatchObject({ users: 0, sessions: 0 });
  const failures = await auditEvents(t.db, tenantId, 'login.failed');
  expect(failures.at(-1)?.after).toEqual({
    reason: 'connection_misconfigured',
    connection_id: connection.id,
  });
}

/** The login as a browser makes it; the IdP's authorize step answers at once with a code. */
async function login(gh: SsoServer, connection: Connection) {
  const browser = new TestBrowser();
  const start = await browser.visit(
    `${gh.baseUrl}/login?login=${randomUUID()}&email=rick%40ssrf.test&connection=${connection.id}`,
    idpUrl,
  );
  if (!start.redirectedTo) return start;
  const authorize = new URL(start.redirectedTo);
  const code = randomBytes(8).toString('hex');
  nonces.set(code, authorize.searchParams.get('nonce') ?? '');
  const back = new URL(authorize.searchParams.get('redirect_uri') ?? '');
  back.searchParams.set('code', code);
  back.searchParams.set('state', authorize.searchParams.get('state') ?? '');
  return browser.visit(back.toString(), 'about:');
}

describe('outbound calls during an OIDC login', () => {
  it('refuses a discovery document whose jwks_uri points at a loopback address: a page with a reason code, no fetch', async () => {
    const { gh, connection } = await gatehouse({ GATEHOUSE_OUTBOUND_ALLOWED_NETWORKS: '127.0.0.1/32' });
    const hitsBefore = idpHits;
    const visit = await login(gh, connection);
    // Discovery and the code exchange did reach the (allowed) IdP; the JWKS fetch was refused before connecting.
    expect(idpHits - hitsBefore).toBe(2);
    expect(trapHits).toBe(0);
    await expectRefusedWith(visit, connection);
    expect(gh.logs()).toMatch(/outbound call refused: 127\.0\.0\.2 resolves to a private/);
  });

  it('refuses discovery itself at a private address when no network is allowed, before connecting', async () => {
    const { gh, connection } = await gatehouse({});
    const hitsBefore = idpHits;
    const visit = await login(gh, connection);
    expect(idpHits).toBe(hitsBefore);
    expect(trapHits).toBe(0);
    await expectRefusedWith(visit, connection);
  });
});
