import { createPublicKey } from 'node:crypto';
import { createRequire } from 'node:module';
import { generateSpKey, type GeneratedSpKey } from '../../connections/sp-keys-certificate.js';
import { DEFAULT_XML_LIMITS } from '../../connections/xml-limits.js';
import { decryptAssertion } from './assertion-decryption.js';

/**
 * decryptAssertion alone: which key opens an EncryptedAssertion (every
 * published key is tried, in order, only on a failure to decrypt), and what
 * its plaintext must be before node-saml parses it.
 */
type XmlEncryption = {
  encrypt(content: string, options: Record<string, unknown>, cb: (e: Error | null, r?: string) => void): void;
};
const xmlenc = createRequire(import.meta.url)('xml-encryption') as XmlEncryption;

const ASSERTION = `<saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_a" Version="2.0" IssueInstant="2026-01-01T00:00:00Z"><saml:Issuer>https://idp.test</saml:Issuer><saml:Subject><saml:NameID>ann@acme.test</saml:NameID></saml:Subject><saml:Conditions/></saml:Assertion>`;

let current: GeneratedSpKey;
let previous: GeneratedSpKey;

beforeAll(async () => {
  [current, previous] = await Promise.all([
    generateSpKey({ commonName: 'current', now: new Date() }),
    generateSpKey({ commonName: 'previous', now: new Date() }),
  ]);
});

function encrypt(plaintext: string, to: GeneratedSpKey): Promise<string> {
  return new Promise((resolve, reject) =>
    xmlenc.encrypt(
      plaintext,
      {
        rsa_pub: createPublicKey(to.certificatePem).export({ type: 'spki', format: 'pem' }),
        pem: to.certificatePem,
        encryptionAlgorithm: 'http://www.w3.org/2009/xmlenc11#aes256-gcm',
        keyEncryptionAlgorithm: 'http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p',
      },
      (error, result) =>
        error || !result
          ? reject(error ?? new Error('no result'))
          : resolve(
              `<saml:EncryptedAssertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion">${result}</saml:EncryptedAssertion>`,
            ),
    ),
  );
}

const keys = () => [
  { id: 'current', privateKeyPem: current.privateKeyPem },
  { id: 'previous', privateKeyPem: previous.privateKeyPem },
];
const input = (encryptedAssertionXml: string, list = keys()) => ({
  encryptedAssertionXml,
  keys: list,
  allowSha1: false,
  xmlLimits: DEFAULT_XML_LIMITS,
});

describe('decryptAssertion', () => {
  it('opens an assertion encrypted to the current key with it, and one encrypted to the previous key with that', async () => {
    expect((await decryptAssertion(input(await encrypt(ASSERTION, current)))).key.id).toBe('current');
    const toPrevious = await decryptAssertion(input(await encrypt(ASSERTION, previous)));
    expect(toPrevious).toEqual({ key: keys()[1], assertionSigned: false });
  });

  it('refuses with saml_decryption_failed when no key of the connection opens it, or it has none', async () => {
    const stranger = await generateSpKey({ commonName: 'stranger', now: new Date() });
    const foreign = await encrypt(ASSERTION, stranger);
    await expect(decryptAssertion(input(foreign))).rejects.toMatchObject({
      reason: 'saml_decryption_failed',
    });
    await expect(decryptAssertion(input(await encrypt(ASSERTION, current), []))).rejects.toMatchObject({
      reason: 'saml_decryption_failed',
    });
  });

  it.each([
    ['a DTD', `<!DOCTYPE a [<!ENTITY e "x">]>${ASSERTION}`, 'saml_decryption_failed'],
    ['text that is not XML', 'garbage', 'saml_decryption_failed'],
    [
      'another element',
      '<saml:Issuer xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion"/>',
      'saml_decryption_failed',
    ],
    [
      'a comment inside NameID',
      ASSERTION.replace('</saml:NameID>', '<!---->.evil.test</saml:NameID>'),
      'saml_xml_comment_injection',
    ],
    [
      'an assertion inside the assertion',
      ASSERTION.replace('<saml:Conditions/>', `<saml:Conditions/>${ASSERTION}`),
      'saml_assertion_count',
    ],
    ['no Conditions', ASSERTION.replace('<saml:Conditions/>', ''), 'saml_audience_mismatch'],
  ])('refuses a plaintext with %s', async (_name, plaintext, reason) => {
    await expect(decryptAssertion(input(await encrypt(plaintext, current)))).rejects.toMatchObject({
      reason,
    });
  });
});
