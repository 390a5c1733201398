import { createPublicKey, randomBytes, randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import { DOMParser } from '@xmldom/xmldom';
import samlify from 'samlify';
import xpath from 'xpath';
import { TestBrowser } from '../support/browser.js';
import type { SamlTestIdp, SamlUser, ServiceProviderTarget } from '../support/saml-idp.js';

/**
 * An IdP that encrypts its assertions, for the encrypted-assertion tests: the
 * tenant's samlify IdP (its key and certificate from SamlTestIdp) with
 * samlify's own assertion encryption (xml-encryption underneath) to a
 * certificate read from Gatehouse's SP metadata, as an IdP admin would import
 * it. `craftEncrypted` builds what samlify will not (an assertion with no
 * signature at all, a DTD in the plaintext, refused algorithms), with the same
 * xml-encryption an attacker would use: anyone can encrypt to a public
 * certificate.
 */

const { namespace, algorithms } = samlify.Constants;
const NAMEID_EMAIL = 'urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress';
const NS_METADATA = 'urn:oasis:names:tc:SAML:2.0:metadata';
const NS_DSIG = 'http://www.w3.org/2000/09/xmldsig#';

export const CONTENT_ALGORITHMS = {
  'aes128-cbc': 'http://www.w3.org/2001/04/xmlenc#aes128-cbc',
  'aes256-cbc': 'http://www.w3.org/2001/04/xmlenc#aes256-cbc',
  'aes128-gcm': 'http://www.w3.org/2009/xmlenc11#aes128-gcm',
  'aes256-gcm': 'http://www.w3.org/2009/xmlenc11#aes256-gcm',
  'tripledes-cbc': 'http://www.w3.org/2001/04/xmlenc#tripledes-cbc',
} as const;
export const KEY_TRANSPORT = {
  'rsa-oaep-mgf1p': 'http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p',
  'rsa-1_5': 'http://www.w3.org/2001/04/xmlenc#rsa-1_5',
} as const;

type XmlEncryption = {
  encrypt(
    content: string,
    options: Record<string, unknown>,
    callback: (error: Error | null, result?: string) => void,
  ): void;
};
// samlify's own dependency, loaded as samlify loads it (it ships no types).
const xmlenc = createRequire(import.meta.url)('xml-encryption') as XmlEncryption;

export interface EncryptOptions {
  /** The SP certificate (PEM) to encrypt to. */
  encryptTo: string;
  content?: string;
  keyTransport?: string;
  /** Sign the Assertion before encrypting it (default yes). */
  signAssertion?: boolean;
  /** Sign the Response after encrypting (default no). */
  signResponse?: boolean;
  /** Response/Assertion Issuer and IssueInstant shifts are not needed here. */
  inResponseTo?: string | null;
}

function pemOf(body: string): string {
  return `-----BEGIN CERTIFICATE-----\n${body.replace(/\s+/g, '').replace(/.{1,64}/g, '$&\n')}-----END CERTIFICATE-----\n`;
}

/** The certificates of one use in SP metadata, in document order, as PEM. */
export function metadataCertificates(metadataXml: string, use: 'signing' | 'encryption'): string[] {
  const doc = new DOMParser().parseFromString(metadataXml, 'text/xml');
  const select = xpath.useNamespaces({ md: NS_METADATA, ds: NS_DSIG });
  const nodes = select(
    `//md:KeyDescriptor[@use="${use}"]/ds:KeyInfo/ds:X509Data/ds:X509Certificate`,
    doc,
  ) as Node[];
  return nodes.map((n) => pemOf(n.textContent ?? ''));
}

function escapeXml(value: string): string {
  return value.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** A Response from `idp` for `user`, its assertion encrypted by samlify to `o.encryptTo`. */
export async function encryptedResponse(
  idp: SamlTestIdp,
  requestId: string,
  target: ServiceProviderTarget,
  user: SamlUser,
  o: EncryptOptions,
): Promise<{ samlResponse: string; xml: string }> {
  const issued = new Date();
  const until = new Date(issued.getTime() + 300_000);
  const responseId = `_${randomBytes(16).toString('hex')}`;
  const inResponseTo = o.inResponseTo === undefined ? requestId : o.inResponseTo;
  const values: Record<string, string> = {
    ID: responseId,
    AssertionID: `_${randomBytes(16).toString('hex')}`,
    Destination: target.acsUrl,
    Audience: target.entityId,
    SubjectRecipient: target.acsUrl,
    IssueInstant: issued.toISOString(),
    StatusCode: samlify.Constants.StatusCode.Success,
    ConditionsNotBefore: issued.toISOString(),
    ConditionsNotOnOrAfter: until.toISOString(),
    SubjectConfirmationDataNotOnOrAfter: until.toISOString(),
    NameIDFormat: user.nameIdFormat ?? NAMEID_EMAIL,
    NameID: escapeXml(user.nameId),
    Issuer: escapeXml(idp.entityId),
    AuthnStatement: `<saml:AuthnStatement AuthnInstant="${issued.toISOString()}" SessionIndex="_s${randomBytes(8).toString('hex')}"><saml:AuthnContext><saml:AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport</saml:AuthnContextClassRef></saml:AuthnContext></saml:AuthnStatement>`,
    AttributeStatement: '',
  };
  const customTagReplacement = (template: string) => {
    let xml = template.replace(/\{(\w+)\}/g, (tag: string, key: string) =>
      key === 'InResponseTo' ? (inResponseTo ?? '') : (values[key] ?? tag),
    );
    if (inResponseTo === null) xml = xml.replace(/ InResponseTo=""/g, '');
    return { id: responseId, context: xml };
  };
  const signAssertion = o.signAssertion ?? true;
  const signResponse = o.signResponse ?? false;
  // samlify reads the two algorithms from its settings (entity.ts defaults) but its types omit them.
  const settings: Parameters<typeof samlify.IdentityProvider>[0] & Record<string, unknown> = {
    entityID: idp.entityId,
    signingCert: idp.certificatePem,
    privateKey: idp.privateKeyPem,
    singleSignOnService: [{ Binding: namespace.binding.post, Location: idp.ssoUrl }],
    nameIDFormat: [NAMEID_EMAIL],
    requestSignatureAlgorithm: algorithms.signature.RSA_SHA256,
    isAssertionEncrypted: true,
    dataEncryptionAlgorithm: o.content ?? CONTENT_ALGORITHMS['aes256-gcm'],
    keyEncryptionAlgorithm: o.keyTransport ?? KEY_TRANSPORT['rsa-oaep-mgf1p'],
  };
  const samlIdp = samlify.IdentityProvider(settings);
  const samlSp = samlify.ServiceProvider({
    entityID: target.entityId,
    assertionConsumerService: [{ Binding: namespace.binding.post, Location: target.acsUrl }],
    wantAssertionsSigned: signAssertion,
    wantMessageSigned: signResponse,
    encryptCert: o.encryptTo,
  });
  const answer = await samlIdp.createLoginResponse(
    samlSp,
    { extract: { request: { id: requestId } } },
    'post',
    { email: user.nameId },
    // Encrypt, then sign the Response: its signature then covers the EncryptedAssertion as sent.
    { customTagReplacement, encryptThenSign: true },
  );
  const samlResponse = answer.context;
  return { samlResponse, xml: Buffer.from(samlResponse, 'base64').toString('utf8') };
}

/** Encrypts `plaintext` (an Assertion, or anything) to `certificatePem` as an EncryptedAssertion element. */
export async function encryptedAssertionElement(
  plaintext: string,
  certificatePem: string,
  content: string = CONTENT_ALGORITHMS['aes256-gcm'],
  keyTransport: string = KEY_TRANSPORT['rsa-oaep-mgf1p'],
): Promise<string> {
  const encrypted = await new Promise<string>((resolve, reject) =>
    xmlenc.encrypt(
      plaintext,
      {
        rsa_pub: createPublicKey(certificatePem).export({ type: 'spki', format: 'pem' }),
        pem: certificatePem,
        encryptionAlgorithm: content,
        keyEncryptionAlgorithm: keyTransport,
        warnInsecureAlgorithm: false,
      },
      (error, result) => (error || !result ? reject(error ?? new Error('no result')) : resolve(result)),
    ),
  );
  return `<saml:EncryptedAssertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion">${encrypted}</saml:EncryptedAssertion>`;
}

/** The Response `xml` with its plaintext Assertion replaced by `replacement` (base64, as POSTed). */
export function replaceAssertion(xml: string, replacement: string): string {
  const match = /<saml:Assertion\b[\s\S]*<\/saml:Assertion>/.exec(xml);
  if (!match) throw new Error('no plaintext assertion in the response');
  return Buffer.from(
    xml.replace(match[0], () => replacement),
    'utf8',
  ).toString('base64');
}

/** The plaintext Assertion of a Response. */
export function assertionOf(xml: string): string {
  const match = /<saml:Assertion\b[\s\S]*<\/saml:Assertion>/.exec(xml);
  if (!match) throw new Error('no plaintext assertion in the response');
  return match[0];
}

/** A browser that started a login at Gatehouse and holds the AuthnRequest the IdP received. */
export async function startLogin(
  baseUrl: string,
  idp: SamlTestIdp,
  target: ServiceProviderTarget,
  email: string,
): Promise<{ browser: TestBrowser; loginId: string; requestId: string }> {
  const browser = new TestBrowser();
  const loginId = randomUUID();
  const start = await browser.visit(
    `${baseUrl}/login?login=${loginId}&email=${encodeURIComponent(email)}`,
    idp.ssoUrl,
  );
  if (!start.redirectedTo) throw new Error(`no redirect to the IdP: ${start.status} ${start.body}`);
  const request = await idp.readAuthnRequest(start.redirectedTo, target);
  return { browser, loginId, requestId: request.id };
}

/** POSTs a SAMLResponse to the ACS in `browser`; the completer's text answer. */
export async function post(
  browser: TestBrowser,
  target: ServiceProviderTarget,
  samlResponse: string,
): Promise<{ status: number; body: string }> {
  const res = await browser.visit(target.acsUrl, 'about:', {
    method: 'POST',
    form: { SAMLResponse: samlResponse },
  });
  return { status: res.status, body: res.body };
}

/**
 * The reason a refused answer names: the completer's "failed <login> <reason>"
 * when the refusal returned to the app, else the <code> of Gatehouse's error
 * page (refusals made before any signature is read); null for a completed one.
 */
export function reasonOf(body: string): string | null {
  const failed = /^failed \S+ (\S+)$/.exec(body);
  if (failed) return failed[1] ?? null;
  return /Reason: <code>([a-z0-9_]+)<\/code>/.exec(body)?.[1] ?? null;
}
