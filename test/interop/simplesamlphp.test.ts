import { randomBytes, X509Certificate } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as jose from 'jose';
import * as client from 'openid-client';
import selfsigned from 'selfsigned';
import { Chromium, type ChromiumPage } from '../support/chromium.js';
import { startService, waitFor } from '../support/server-process.js';
import type { EmbeddedDatabase } from '../../src/db/embedded.js';
import { freePort, sharedSecrets, startPrivateCluster } from './deployment.js';
import { MainApp } from './simplesamlphp-main-app.js';
import {
  NAMEID_EMAIL,
  RSA_SHA1,
  SimpleSamlPhp,
  parseSpMetadata,
  simpleSamlPhpVersion,
  type SpMetadata,
  type SpOptions,
  type SspUser,
} from './simplesamlphp.js';

/**
 * Issue 16, "Tests with a live IdP": SimpleSAMLphp 1.19 from Debian as the
 * tenant's IdP, a real headless Chromium as the employee's browser, the built
 * Gatehouse as a spawned server on http://localhost (on an embedded PostgreSQL
 * cluster of its own), and the main app played by openid-client behind a small
 * HTTP server that owns the callback and the initiate_login_uri. Every
 * scenario signs in at SimpleSAMLphp's own login form and ends where the main
 * app ends: an authorization code exchanged for an ID token whose claims
 * (email, names, groups → roles) came out of SimpleSAMLphp's assertion — or,
 * for a refusal, the OAuth error the app receives (or, when no pending login
 * can be named, the reason code on Gatehouse's page) and the `login.failed`
 * audit event. Key changes (SP signing and encryption keys, the IdP's own
 * signing key) are each checked against a control that fails without them.
 * Single logout both ways ends with the main app's view of it: back at its
 * post_logout_redirect_uri, or a logout token at its back-channel logout URI,
 * and its access token inactive at introspection.
 */

const secrets = sharedSecrets();
const ALICE: SspUser = {
  username: 'alice',
  password: 'alice-pass',
  attributes: {
    uid: ['alice'],
    mail: ['alice@acme.test'],
    givenName: ['Alice'],
    sn: ['Anderson'],
    eduPersonAffiliation: ['member', 'staff'],
    isMemberOf: ['engineering', 'admins'],
  },
};
const BOB: SspUser = {
  username: 'bob',
  password: 'bob-pass',
  attributes: {
    uid: ['bob'],
    mail: ['bob@uni.test'],
    givenName: ['Bob'],
    sn: ['Brown'],
    eduPersonAffiliation: ['student'],
    isMemberOf: ['students'],
  },
};
/** What most deployments configure per SP: an email NameID made of `mail` (docs/sso.md). */
const EMAIL_NAMEID: SpOptions = { nameIdFormat: NAMEID_EMAIL, nameIdAttribute: 'mail' };

let dir: string;
let cluster: EmbeddedDatabase | undefined;
let gatehouse: ReturnType<typeof startService> | undefined;
/** http://localhost:<port>: the public URL (a secure context for the SSO cookie, README). */
let publicUrl: string;
/** The same server by address, for the test's own admin calls. */
let nodeUrl: string;
let ssp: SimpleSamlPhp | undefined;
let browser: Chromium | undefined;
let app: MainApp | undefined;
let acme: { tenantId: string };
let uni: { tenantId: string };
/** The deployment-wide SP signing certificate (GATEHOUSE_SAML_SP_SIGNING_CERT_FILE), base64 DER. */
let deploymentSigningCertificate: string;
/** Alice's `sub`, the same at every connection of her tenant. */
let aliceSub: string | undefined;

async function admin(method: string, pathname: string, body?: unknown): Promise<Record<string, unknown>> {
  const res = await fetch(`${nodeUrl}/admin/v1${pathname}`, {
    method,
    headers: {
      authorization: `Bearer ${secrets.GATEHOUSE_ADMIN_TOKEN}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(15_000),
  });
  const text = await res.text();
  if (res.status >= 300) throw new Error(`${method} ${pathname}: ${res.status} ${text}`);
  return text ? (JSON.parse(text) as Record<string, unknown>) : {};
}

/** A tenant with its verified domain and its group → role mappings, as an operator onboards one. */
async function onboard(
  slug: string,
  domain: string,
  roles: [string, string][],
): Promise<{ tenantId: string }> {
  const tenant = await admin('POST', '/tenants', { slug, name: slug });
  const tenantId = String(tenant.id);
  const d = await admin('POST', `/tenants/${tenantId}/domains`, { domain });
  await admin('POST', `/tenants/${tenantId}/domains/${String(d.id)}/verify`, {
    method: 'manual',
    reason: 'interop test: .test is reserved (RFC 6761), verified out of band',
  });
  for (const [group, role] of roles)
    await admin('POST', `/tenants/${tenantId}/role-mappings`, { group: { display_name: group }, role });
  return { tenantId };
}

/**
 * A SAML connection imported from SimpleSAMLphp's metadata URL, and
 * SimpleSAMLphp told about it from Gatehouse's SP metadata document, as the
 * two admins exchange metadata in real life.
 */
async function connect(
  tenantId: string,
  settings: Record<string, unknown>,
  options: SpOptions,
): Promise<{ id: string; sp: SpMetadata }> {
  const s = live(ssp);
  const connection = await admin('POST', `/tenants/${tenantId}/connections`, {
    type: 'saml',
    name: `SimpleSAMLphp ${randomBytes(3).toString('hex')}`,
    metadata_url: s.metadataUrl,
    status: 'active',
    // Every scenario is its own connection to the one IdP.
    force: true,
    ...settings,
  });
  const id = String(connection.id);
  const res = await fetch(`${nodeUrl}/saml/${id}/metadata`);
  expect(res.status).toBe(200);
  const sp = parseSpMetadata(await res.text());
  expect(sp).toMatchObject({ entityId: `${publicUrl}/saml/${id}`, acsUrl: `${publicUrl}/saml/${id}/acs` });
  await s.registerServiceProvider(sp, options);
  return { id, sp };
}

/** Gatehouse's SP metadata for a connection, as the IdP admin (or SimpleSAMLphp's metarefresh) reads it again. */
async function spMetadataOf(connectionId: string): Promise<SpMetadata> {
  const res = await fetch(`${nodeUrl}/saml/${connectionId}/metadata`);
  expect(res.status).toBe(200);
  return parseSpMetadata(await res.text());
}

/** SHA-256 fingerprints (lowercase hex) of the certificates a connection trusts, and which are marked removed. */
async function trustedCertificates(
  tenantId: string,
  connectionId: string,
): Promise<{ fingerprint: string; removed: boolean }[]> {
  const c = await admin('GET', `/tenants/${tenantId}/connections/${connectionId}`);
  const certificates = (
    c.saml as { certificates: { fingerprint_sha256: string; removed_at: string | null }[] }
  ).certificates;
  return certificates.map((x) => ({
    fingerprint: x.fingerprint_sha256.replace(/:/g, '').toLowerCase(),
    removed: x.removed_at !== null,
  }));
}

function fingerprintOf(pem: string): string {
  return new X509Certificate(pem).fingerprint256.replace(/:/g, '').toLowerCase();
}

/** The reasons of the `login.failed` audit events a connection's refusals wrote. */
async function refusalsAudited(tenantId: string, connectionId: string): Promise<unknown[]> {
  const events = await admin('GET', `/tenants/${tenantId}/audit-events?action=login.failed&limit=100`);
  return (events.data as { target: { id: string } | null; after: { reason?: unknown } }[])
    .filter((e) => e.target?.id === connectionId)
    .map((e) => e.after.reason);
}

function live<T>(value: T | undefined): T {
  if (value === undefined) throw new Error('beforeAll did not finish');
  return value;
}

/** Fills SimpleSAMLphp's UserPass form (core:loginuserpass) and submits it. */
async function signInAtIdp(page: ChromiumPage, user: SspUser): Promise<void> {
  const s = live(ssp);
  await page.waitForUrl((u) => u.startsWith(s.loginUrl));
  const fill = `(() => {
    const u = document.getElementById('username'), p = document.getElementById('password');
    const b = document.getElementById('submit_button');
    if (!u || !p || !b) return false;
    u.value = ${JSON.stringify(user.username)}; p.value = ${JSON.stringify(user.password)}; b.click();
    return true;
  })()`;
  const until = Date.now() + 20_000;
  while ((await page.evaluate<boolean>(fill)) !== true) {
    if (Date.now() > until) throw new Error(`no login form at ${await page.url()}: ${await page.text()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The main app's callback URL, once Chromium has landed on it. */
async function atCallback(page: ChromiumPage): Promise<string> {
  const a = live(app);
  try {
    return await page.waitForUrl((u) => u.startsWith(a.callback));
  } catch (error) {
    // SimpleSAMLphp's own log says why when the IdP side failed.
    throw new Error(`${(error as Error).message}\n${await live(ssp).output()}`, { cause: error });
  }
}

/** SP-initiated: the app starts a login at `connectionId`, the person signs in at SimpleSAMLphp. */
async function spInitiated(page: ChromiumPage, connectionId: string, user: SspUser): Promise<void> {
  await page.goto(`${live(app).url}/start?connection=${connectionId}`);
  await signInAtIdp(page, user);
}

/** Alice signs in again in a browser that has her SimpleSAMLphp session: the IdP answers at once. */
async function signInAgain(page: ChromiumPage, connectionId: string): Promise<void> {
  await page.goto(`${live(app).url}/start?connection=${connectionId}`);
  expectAlice(await live(app).exchange(await atCallback(page)));
}

/** Alice's claims as the main app reads them from the ID token. */
function expectAlice(claims: client.IDToken): void {
  expect(claims).toMatchObject({
    iss: publicUrl,
    email: 'alice@acme.test',
    given_name: 'Alice',
    family_name: 'Anderson',
    tid: acme.tenantId,
  });
  expect([...(claims.roles as string[])].sort()).toEqual(['admin', 'engineer']);
  aliceSub ??= claims.sub;
  expect(claims.sub).toBe(aliceSub);
}

beforeAll(async () => {
  // Fails, never skips, without SimpleSAMLphp (the message says how to install it).
  simpleSamlPhpVersion();
  dir = await mkdtemp(path.join(tmpdir(), 'gatehouse-simplesamlphp-'));
  ssp = await SimpleSamlPhp.start(path.join(dir, 'simplesamlphp'), [ALICE, BOB]);

  // The deployment-wide SP signing key (GATEHOUSE_SAML_SP_SIGNING_*_FILE) for signed AuthnRequests.
  const spKey = await selfsigned.generate([{ name: 'commonName', value: 'Gatehouse SP' }], {
    keyType: 'rsa',
    keySize: 2048,
    algorithm: 'sha256',
  });
  await writeFile(path.join(dir, 'sp.key'), spKey.private, { mode: 0o600 });
  await writeFile(path.join(dir, 'sp.crt'), spKey.cert);
  deploymentSigningCertificate = spKey.cert.replace(/-----[A-Z ]+-----|\s/g, '');

  // An embedded PostgreSQL of its own, as the multi-node suite (the runtime role is cluster-wide).
  const db = await startPrivateCluster(dir);
  cluster = db.cluster;
  const port = await freePort();
  publicUrl = `http://localhost:${port}`;
  nodeUrl = `http://127.0.0.1:${port}`;
  gatehouse = startService({
    PORT: String(port),
    HOST: '127.0.0.1',
    GATEHOUSE_BASE_URL: publicUrl,
    GATEHOUSE_DATA_DIR: path.join(dir, 'gatehouse'),
    DATABASE_URL: db.ownerUrl,
    ...secrets,
    // SimpleSAMLphp's metadata URL and the app's initiate_login_uri are on loopback (development only).
    GATEHOUSE_ALLOW_PRIVATE_METADATA_URLS: 'true',
    GATEHOUSE_SAML_SP_SIGNING_KEY_FILE: path.join(dir, 'sp.key'),
    GATEHOUSE_SAML_SP_SIGNING_CERT_FILE: path.join(dir, 'sp.crt'),
    LOG_LEVEL: 'warn',
  });
  const service = gatehouse;
  await waitFor(() => /listening on|failed to start/.test(service.output()), 120_000, 'Gatehouse to listen');
  if (!service.output().includes('listening on'))
    throw new Error(`Gatehouse did not start:\n${service.output()}`);

  app = await MainApp.start();
  const registered = await admin('POST', '/apps', {
    name: 'Main app',
    redirect_uris: [app.callback],
    initiate_login_uri: `${app.url}/initiate`,
    post_logout_redirect_uris: [app.postLogoutRedirectUri],
    backchannel_logout_uri: app.backchannelLogoutUri,
  });
  app.config = await client.discovery(
    new URL(publicUrl),
    String(registered.client_id),
    undefined,
    client.ClientSecretBasic(String(registered.client_secret)),
    { execute: [client.allowInsecureRequests] },
  );
  app.clientId = String(registered.client_id);
  app.issuer = publicUrl;

  acme = await onboard(`acme-${randomBytes(2).toString('hex')}`, 'acme.test', [
    ['engineering', 'engineer'],
    ['admins', 'admin'],
  ]);
  uni = await onboard(`uni-${randomBytes(2).toString('hex')}`, 'uni.test', [['students', 'student']]);
  browser = await Chromium.launch();
}, 240_000);

afterAll(async () => {
  await browser?.close();
  await app?.stop();
  await ssp?.stop();
  if (gatehouse && gatehouse.child.exitCode === null) {
    gatehouse.child.kill('SIGTERM');
    await gatehouse.exited;
  }
  await cluster?.stop().catch(() => undefined);
  if (dir) await rm(dir, { recursive: true, force: true });
}, 60_000);

describe('SimpleSAMLphp 1.19 (Debian) as the tenant’s IdP, through a real browser', () => {
  it('signs Alice in with SimpleSAMLphp’s defaults (signed assertion, transient NameID): the app’s ID token carries her email, names and mapped roles', async () => {
    const { id } = await connect(acme.tenantId, {}, {});
    const page = await live(browser).newPage();
    await spInitiated(page, id, ALICE);
    const claims = await live(app).exchange(await atCallback(page));
    expectAlice(claims);
  });

  it('accepts a Response and an assertion both signed (saml20.sign.response) on a connection that requires both', async () => {
    const { id } = await connect(
      acme.tenantId,
      { signed_element: 'both' },
      { ...EMAIL_NAMEID, signResponse: true },
    );
    const page = await live(browser).newPage();
    await spInitiated(page, id, ALICE);
    expectAlice(await live(app).exchange(await atCallback(page)));
  });

  it('refuses a Response-only signature (saml20.sign.assertion false) with saml_assertion_unsigned_response_signed, and accepts it where signed_element is "response"', async () => {
    const responseOnly: SpOptions = { ...EMAIL_NAMEID, signResponse: true, signAssertion: false };
    const expectsAssertion = await connect(acme.tenantId, {}, responseOnly);
    const page = await live(browser).newPage();
    await spInitiated(page, expectsAssertion.id, ALICE);
    const refused = new URL(await atCallback(page));
    expect(refused.searchParams.get('error')).toBe('access_denied');
    expect(refused.searchParams.get('error_description')).toContain(
      'saml_assertion_unsigned_response_signed',
    );
    expect(await refusalsAudited(acme.tenantId, expectsAssertion.id)).toEqual([
      'saml_assertion_unsigned_response_signed',
    ]);

    const expectsResponse = await connect(acme.tenantId, { signed_element: 'response' }, responseOnly);
    // SimpleSAMLphp still has Alice's session: it answers at once.
    await page.goto(`${live(app).url}/start?connection=${expectsResponse.id}`);
    expectAlice(await live(app).exchange(await atCallback(page)));
  });

  it('sends AuthnRequests SimpleSAMLphp verifies (validate.authnrequest) with the SP certificate from Gatehouse’s metadata; an unsigned one it refuses', async () => {
    const signed = await connect(
      acme.tenantId,
      { sign_authn_requests: true },
      { ...EMAIL_NAMEID, validateAuthnRequest: true },
    );
    expect(signed.sp.authnRequestsSigned).toBe(true);
    expect(signed.sp.signingCertificates.length).toBeGreaterThan(0);
    const page = await live(browser).newPage();
    await spInitiated(page, signed.id, ALICE);
    expectAlice(await live(app).exchange(await atCallback(page)));

    // The control: the IdP still requires a signature, this connection does not sign.
    const unsigned = await connect(acme.tenantId, {}, { ...EMAIL_NAMEID, validateAuthnRequest: true });
    await live(ssp).registerServiceProvider(
      { ...unsigned.sp, signingCertificates: signed.sp.signingCertificates },
      { ...EMAIL_NAMEID, validateAuthnRequest: true },
    );
    const other = await live(browser).newPage();
    await other.goto(`${live(app).url}/start?connection=${unsigned.id}`);
    await other.waitForUrl((u) => u.startsWith(live(ssp).ssoUrl));
    // SimpleSAMLphp's own refusal (SimpleSAML\Module\saml\Message::validateMessage), before any login form.
    const text = await other.waitForText('no signature found on message');
    expect(text).not.toContain('Username');
  });

  it('signs Bob in from SimpleSAMLphp’s IdP-initiated SSO (spentityid=…) into the main app through its initiate_login_uri', async () => {
    const a = live(app);
    const { id, sp } = await connect(
      uni.tenantId,
      { allow_idp_initiated: true, idp_initiated_app_id: a.clientId },
      EMAIL_NAMEID,
    );
    expect(id).toEqual(expect.any(String));
    const page = await live(browser).newPage();
    await page.goto(live(ssp).idpInitiatedUrl(sp.entityId));
    await signInAtIdp(page, BOB);
    // Unsolicited response → initiate_login_uri → the app's own code flow → SP-initiated SSO, answered at once.
    const claims = await a.exchange(await atCallback(page));
    expect(a.initiated).toContainEqual({ iss: publicUrl, loginHint: 'bob@uni.test' });
    expect(claims).toMatchObject({
      iss: publicUrl,
      email: 'bob@uni.test',
      given_name: 'Bob',
      family_name: 'Brown',
      tid: uni.tenantId,
      roles: ['student'],
    });
  });

  it('refuses an assertion signed with RSA-SHA1 (saml_signature_algorithm_weak) until the connection opts in with allow_sha1', async () => {
    const { id } = await connect(acme.tenantId, {}, { ...EMAIL_NAMEID, signatureAlgorithm: RSA_SHA1 });
    const page = await live(browser).newPage();
    await spInitiated(page, id, ALICE);
    // Refused before any signed InResponseTo is read, so no pending login to return to: the page is the end.
    const text = await page.waitForText('saml_signature_algorithm_weak');
    expect(text).toMatch(/Reason: saml_signature_algorithm_weak\s+Support reference: [0-9a-f-]{36}/);
    expect(await page.url()).toBe(`${publicUrl}/saml/${id}/acs`);
    expect(await refusalsAudited(acme.tenantId, id)).toEqual(['saml_signature_algorithm_weak']);

    await admin('PATCH', `/tenants/${acme.tenantId}/connections/${id}`, { allow_sha1: true });
    // SimpleSAMLphp still has Alice's session: it answers at once, again with SHA-1.
    await page.goto(`${live(app).url}/start?connection=${id}`);
    expectAlice(await live(app).exchange(await atCallback(page)));
  });

  it('returns saml_signature_invalid to the app when the connection trusts another certificate than SimpleSAMLphp signs with', async () => {
    const { id } = await connect(acme.tenantId, {}, EMAIL_NAMEID);
    const stranger = await selfsigned.generate([{ name: 'commonName', value: 'not the IdP' }], {
      keyType: 'rsa',
      keySize: 2048,
      algorithm: 'sha256',
    });
    await admin('PATCH', `/tenants/${acme.tenantId}/connections/${id}`, { certificates: [stranger.cert] });
    const page = await live(browser).newPage();
    await spInitiated(page, id, ALICE);
    // The login the app started is known, so the refusal goes back to the app as an OAuth error with its state.
    const refused = new URL(await atCallback(page));
    expect(refused.searchParams.get('error')).toBe('access_denied');
    expect(refused.searchParams.get('iss')).toBe(publicUrl);
    expect(refused.searchParams.get('error_description')).toContain('saml_signature_invalid');
    expect(await refusalsAudited(acme.tenantId, id)).toEqual(['saml_signature_invalid']);
  });

  it('decrypts an assertion SimpleSAMLphp encrypts (assertion.encryption) to the encryption certificate in Gatehouse’s SP metadata, on a connection that requires encryption', async () => {
    const { id, sp } = await connect(
      acme.tenantId,
      { require_encrypted_assertions: true },
      { ...EMAIL_NAMEID, encryptAssertion: true },
    );
    expect(sp.encryptionCertificates.length).toBeGreaterThan(0);
    const page = await live(browser).newPage();
    await spInitiated(page, id, ALICE);
    expectAlice(await live(app).exchange(await atCallback(page)));

    // The same with AES-256-GCM content encryption instead of SimpleSAMLphp 1.19's default AES-128-CBC.
    await live(ssp).registerServiceProvider(sp, {
      ...EMAIL_NAMEID,
      encryptAssertion: true,
      sharedKeyAlgorithm: 'http://www.w3.org/2009/xmlenc11#aes256-gcm',
    });
    await signInAgain(page, id);

    // The control: once SimpleSAMLphp stops encrypting, the same connection refuses its plaintext assertion
    // (so the login above was decrypted, not merely accepted).
    await live(ssp).registerServiceProvider(sp, EMAIL_NAMEID);
    await page.goto(`${live(app).url}/start?connection=${id}`);
    await page.waitForText('Reason: saml_assertion_not_encrypted');
    expect(await refusalsAudited(acme.tenantId, id)).toEqual(['saml_assertion_not_encrypted']);
  });

  it('moves a connection from the deployment-wide SP signing key to a rotated key of its own; SimpleSAMLphp verifies it once it has re-read the SP metadata', async () => {
    const s = live(ssp);
    const validate: SpOptions = { ...EMAIL_NAMEID, validateAuthnRequest: true };
    const { id, sp } = await connect(acme.tenantId, { sign_authn_requests: true }, validate);
    // The operator's PEM files are the default while the connection has no signing key of its own.
    expect(sp.signingCertificates).toEqual([deploymentSigningCertificate]);
    const keys = `/tenants/${acme.tenantId}/connections/${id}/sp-keys`;
    const page = await live(browser).newPage();
    await spInitiated(page, id, ALICE);
    expectAlice(await live(app).exchange(await atCallback(page)));

    // Rotate: the connection's own next key is published beside the deployment key; the IdP re-reads.
    await admin('POST', `${keys}/rotate`, { use: 'signing' });
    const announced = await spMetadataOf(id);
    expect(announced.signingCertificates).toHaveLength(2);
    expect(announced.signingCertificates).toContain(deploymentSigningCertificate);
    await s.registerServiceProvider(announced, validate);
    await signInAgain(page, id);

    // Activate: AuthnRequests are signed with the connection's own key, which SimpleSAMLphp already knows.
    await admin('POST', `${keys}/activate`, { use: 'signing' });
    const own = (await spMetadataOf(id)).signingCertificates;
    expect(own).toHaveLength(1);
    expect(own).not.toContain(deploymentSigningCertificate);
    expect(announced.signingCertificates).toContain(own[0]);
    await signInAgain(page, id);

    // The control: an IdP that never re-read the metadata (the deployment certificate alone) refuses the request.
    await s.registerServiceProvider(sp, validate);
    const stale = await live(browser).newPage();
    await stale.goto(`${live(app).url}/start?connection=${id}`);
    await stale.waitForUrl((u) => u.startsWith(s.ssoUrl));
    // SAML2\HTTPRedirect::validateSignature, before any login form.
    const text = await stale.waitForText('Unable to validate signature on query string');
    expect(text).not.toContain('Username');
  });

  it('rotates the connection’s SP encryption key (rotate, activate, retire) without a failed login while SimpleSAMLphp catches up with the SP metadata late', async () => {
    const s = live(ssp);
    const encrypt: SpOptions = { ...EMAIL_NAMEID, encryptAssertion: true };
    const { id, sp } = await connect(acme.tenantId, { require_encrypted_assertions: true }, encrypt);
    const [first] = sp.encryptionCertificates;
    if (!first) throw new Error('the SP metadata lists no encryption certificate');
    const keys = `/tenants/${acme.tenantId}/connections/${id}/sp-keys`;
    const page = await live(browser).newPage();
    await spInitiated(page, id, ALICE);
    expectAlice(await live(app).exchange(await atCallback(page)));

    // Rotate: the next certificate is published beside the current one; the IdP still encrypts to the first.
    await admin('POST', `${keys}/rotate`, { use: 'encryption' });
    const announced = (await spMetadataOf(id)).encryptionCertificates;
    expect(announced).toHaveLength(2);
    expect(announced).toContain(first);
    const next = announced.find((c) => c !== first) ?? '';
    await signInAgain(page, id);

    // Activate before the IdP re-read the metadata: the previous key still decrypts what it sends.
    await admin('POST', `${keys}/activate`, { use: 'encryption' });
    expect([...(await spMetadataOf(id)).encryptionCertificates].sort()).toEqual([first, next].sort());
    await signInAgain(page, id);

    // The IdP re-reads the metadata and encrypts to the new key alone.
    await s.registerServiceProvider({ ...sp, encryptionCertificates: [next] }, encrypt);
    await signInAgain(page, id);

    // Retire: only the new certificate is published, and an IdP still encrypting to the old key is refused.
    await admin('POST', `${keys}/retire`, { use: 'encryption' });
    expect((await spMetadataOf(id)).encryptionCertificates).toEqual([next]);
    await signInAgain(page, id);
    await s.registerServiceProvider(sp, encrypt);
    await page.goto(`${live(app).url}/start?connection=${id}`);
    const refused = new URL(await atCallback(page));
    expect(refused.searchParams.get('error')).toBe('access_denied');
    expect(refused.searchParams.get('error_description')).toContain('saml_decryption_failed');
    expect(await refusalsAudited(acme.tenantId, id)).toEqual(['saml_decryption_failed']);
  });

  it('SP-initiated single logout: the main app’s logout ends Gatehouse’s session and SimpleSAMLphp’s, then returns to the app', async () => {
    const s = live(ssp);
    const a = live(app);
    // Logout messages signed both ways: SimpleSAMLphp verifies ours with the SP metadata's signing certificate.
    const { id, sp } = await connect(
      acme.tenantId,
      {},
      { ...EMAIL_NAMEID, signLogout: true, validateLogout: true },
    );
    expect(sp.singleLogoutServices.map((e) => e.location)).toEqual([
      `${publicUrl}/saml/${id}/slo`,
      `${publicUrl}/saml/${id}/slo`,
    ]);
    const page = await live(browser).newPage();
    await spInitiated(page, id, ALICE);
    expectAlice(await a.exchange(await atCallback(page)));
    const { id_token: idToken, access_token: accessToken } = a.tokens ?? {};
    if (!idToken || !accessToken) throw new Error('no tokens from the exchange');
    expect((await a.introspect(accessToken)).active).toBe(true);

    // RP-initiated logout → Gatehouse revokes → LogoutRequest to SimpleSAMLphp → LogoutResponse → the app.
    const state = randomBytes(8).toString('hex');
    await page.goto(a.logoutUrl(idToken, state));
    let back: string;
    try {
      back = await page.waitForUrl((u) => u.startsWith(a.postLogoutRedirectUri));
    } catch (error) {
      throw new Error(`${(error as Error).message}\n${await page.text()}\n${await s.output()}`, {
        cause: error,
      });
    }
    expect(new URL(back).searchParams.get('state')).toBe(state);
    expect((await a.introspect(accessToken)).active).toBe(false);

    // SimpleSAMLphp's session is gone too: a new login at the same IdP asks for the password again.
    await page.goto(`${a.url}/start?connection=${id}`);
    await page.waitForUrl((u) => u.startsWith(s.loginUrl));
    await signInAtIdp(page, ALICE);
    expectAlice(await a.exchange(await atCallback(page)));
  });

  it('IdP-initiated single logout: SimpleSAMLphp’s logout revokes Gatehouse’s session and the main app receives a back-channel logout token', async () => {
    const s = live(ssp);
    const a = live(app);
    const { id } = await connect(
      acme.tenantId,
      {},
      { ...EMAIL_NAMEID, signLogout: true, validateLogout: true },
    );
    // A browser of its own: the IdP session signed into this one connection only.
    const page = await live(browser).newPage();
    await spInitiated(page, id, ALICE);
    const claims = await a.exchange(await atCallback(page));
    expectAlice(claims);
    const accessToken = a.tokens?.access_token ?? '';
    expect((await a.introspect(accessToken)).active).toBe(true);
    const tokensBefore = a.logoutTokens.length;

    // SimpleSAMLphp ends its session and sends Gatehouse a LogoutRequest (front channel), then goes to ReturnTo.
    const returnTo = `${a.url}/idp-logged-out`;
    await page.goto(s.idpInitiatedLogoutUrl(returnTo));
    try {
      await page.waitForUrl((u) => u.startsWith(returnTo));
    } catch (error) {
      throw new Error(`${(error as Error).message}\n${await page.text()}\n${await s.output()}`, {
        cause: error,
      });
    }

    // The back-channel logout (OIDC Back-Channel Logout 1.0 §2.4) for exactly that session, signed by Gatehouse.
    await waitFor(() => a.logoutTokens.length > tokensBefore, 20_000, 'a back-channel logout token');
    const token = a.logoutTokens.at(-1) ?? '';
    const { payload } = await jose.jwtVerify(
      token,
      jose.createRemoteJWKSet(new URL(`${nodeUrl}/.well-known/jwks.json`)),
      {
        issuer: publicUrl,
        audience: a.clientId,
        typ: 'logout+jwt',
      },
    );
    expect(payload).toMatchObject({
      sub: claims.sub,
      sid: claims.sid,
      events: { 'http://schemas.openid.net/event/backchannel-logout': {} },
    });
    expect(payload.nonce).toBeUndefined();
    expect((await a.introspect(accessToken)).active).toBe(false);

    // SimpleSAMLphp's session is gone as well: the next login asks for the password.
    await page.goto(`${a.url}/start?connection=${id}`);
    await page.waitForUrl((u) => u.startsWith(s.loginUrl));
  });

  // Last: it changes the key SimpleSAMLphp signs with for every connection.
  it('follows SimpleSAMLphp’s signing-key rollover through a metadata refresh without a failed login; a connection not refreshed is refused', async () => {
    const s = live(ssp);
    const oldCertificate = s.certificatePem;
    const refreshed = await connect(acme.tenantId, {}, EMAIL_NAMEID);
    const stale = await connect(acme.tenantId, {}, EMAIL_NAMEID);
    const refreshMetadata = (connectionId: string) =>
      admin('POST', `/tenants/${acme.tenantId}/connections/${connectionId}/metadata/refresh`, {});
    const page = await live(browser).newPage();
    await spInitiated(page, refreshed.id, ALICE);
    expectAlice(await live(app).exchange(await atCallback(page)));

    // The IdP announces its next certificate in its metadata; Gatehouse re-fetches the metadata URL.
    const nextCertificate = await s.announceNewCertificate();
    expect(await refreshMetadata(refreshed.id)).toMatchObject({ outcome: 'updated' });
    expect(await trustedCertificates(acme.tenantId, refreshed.id)).toEqual(
      expect.arrayContaining([
        { fingerprint: fingerprintOf(oldCertificate), removed: false },
        { fingerprint: fingerprintOf(nextCertificate), removed: false },
      ]),
    );
    await signInAgain(page, refreshed.id);

    // The IdP switches keys: the refreshed connection already trusts the new one.
    await s.switchToNewKey();
    await signInAgain(page, refreshed.id);
    await page.goto(`${live(app).url}/start?connection=${stale.id}`);
    const refused = new URL(await atCallback(page));
    expect(refused.searchParams.get('error')).toBe('access_denied');
    expect(await refusalsAudited(acme.tenantId, stale.id)).toEqual(['saml_signature_invalid']);

    // The next refresh sees the old certificate gone: kept, marked removed, for the overlap period.
    expect(await refreshMetadata(refreshed.id)).toMatchObject({ outcome: 'updated' });
    expect(await trustedCertificates(acme.tenantId, refreshed.id)).toEqual(
      expect.arrayContaining([
        { fingerprint: fingerprintOf(oldCertificate), removed: true },
        { fingerprint: fingerprintOf(nextCertificate), removed: false },
      ]),
    );
    await signInAgain(page, refreshed.id);
  });
});
