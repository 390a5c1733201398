import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as client from 'openid-client';
import { adminClient } from '../../src/cli/admin-client.js';
import { startDevIdp, type DevIdp } from '../../src/cli/dev-idp.js';
import { setupDevIdp, type DevIdpSetup } from '../../src/cli/dev-idp-setup.js';
import { Chromium } from '../support/chromium.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { startLocalServer, type LocalServer } from '../support/local-http.js';
import { startNode, type GatehouseNode } from './support.js';

/**
 * Issue 14: over plain http a browser drops a SameSite=Lax cookie on the
 * IdP's cross-site POST to the ACS, so the AuthnRequest's browser binding is
 * missing and the login fails with saml_in_response_to_invalid. On
 * http://localhost (a secure context) the binding cookie is Secure;
 * SameSite=None and rides the POST. A real Chromium, a real SAML IdP
 * (samlify, in the dev IdP) on another site, Gatehouse's real ACS.
 */
let t: TestDatabase;
let browser: Chromium;
let receiver: LocalServer;
let dir: string;

beforeAll(async () => {
  t = await createTestDatabase();
  browser = await Chromium.launch();
  // The main app's callback: a page to land on; the test redeems the code.
  receiver = await startLocalServer({});
  dir = await mkdtemp(path.join(tmpdir(), 'gatehouse-dev-idp-'));
});

afterAll(async () => {
  await browser?.close();
  await receiver?.close();
  await t?.close();
  await rm(dir, { recursive: true, force: true });
});

/** Gatehouse, the dev IdP registered with it, and a browser's SAML sign-in from the app's authorize request. */
async function samlLogin(gh: GatehouseNode, idp: DevIdp) {
  const callback = `${receiver.url}/callback`;
  const setup: DevIdpSetup = await setupDevIdp(
    adminClient(gh.address, gh.secrets.adminToken),
    idp,
    idp.dir,
    receiver.url,
  );
  const config = await client.discovery(
    new URL(gh.baseUrl),
    setup.app.client_id,
    undefined,
    client.ClientSecretBasic(setup.app.client_secret),
    { execute: [client.allowInsecureRequests] },
  );
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: callback,
    scope: 'openid email profile',
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
    connection: setup.saml_connection_id,
  });
  const page = await browser.newPage();
  await page.goto(url.toString());
  await page.click('button[value="alice@example.test"]');
  // Either the app's callback or Gatehouse's refusal page.
  const landed = await page.waitForUrl((u) => u.startsWith(callback) || u.startsWith(gh.baseUrl));
  return { config, landed, callback, verifier, state, page };
}

it('completes a SAML sign-in on http://localhost with the IdP posting cross-site from 127.0.0.1', async () => {
  const gh = await startNode(t, { localhost: true });
  const idp = await startDevIdp({ host: '127.0.0.1', port: 0, dir: path.join(dir, 'a') });
  try {
    expect(gh.baseUrl).toMatch(/^http:\/\/localhost:\d+$/);
    const { config, landed, callback, verifier, state, page } = await samlLogin(gh, idp);
    // On failure, Gatehouse's refusal page names the reason.
    expect(landed.startsWith(callback) ? 'the app callback' : await page.text()).toBe('the app callback');
    const tokens = await client.authorizationCodeGrant(config, new URL(landed), {
      pkceCodeVerifier: verifier,
      expectedState: state,
      idTokenExpected: true,
    });
    expect(tokens.claims()).toMatchObject({ email: 'alice@example.test', iss: gh.baseUrl });
    const binding = (await page.cookies(gh.baseUrl)).find((c) => c.name === 'gatehouse_sso');
    expect(binding).toMatchObject({ secure: true, sameSite: 'None' });
  } finally {
    await idp.close();
    await gh.close();
  }
});

it('on another plain-http name the cross-site POST arrives without the binding: saml_in_response_to_invalid', async () => {
  // The reverse: Gatehouse on http://127.0.0.1, the IdP on http://localhost (another site).
  const gh = await startNode(t, { baseUrl: undefined });
  const idp = await startDevIdp({ host: 'localhost', port: 0, dir: path.join(dir, 'b') });
  try {
    const { landed, callback, page } = await samlLogin(gh, idp);
    expect(landed.startsWith(callback)).toBe(false);
    expect(await page.text()).toContain('saml_in_response_to_invalid');
  } finally {
    await idp.close();
    await gh.close();
  }
});
