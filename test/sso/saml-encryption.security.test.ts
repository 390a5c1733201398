import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { SamlTestIdp } from '../support/saml-idp.js';
import { RecordingCompleter, startSsoServer, type SsoServer } from '../support/sso-app.js';
import {
  createSamlConnection,
  createTenantWithDomains,
  loginFootprint,
  spOf,
} from '../support/sso-factories.js';
import {
  assertionOf,
  encryptedAssertionElement,
  encryptedResponse,
  metadataCertificates,
  post,
  reasonOf,
  replaceAssertion,
  startLogin,
} from './saml-encryption-idp.js';

/**
 * Encryption is confidentiality, not authentication (docs/security.md §1):
 * anyone holding our public certificate — which the SP metadata publishes —
 * can encrypt an assertion to it. Every test here makes an EncryptedAssertion
 * that decrypts perfectly and must still be refused by the checks a plaintext
 * assertion gets: the signature over the decrypted assertion, the comment
 * check, the DTD ban, one assertion per Response. Nobody signs in, nothing of
 * the tenant changes.
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
  const login = await startLogin(gh.baseUrl, idp, sp, `victim@${slug}.test`);
  return { slug, idp, tenantId, sp, encryptTo, login, before: await loginFootprint(t.db, tenantId) };
}

type Setup = Awaited<ReturnType<typeof setup>>;

/** Posts and checks the refusal: the reason, no completion, nothing of the tenant written. */
async function expectRefused(s: Setup, samlResponse: string, reason: string | RegExp): Promise<void> {
  const completed = completer.completed.length;
  const res = await post(s.login.browser, s.sp, samlResponse);
  expect(res.status).toBeLessThan(500);
  const named = reasonOf(res.body);
  if (typeof reason === 'string') expect(named).toBe(reason);
  else expect(named).toMatch(reason);
  expect(completer.completed).toHaveLength(completed);
  expect(await loginFootprint(t.db, s.tenantId)).toEqual(s.before);
}

/** A genuine plaintext answer to the pending request: the assertion signed by the tenant's IdP. */
async function genuine(s: Setup) {
  return s.idp.unsolicited(s.sp, { nameId: `victim@${s.slug}.test` }, { inResponseTo: s.login.requestId });
}

describe('encrypted assertions: encryption is not authentication', () => {
  it("refuses an attacker's assertion encrypted to our public certificate but signed by another key", async () => {
    const s = await setup('xatk');
    // Same entity id, same SSO URL, the attacker's own key: everything but the signature is right.
    const attacker = await SamlTestIdp.rotated(s.idp);
    const forged = await encryptedResponse(
      attacker,
      s.login.requestId,
      s.sp,
      { nameId: 'victim@xatk.test' },
      {
        encryptTo: s.encryptTo,
      },
    );
    await expectRefused(s, forged.samlResponse, 'saml_signature_invalid');
  });

  it('refuses an encrypted assertion with no signature inside, under a signed Response, where the connection wants the assertion signed', async () => {
    const s = await setup('xunsig');
    const answer = await encryptedResponse(
      s.idp,
      s.login.requestId,
      s.sp,
      { nameId: 'victim@xunsig.test' },
      {
        encryptTo: s.encryptTo,
        signAssertion: false,
        signResponse: true,
      },
    );
    await expectRefused(s, answer.samlResponse, 'saml_assertion_unsigned_response_signed');
  });

  it('refuses an encrypted assertion that carries no signature at all, in an unsigned Response', async () => {
    const s = await setup('xnone');
    const plain = await genuine(s);
    const stripped = assertionOf(plain.xml).replace(/<ds:Signature\b[\s\S]*<\/ds:Signature>/, '');
    expect(stripped).not.toContain('Signature');
    const forged = replaceAssertion(plain.xml, await encryptedAssertionElement(stripped, s.encryptTo));
    await expectRefused(s, forged, /^saml_(signature_invalid|assertion_unsigned_response_signed)$/);
  });

  it('refuses a signed assertion whose NameID got a comment after signing, then was encrypted (comment injection)', async () => {
    const s = await setup('xcmt');
    const plain = await genuine(s);
    const injected = assertionOf(plain.xml).replace('</saml:NameID>', '<!---->.evil.test</saml:NameID>');
    const forged = replaceAssertion(plain.xml, await encryptedAssertionElement(injected, s.encryptTo));
    await expectRefused(s, forged, 'saml_xml_comment_injection');
  });

  it('refuses a DTD inside the decrypted plaintext with saml_decryption_failed (XXE, entity expansion)', async () => {
    const s = await setup('xdtd');
    const plain = await genuine(s);
    const withDtd = `<!DOCTYPE x [<!ENTITY e "victim">]>${assertionOf(plain.xml)}`;
    const forged = replaceAssertion(plain.xml, await encryptedAssertionElement(withDtd, s.encryptTo));
    await expectRefused(s, forged, 'saml_decryption_failed');
  });

  it('refuses plaintext that is not one Assertion with saml_decryption_failed', async () => {
    const s = await setup('xjunk');
    const plain = await genuine(s);
    for (const junk of [
      'not xml at all',
      '<saml:Issuer xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion"/>',
    ]) {
      const forged = replaceAssertion(plain.xml, await encryptedAssertionElement(junk, s.encryptTo));
      await expectRefused(s, forged, 'saml_decryption_failed');
    }
  });

  it('refuses an algorithm smuggled in an element of another namespace (the decryptor matches local names only)', async () => {
    const s = await setup('xns');
    const answer = await encryptedResponse(
      s.idp,
      s.login.requestId,
      s.sp,
      { nameId: 'victim@xns.test' },
      {
        encryptTo: s.encryptTo,
      },
    );
    const decoy =
      '<x:EncryptedData xmlns:x="urn:decoy"><x:EncryptionMethod Algorithm="http://www.w3.org/2001/04/xmlenc#tripledes-cbc"/></x:EncryptedData>';
    const smuggled = answer.xml.replace(/(<saml:EncryptedAssertion\b[^>]*>)/, `$1${decoy}`);
    expect(smuggled).toContain('urn:decoy');
    await expectRefused(s, Buffer.from(smuggled, 'utf8').toString('base64'), 'saml_decryption_failed');
  });

  it('refuses an EncryptedAssertion beside a plaintext assertion (one assertion per Response)', async () => {
    const s = await setup('xtwo');
    const plain = await genuine(s);
    const assertion = assertionOf(plain.xml);
    const encrypted = await encryptedAssertionElement(assertion, s.encryptTo);
    const forged = replaceAssertion(plain.xml, `${assertion}${encrypted}`);
    await expectRefused(s, forged, 'saml_assertion_count');
  });
});
