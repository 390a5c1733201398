import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { SamlTestIdp } from '../support/saml-idp.js';
import { RecordingCompleter, startSsoServer, type SsoServer } from '../support/sso-app.js';
import {
  auditEvents,
  createSamlConnection,
  createTenantWithDomains,
  loginFootprint,
  spOf,
} from '../support/sso-factories.js';
import {
  CONTENT_ALGORITHMS,
  encryptedResponse,
  KEY_TRANSPORT,
  metadataCertificates,
  post,
  reasonOf,
  startLogin,
} from './saml-encryption-idp.js';

/**
 * Encrypted assertions (issue 16): a samlify IdP encrypts to the certificate it
 * reads from the connection's SP metadata; the ACS decrypts with the
 * connection's own key and then checks the decrypted assertion exactly as a
 * plaintext one. Each content algorithm samlify/xml-encryption produces is
 * tried; the refused ones (3DES, RSA PKCS#1 v1.5) and a key that is not ours
 * end in saml_decryption_failed; a connection that requires encryption
 * refuses a plaintext assertion.
 */
let t: TestDatabase;
let gh: SsoServer;
const completer = new RecordingCompleter();

beforeAll(async () => {
  t = await createTestDatabase();
  gh = await startSsoServer(t, { completer });
});
afterAll(async () => {
  await gh.close();
  await t.close();
});

async function setup(slug: string, overrides: Parameters<typeof createSamlConnection>[3] = {}) {
  const idp = await SamlTestIdp.create(slug);
  const tenantId = await createTenantWithDomains(t.db, slug, [`${slug}.test`]);
  const connection = await createSamlConnection(t.db, tenantId, idp, overrides);
  const sp = spOf(gh.baseUrl, connection);
  const metadata = await (await fetch(`${gh.baseUrl}/saml/${connection.id}/metadata`)).text();
  const [encryptTo] = metadataCertificates(metadata, 'encryption');
  if (!encryptTo) throw new Error('no encryption certificate in the SP metadata');
  return { idp, tenantId, connection, sp, metadata, encryptTo };
}

describe('encrypted assertions', () => {
  it('advertises an encryption certificate in the SP metadata, and signs in with an assertion encrypted to it', async () => {
    const s = await setup('enc');
    expect(metadataCertificates(s.metadata, 'encryption')).toHaveLength(1);
    expect(s.metadata).toContain('WantAssertionsSigned="true"');
    expect(s.metadata).toContain(
      '<md:EncryptionMethod Algorithm="http://www.w3.org/2009/xmlenc11#aes256-gcm"/>',
    );
    const login = await startLogin(gh.baseUrl, s.idp, s.sp, 'ann@enc.test');
    const answer = await encryptedResponse(
      s.idp,
      login.requestId,
      s.sp,
      { nameId: 'ann@enc.test' },
      {
        encryptTo: s.encryptTo,
      },
    );
    expect(answer.xml).toContain('EncryptedAssertion');
    expect(answer.xml).not.toContain('ann@enc.test');
    expect(await post(login.browser, s.sp, answer.samlResponse)).toEqual({
      status: 200,
      body: `completed ${login.loginId}`,
    });
    const user = await t.db.withTenant(s.tenantId, (em) =>
      em.query<{ user_name: string }[]>('SELECT user_name FROM users WHERE id = $1', [
        completer.completed.at(-1)?.result.userId,
      ]),
    );
    expect(user[0]?.user_name).toBe('ann@enc.test');
    // The keys were made on the first metadata read, audited as the system.
    const created = await auditEvents(t.db, s.tenantId, 'connection.sp_keys_created');
    expect(created).toHaveLength(1);
    expect(created[0]?.actor_type).toBe('system');
  });

  it.each(['aes128-cbc', 'aes256-cbc', 'aes128-gcm', 'aes256-gcm'] as const)(
    'decrypts content encrypted with %s (RSA-OAEP key transport)',
    async (name) => {
      const slug = `alg-${name.replace(/[^a-z0-9]/g, '')}`;
      const s = await setup(slug);
      const login = await startLogin(gh.baseUrl, s.idp, s.sp, `bo@${slug}.test`);
      const answer = await encryptedResponse(
        s.idp,
        login.requestId,
        s.sp,
        { nameId: `bo@${slug}.test` },
        {
          encryptTo: s.encryptTo,
          content: CONTENT_ALGORITHMS[name],
        },
      );
      expect(answer.xml).toContain(CONTENT_ALGORITHMS[name]);
      expect((await post(login.browser, s.sp, answer.samlResponse)).body).toBe(`completed ${login.loginId}`);
    },
  );

  it('decrypts under a Response signature too (assertion and Response signed, encrypt-then-sign)', async () => {
    const s = await setup('both', { samlSignedElement: 'both' });
    const login = await startLogin(gh.baseUrl, s.idp, s.sp, 'cy@both.test');
    const answer = await encryptedResponse(
      s.idp,
      login.requestId,
      s.sp,
      { nameId: 'cy@both.test' },
      {
        encryptTo: s.encryptTo,
        signResponse: true,
      },
    );
    expect((await post(login.browser, s.sp, answer.samlResponse)).body).toBe(`completed ${login.loginId}`);
  });

  it('accepts an encrypted assertion covered by the Response signature alone where signed_element is "response"', async () => {
    const s = await setup('resp', { samlSignedElement: 'response' });
    const login = await startLogin(gh.baseUrl, s.idp, s.sp, 'di@resp.test');
    const answer = await encryptedResponse(
      s.idp,
      login.requestId,
      s.sp,
      { nameId: 'di@resp.test' },
      {
        encryptTo: s.encryptTo,
        signAssertion: false,
        signResponse: true,
      },
    );
    expect((await post(login.browser, s.sp, answer.samlResponse)).body).toBe(`completed ${login.loginId}`);
  });

  it.each([
    ['3DES content', { content: CONTENT_ALGORITHMS['tripledes-cbc'] }],
    ['RSA PKCS#1 v1.5 key transport', { keyTransport: KEY_TRANSPORT['rsa-1_5'] }],
  ])('refuses %s with saml_decryption_failed, before decrypting', async (_name, algorithm) => {
    const slug = `weak${_name.length}`;
    const s = await setup(slug);
    const before = await loginFootprint(t.db, s.tenantId);
    const login = await startLogin(gh.baseUrl, s.idp, s.sp, `ed@${slug}.test`);
    const answer = await encryptedResponse(
      s.idp,
      login.requestId,
      s.sp,
      { nameId: `ed@${slug}.test` },
      {
        encryptTo: s.encryptTo,
        ...algorithm,
      },
    );
    expect(reasonOf((await post(login.browser, s.sp, answer.samlResponse)).body)).toBe(
      'saml_decryption_failed',
    );
    expect(await loginFootprint(t.db, s.tenantId)).toEqual(before);
  });

  it('refuses an assertion encrypted to a key that is not the connection’s with saml_decryption_failed', async () => {
    const s = await setup('otherkey');
    const stranger = await SamlTestIdp.create('stranger');
    const login = await startLogin(gh.baseUrl, s.idp, s.sp, 'fi@otherkey.test');
    const answer = await encryptedResponse(
      s.idp,
      login.requestId,
      s.sp,
      { nameId: 'fi@otherkey.test' },
      {
        encryptTo: stranger.certificatePem,
      },
    );
    expect(reasonOf((await post(login.browser, s.sp, answer.samlResponse)).body)).toBe(
      'saml_decryption_failed',
    );
  });

  it('refuses a plaintext assertion on a connection that requires encryption, and accepts the encrypted one', async () => {
    const s = await setup('must');
    // Turned on through the admin API field, as an operator would.
    const patch = await fetch(`${gh.address}/admin/v1/tenants/${s.tenantId}/connections/${s.connection.id}`, {
      method: 'PATCH',
      headers: { Authorization: `Bearer ${gh.secrets.adminToken}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ require_encrypted_assertions: true }),
    });
    expect(patch.status).toBe(200);
    expect(
      ((await patch.json()) as { saml: Record<string, unknown> }).saml.require_encrypted_assertions,
    ).toBe(true);

    const before = await loginFootprint(t.db, s.tenantId);
    const plain = await startLogin(gh.baseUrl, s.idp, s.sp, 'gu@must.test');
    // The IdP's ordinary signed answer to the pending request, in the clear.
    const plainAnswer = await s.idp.unsolicited(
      s.sp,
      { nameId: 'gu@must.test' },
      { inResponseTo: plain.requestId },
    );
    // Refused on the envelope, before any signature is read: Gatehouse's own error page.
    const refused = await post(plain.browser, s.sp, plainAnswer.samlResponse);
    expect(refused.status).toBe(400);
    expect(refused.body).toContain('<code>saml_assertion_not_encrypted</code>');
    expect(await loginFootprint(t.db, s.tenantId)).toEqual(before);

    const login = await startLogin(gh.baseUrl, s.idp, s.sp, 'gu@must.test');
    const answer = await encryptedResponse(
      s.idp,
      login.requestId,
      s.sp,
      { nameId: 'gu@must.test' },
      {
        encryptTo: s.encryptTo,
      },
    );
    expect((await post(login.browser, s.sp, answer.samlResponse)).body).toBe(`completed ${login.loginId}`);
  });
});
