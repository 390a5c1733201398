import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import selfsigned from 'selfsigned';
import { TestBrowser } from '../support/browser.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { SamlTestIdp } from '../support/saml-idp.js';
import { RecordingCompleter, startSsoServer, type SsoServer } from '../support/sso-app.js';
import { createSamlConnection, createTenantWithDomains, spOf } from '../support/sso-factories.js';

/**
 * Signed AuthnRequests: for a connection with saml_sign_authn_requests,
 * Gatehouse signs the HTTP-Redirect query with the SP key the operator
 * configured, publishes the certificate in the SP metadata, and an IdP that
 * requires signed requests (samlify, wantAuthnRequestsSigned) accepts them.
 */
let t: TestDatabase;
let gh: SsoServer;
let unsigned: SsoServer;
let dir: string;
let certificatePem: string;
const completer = new RecordingCompleter();

beforeAll(async () => {
  t = await createTestDatabase();
  dir = await mkdtemp(path.join(tmpdir(), 'gatehouse-sp-key-'));
  const pems = await selfsigned.generate([{ name: 'commonName', value: 'gatehouse-sp' }], {
    keyType: 'rsa',
    keySize: 2048,
    algorithm: 'sha256',
  });
  certificatePem = pems.cert;
  await writeFile(path.join(dir, 'sp.key'), pems.private, { mode: 0o600 });
  await writeFile(path.join(dir, 'sp.crt'), pems.cert);
  gh = await startSsoServer(t, {
    completer,
    env: {
      GATEHOUSE_SAML_SP_SIGNING_KEY_FILE: path.join(dir, 'sp.key'),
      GATEHOUSE_SAML_SP_SIGNING_CERT_FILE: path.join(dir, 'sp.crt'),
    },
  });
  unsigned = await startSsoServer(t, { completer });
});
afterAll(async () => {
  await gh.close();
  await unsigned.close();
  await rm(dir, { recursive: true, force: true });
  await t.close();
});

describe('signed AuthnRequests', () => {
  it('signs the request so an IdP requiring signatures accepts it, and publishes the certificate', async () => {
    const idp = await SamlTestIdp.create('strict');
    const tenantId = await createTenantWithDomains(t.db, 'strict', ['strict.test']);
    const connection = await createSamlConnection(t.db, tenantId, idp);
    await t.db.withTenant(tenantId, (em) =>
      em.query('UPDATE connections SET saml_sign_authn_requests = true'),
    );

    const metadata = await (await fetch(`${gh.baseUrl}/saml/${connection.id}/metadata`)).text();
    expect(metadata).toContain('AuthnRequestsSigned="true"');
    const certificateBody = certificatePem.replace(/-----(BEGIN|END) CERTIFICATE-----|\s/g, '');
    expect(metadata).toContain(certificateBody);

    const browser = new TestBrowser();
    const loginId = randomUUID();
    const start = await browser.visit(
      `${gh.baseUrl}/login?login=${loginId}&email=sig%40strict.test`,
      idp.ssoUrl,
    );
    const redirect = new URL(start.redirectedTo ?? '');
    expect(redirect.searchParams.get('SigAlg')).toBe('http://www.w3.org/2001/04/xmldsig-more#rsa-sha256');
    const sp = { ...spOf(gh.baseUrl, connection), signingCert: certificatePem };
    const answer = await idp.answer(redirect.toString(), sp, { nameId: 'sig@strict.test' });
    const done = await browser.visit(sp.acsUrl, 'about:', {
      method: 'POST',
      form: { SAMLResponse: answer.samlResponse },
    });
    expect(done.body).toBe(`completed ${loginId}`);

    // The same IdP refuses a request whose signature does not match the published certificate.
    const tampered = new URL(redirect);
    tampered.searchParams.set('Signature', Buffer.from('forged').toString('base64'));
    await expect(idp.readAuthnRequest(tampered.toString(), sp)).rejects.toThrow();
  });

  it('signs with the connection’s own key, published in its SP metadata, where no deployment-wide key is configured', async () => {
    // Issue 16: the deployment-wide PEM files are an optional default; without them the connection
    // gets a signing key of its own on first need (connections/sp-keys.service.ts).
    const idp = await SamlTestIdp.create('nokey');
    const tenantId = await createTenantWithDomains(t.db, 'nokey', ['nokey.test']);
    const connection = await createSamlConnection(t.db, tenantId, idp);
    await t.db.withTenant(tenantId, (em) =>
      em.query('UPDATE connections SET saml_sign_authn_requests = true'),
    );
    const metadata = await (await fetch(`${unsigned.baseUrl}/saml/${connection.id}/metadata`)).text();
    const body = /<md:KeyDescriptor use="signing">[\s\S]*?<ds:X509Certificate>([^<]+)</.exec(metadata)?.[1];
    expect(body).toBeDefined();
    expect(body).not.toBe(certificatePem.replace(/-----(BEGIN|END) CERTIFICATE-----|\s/g, ''));
    const res = await new TestBrowser().visit(
      `${unsigned.baseUrl}/login?login=${randomUUID()}&email=a%40nokey.test`,
      idp.ssoUrl,
    );
    const sp = {
      ...spOf(unsigned.baseUrl, connection),
      signingCert: `-----BEGIN CERTIFICATE-----\n${body ?? ''}\n-----END CERTIFICATE-----\n`,
    };
    await expect(idp.readAuthnRequest(res.redirectedTo ?? '', sp)).resolves.toMatchObject({
      issuer: sp.entityId,
    });
  });
});
