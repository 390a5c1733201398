import { DOMParser, XMLSerializer } from '@xmldom/xmldom';
import { prescanXml, XmlRefusedError, type XmlLimits } from '../../connections/xml-limits.js';
import { LoginRefusedError, refuse } from '../reasons.js';

/**
 * The SAML checks node-saml 5.1 does not make, as pure functions over the
 * XML (the clock is an argument). docs/security.md, "signed bytes only":
 *
 * - inspectSamlResponse runs on the raw POSTed document before node-saml sees
 *   it. It reads the unsigned envelope, so it may only add refusals (size and
 *   shape bounds, status, Destination, one assertion, algorithms); nothing it
 *   returns decides who signs in or which request is answered.
 * - checkSignedAssertion runs on the assertion node-saml returns — the bytes
 *   a verified signature covers — and decides everything a login uses:
 *   subject, issuer, recipient, time window and whether the answer is
 *   solicited (the signed SubjectConfirmationData/@InResponseTo).
 */

const NS_PROTOCOL = 'urn:oasis:names:tc:SAML:2.0:protocol';
const NS_ASSERTION = 'urn:oasis:names:tc:SAML:2.0:assertion';
const NS_DSIG = 'http://www.w3.org/2000/09/xmldsig#';
const STATUS_SUCCESS = 'urn:oasis:names:tc:SAML:2.0:status:Success';
const BEARER = 'urn:oasis:names:tc:SAML:2.0:cm:bearer';
/** SAML core §8.3.8: a one-time identifier, a different value at every login. */
export const NAMEID_TRANSIENT = 'urn:oasis:names:tc:SAML:2.0:nameid-format:transient';

/** A SAMLResponse larger than this (base64) is refused unread. */
export const MAX_SAML_RESPONSE_LENGTH = 512 * 1024;

const SHA2_SIGNATURE_METHODS = new Set([
  'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256',
  'http://www.w3.org/2001/04/xmldsig-more#rsa-sha384',
  'http://www.w3.org/2001/04/xmldsig-more#rsa-sha512',
  'http://www.w3.org/2007/05/xmldsig-more#sha256-rsa-MGF1',
  'http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256',
  'http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384',
  'http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512',
]);
const SHA2_DIGEST_METHODS = new Set([
  'http://www.w3.org/2001/04/xmlenc#sha256',
  'http://www.w3.org/2001/04/xmldsig-more#sha384',
  'http://www.w3.org/2001/04/xmlenc#sha512',
]);
const SHA1_SIGNATURE_METHOD = 'http://www.w3.org/2000/09/xmldsig#rsa-sha1';
const SHA1_DIGEST_METHOD = 'http://www.w3.org/2000/09/xmldsig#sha1';

/** Elements whose text Gatehouse reads: a comment or PI inside one could change what is read. */
const TEXT_ELEMENTS = ['NameID', 'AttributeValue', 'Issuer', 'Audience'];

const COMMENT_NODE = 8;
const PROCESSING_INSTRUCTION_NODE = 7;

export interface ResponseFacts {
  /**
   * The unsigned Response's InResponseTo. Never decides whether the answer is
   * solicited (the signed assertion does); it can only make a refusal, when it
   * disagrees with the signed value.
   */
  envelopeInResponseTo: string | null;
  /** Whether the Response element carries its own signature. */
  responseSigned: boolean;
  /**
   * Whether the assertion carries its own signature. Read from the unsigned
   * document, so it only ever picks which refusal to name (reasonOfSamlError).
   * False for an encrypted one: inspectDecryptedAssertion tells after decryption.
   */
  assertionSigned: boolean;
  /**
   * The one EncryptedAssertion (serialised), null for a plaintext assertion.
   * Its ciphertext is bounded by this scan; its plaintext is scanned again by
   * inspectDecryptedAssertion before node-saml parses it.
   */
  encryptedAssertionXml: string | null;
}

export interface InspectInput {
  samlResponse: unknown;
  acsUrl: string;
  idpEntityId: string | null;
  allowSha1: boolean;
  /** Bounds checked by a streaming scan before any DOM is built. */
  xmlLimits: XmlLimits;
  /** connection.samlRequireEncryptedAssertions: a plaintext assertion is refused (default false). */
  requireEncrypted?: boolean;
}

function parseStrict(xml: string): Document {
  const problems: string[] = [];
  const record = (msg: string) => {
    problems.push(msg);
  };
  const doc = new DOMParser({
    errorHandler: { warning: () => undefined, error: record, fatalError: record },
  }).parseFromString(xml, 'text/xml');
  if (problems.length > 0 || !doc.documentElement)
    refuse('saml_response_malformed', problems[0] ?? 'no document');
  return doc;
}

function elements(root: Document | Element, ns: string, localName: string): Element[] {
  return Array.from(root.getElementsByTagNameNS(ns, localName));
}

function children(parent: Element, ns: string, localName: string): Element[] {
  return Array.from(parent.childNodes).filter(
    (n): n is Element =>
      n.nodeType === 1 && (n as Element).namespaceURI === ns && (n as Element).localName === localName,
  );
}

function text(element: Element | undefined): string | null {
  const value = element?.textContent?.trim();
  return value ? value : null;
}

function hasCommentOrPi(node: Node): boolean {
  // xmldom leaves childNodes null on text nodes.
  for (const child of Array.from((node.childNodes as NodeListOf<ChildNode> | null) ?? [])) {
    if (child.nodeType === COMMENT_NODE || child.nodeType === PROCESSING_INSTRUCTION_NODE) return true;
    if (hasCommentOrPi(child)) return true;
  }
  return false;
}

function checkSignatureAlgorithms(doc: Document, allowSha1: boolean): void {
  for (const signature of elements(doc, NS_DSIG, 'Signature')) {
    for (const method of elements(signature, NS_DSIG, 'SignatureMethod')) {
      const alg = method.getAttribute('Algorithm') ?? '';
      if (SHA2_SIGNATURE_METHODS.has(alg)) continue;
      if (alg === SHA1_SIGNATURE_METHOD) {
        if (allowSha1) continue;
        refuse('saml_signature_algorithm_weak', 'SHA-1 signature, not allowed for this connection');
      }
      refuse('saml_signature_invalid', `unsupported signature method ${alg}`);
    }
    for (const method of elements(signature, NS_DSIG, 'DigestMethod')) {
      const alg = method.getAttribute('Algorithm') ?? '';
      if (SHA2_DIGEST_METHODS.has(alg)) continue;
      if (alg === SHA1_DIGEST_METHOD) {
        if (allowSha1) continue;
        refuse('saml_signature_algorithm_weak', 'SHA-1 digest, not allowed for this connection');
      }
      refuse('saml_signature_invalid', `unsupported digest method ${alg}`);
    }
  }
}

/** Decodes and checks the POSTed SAMLResponse; throws LoginRefusedError with the reason. */
export function inspectSamlResponse(input: InspectInput): ResponseFacts {
  const raw = input.samlResponse;
  if (typeof raw !== 'string' || raw.length === 0) refuse('saml_response_missing');
  if (raw.length > MAX_SAML_RESPONSE_LENGTH) refuse('saml_response_malformed', 'too large');
  if (!/^[A-Za-z0-9+/=\s]+$/.test(raw)) refuse('saml_response_malformed', 'not base64');
  const xml = Buffer.from(raw, 'base64').toString('utf8');
  // DTDs bring entity expansion (billion laughs) and external entities (XXE): never parsed.
  if (/<!DOCTYPE|<!ENTITY/i.test(xml)) refuse('saml_dtd_forbidden');
  boundedScan(xml, input.xmlLimits);

  const doc = parseStrict(xml);
  const response = doc.documentElement;
  if (!response || response.namespaceURI !== NS_PROTOCOL || response.localName !== 'Response')
    refuse('saml_response_malformed', 'not a SAML Response');

  for (const localName of TEXT_ELEMENTS) {
    for (const el of elements(doc, NS_ASSERTION, localName)) {
      if (hasCommentOrPi(el)) refuse('saml_xml_comment_injection', `comment or PI inside ${localName}`);
    }
  }

  const statusCode = children(response, NS_PROTOCOL, 'Status')
    .flatMap((s) => children(s, NS_PROTOCOL, 'StatusCode'))[0]
    ?.getAttribute('Value');
  if (statusCode !== STATUS_SUCCESS) refuse('saml_idp_error', `status ${statusCode ?? 'missing'}`);

  const destination = response.getAttribute('Destination');
  if (destination !== input.acsUrl)
    refuse('saml_destination_mismatch', `Destination ${destination ?? 'missing'}`);

  const responseIssuer = text(children(response, NS_ASSERTION, 'Issuer')[0]);
  if (responseIssuer !== null && responseIssuer !== input.idpEntityId)
    refuse('saml_issuer_mismatch', `Response Issuer ${responseIssuer}`);

  // Exactly one assertion in the whole document, plain or encrypted, directly
  // under Response: a second one anywhere (wrapped in Extensions, Object,
  // another Assertion…) is how signature-wrapping attacks smuggle the signed
  // original along.
  const assertions = elements(doc, NS_ASSERTION, 'Assertion');
  const encrypted = elements(doc, NS_ASSERTION, 'EncryptedAssertion');
  if (assertions.length + encrypted.length !== 1)
    refuse('saml_assertion_count', `${assertions.length} assertions, ${encrypted.length} encrypted`);
  const [assertion] = assertions;
  const [encryptedAssertion] = encrypted;
  const base = {
    envelopeInResponseTo: response.getAttribute('InResponseTo') || null,
    responseSigned: children(response, NS_DSIG, 'Signature').length > 0,
  };

  if (encryptedAssertion) {
    if (encryptedAssertion.parentNode !== response)
      refuse('saml_assertion_count', 'encrypted assertion not under Response');
    checkSignatureAlgorithms(doc, input.allowSha1);
    checkEncryptionAlgorithms(encryptedAssertion);
    return {
      ...base,
      assertionSigned: false,
      encryptedAssertionXml: new XMLSerializer().serializeToString(encryptedAssertion),
    };
  }
  if (!assertion || assertion.parentNode !== response)
    refuse('saml_assertion_count', 'assertion not under Response');
  if (input.requireEncrypted)
    refuse('saml_assertion_not_encrypted', 'a plaintext assertion on a connection that requires encryption');
  checkAssertionShape(assertion);
  checkSignatureAlgorithms(doc, input.allowSha1);
  return {
    ...base,
    assertionSigned: children(assertion, NS_DSIG, 'Signature').length > 0,
    encryptedAssertionXml: null,
  };
}

/** What a plaintext assertion must look like, wherever it came from (the Response or a decryption). */
function checkAssertionShape(assertion: Element): void {
  if (children(assertion, NS_ASSERTION, 'Conditions').length !== 1)
    refuse('saml_audience_mismatch', 'assertion without exactly one Conditions');
}

/**
 * XML Encryption 1.1 algorithms accepted in an EncryptedAssertion: AES-GCM
 * and AES-CBC content (§5.2), RSA-OAEP key transport (§5.5.2). Refused before
 * any decryption: RSA PKCS#1 v1.5 (§5.5.1, Bleichenbacher's padding oracle)
 * and 3DES (NIST SP 800-131A), which xml-encryption would otherwise accept.
 */
const CONTENT_ENCRYPTION = new Set([
  'http://www.w3.org/2009/xmlenc11#aes128-gcm',
  'http://www.w3.org/2009/xmlenc11#aes256-gcm',
  'http://www.w3.org/2001/04/xmlenc#aes128-cbc',
  'http://www.w3.org/2001/04/xmlenc#aes256-cbc',
]);
const KEY_TRANSPORT = new Set(['http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p']);
const NS_XMLENC = 'http://www.w3.org/2001/04/xmlenc#';

function checkEncryptionAlgorithms(encryptedAssertion: Element): void {
  // xml-encryption finds its elements by local name alone (any namespace): count and check them the
  // same way, so an element in another namespace can never carry an algorithm this check did not see.
  const named = (localName: string) =>
    Array.from(encryptedAssertion.getElementsByTagName('*')).filter((e) => e.localName === localName);
  const data = named('EncryptedData');
  const keys = named('EncryptedKey');
  // SAML core §2.3.4 / §6.2: one EncryptedData, its key in one EncryptedKey.
  if (
    data.length !== 1 ||
    keys.length !== 1 ||
    data[0]?.namespaceURI !== NS_XMLENC ||
    keys[0]?.namespaceURI !== NS_XMLENC
  )
    refuse('saml_decryption_failed', `${data.length} EncryptedData, ${keys.length} EncryptedKey`);
  const methods = named('EncryptionMethod');
  const method = (parent: Element) => methods.filter((m) => m.parentNode === parent);
  const [content, ...moreContent] = method(data[0]);
  const [transport, ...moreTransport] = method(keys[0]);
  if (methods.length !== 2 || moreContent.length > 0 || moreTransport.length > 0)
    refuse('saml_decryption_failed', `${methods.length} EncryptionMethod elements`);
  const contentAlgorithm = content?.getAttribute('Algorithm');
  if (!contentAlgorithm || !CONTENT_ENCRYPTION.has(contentAlgorithm))
    refuse('saml_decryption_failed', `content encryption ${contentAlgorithm ?? 'missing'} refused`);
  const transportAlgorithm = transport?.getAttribute('Algorithm');
  if (!transportAlgorithm || !KEY_TRANSPORT.has(transportAlgorithm))
    refuse('saml_decryption_failed', `key transport ${transportAlgorithm ?? 'missing'} refused`);
}

/**
 * The plaintext of a decrypted EncryptedAssertion, before node-saml parses it:
 * anyone can encrypt to our public certificate, so it is as hostile as the
 * Response and gets the same bounds (no DTD, the streaming pre-scan) and the
 * same envelope refusals a plaintext assertion gets (comment/PI inside a read
 * element, one Conditions, signature algorithms, no assertion inside it).
 * What is not one well-formed Assertion is saml_decryption_failed, like a
 * failed decryption (no oracle on the plaintext's shape).
 */
export function inspectDecryptedAssertion(input: {
  assertionXml: string;
  allowSha1: boolean;
  xmlLimits: XmlLimits;
}): { assertionSigned: boolean } {
  let assertion: Element;
  try {
    if (/<!DOCTYPE|<!ENTITY/i.test(input.assertionXml)) refuse('saml_dtd_forbidden');
    boundedScan(input.assertionXml, input.xmlLimits);
    const doc = parseStrict(input.assertionXml);
    const root = doc.documentElement;
    if (!root || root.namespaceURI !== NS_ASSERTION || root.localName !== 'Assertion')
      refuse('saml_response_malformed', 'decrypted content is not an Assertion');
    assertion = root;
  } catch (error) {
    if (!(error instanceof LoginRefusedError)) throw error;
    throw new LoginRefusedError('saml_decryption_failed', `decrypted content: ${error.reason}`);
  }
  if (
    elements(assertion, NS_ASSERTION, 'Assertion').length > 0 ||
    elements(assertion, NS_ASSERTION, 'EncryptedAssertion').length > 0
  )
    refuse('saml_assertion_count', 'an assertion inside the decrypted assertion');
  for (const localName of TEXT_ELEMENTS) {
    for (const el of elements(assertion, NS_ASSERTION, localName)) {
      if (hasCommentOrPi(el)) refuse('saml_xml_comment_injection', `comment or PI inside ${localName}`);
    }
  }
  checkAssertionShape(assertion);
  checkSignatureAlgorithms(assertion.ownerDocument, input.allowSha1);
  return { assertionSigned: children(assertion, NS_DSIG, 'Signature').length > 0 };
}

/** The streaming pre-scan, its refusals as reason codes. */
function boundedScan(xml: string, limits: XmlLimits): void {
  try {
    prescanXml(xml, limits);
  } catch (error) {
    if (!(error instanceof XmlRefusedError)) throw error;
    if (error.code === 'dtd_forbidden') refuse('saml_dtd_forbidden');
    if (error.code === 'malformed') refuse('saml_response_malformed', error.detail);
    refuse(`saml_xml_${error.code}`, error.detail);
  }
}

export interface AssertionFacts {
  assertionId: string;
  nameId: string;
  /** The signed NameID's Format, null when absent (SAML core §8.3.1: unspecified). */
  nameIdFormat: string | null;
  /**
   * The signed bearer SubjectConfirmationData/@InResponseTo: the AuthnRequest
   * this assertion answers, null for an IdP-initiated one. The only source of
   * "solicited".
   */
  inResponseTo: string | null;
  /** Until when the assertion could be accepted (replay cache expiry, skew included). */
  acceptableUntil: Date;
  /** AuthnStatement AuthnInstant, when given and not in the future. */
  authnInstant: Date | null;
}

export interface SignedAssertionInput {
  /** The assertion exactly as the verified signature covers it, parsed once (parseSignedAssertion). */
  assertion: Element;
  acsUrl: string;
  idpEntityId: string | null;
  /** The unsigned Response's InResponseTo (ResponseFacts): may only add a refusal. */
  envelopeInResponseTo: string | null;
  /** The connection admits IdP-initiated (unsolicited) logins. */
  allowIdpInitiated: boolean;
  now: Date;
  clockSkewMs: number;
}

export interface AssertionIdentity {
  assertionId: string;
  /** Until when the assertion could be accepted (replay cache expiry, skew included). */
  acceptableUntil: Date;
}

function time(value: string | null): number | null {
  if (!value) return null;
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? null : ms;
}

/**
 * The one parse of the signed assertion node-saml hands back (issue 13: the
 * response was parsed four times): assertionIdentity and checkSignedAssertion
 * both read this element, so every fact still comes from the signed bytes.
 */
export function parseSignedAssertion(assertionXml: string): Element {
  const doc = parseStrict(assertionXml);
  const assertion = doc.documentElement;
  if (!assertion || assertion.namespaceURI !== NS_ASSERTION || assertion.localName !== 'Assertion')
    refuse('saml_response_malformed', 'signed content is not an Assertion');
  return assertion;
}

/** The latest NotOnOrAfter the assertion states (bearer data and Conditions), null without one. */
function latestLimit(assertion: Element): number | null {
  const limits = [
    ...elements(assertion, NS_ASSERTION, 'SubjectConfirmationData').map((d) =>
      time(d.getAttribute('NotOnOrAfter')),
    ),
    ...children(assertion, NS_ASSERTION, 'Conditions').map((c) => time(c.getAttribute('NotOnOrAfter'))),
  ].filter((t): t is number => t !== null);
  return limits.length > 0 ? Math.max(...limits) : null;
}

/**
 * The signed assertion's ID and how long it must be remembered: read before
 * any other check, so that every assertion whose signature verified enters the
 * replay cache, accepted or not (a refused unsolicited post must not leave a
 * captured assertion redeemable). With no time limit in it, it is remembered
 * for the maximum assertion age.
 */
export function assertionIdentity(input: {
  assertion: Element;
  now: Date;
  clockSkewMs: number;
  maxAssertionAgeMs: number;
}): AssertionIdentity {
  const assertionId = input.assertion.getAttribute('ID');
  if (!assertionId) refuse('saml_response_malformed', 'assertion without ID');
  const until = latestLimit(input.assertion) ?? input.now.getTime() + input.maxAssertionAgeMs;
  return { assertionId, acceptableUntil: new Date(until + input.clockSkewMs) };
}

/**
 * Checks the signed assertion's issuer, subject confirmation and recipient,
 * and decides from its signed bearer confirmation whether it answers a
 * request (SAML profiles §4.1.4.2–4.1.4.3).
 */
export function checkSignedAssertion(input: SignedAssertionInput): AssertionFacts {
  const { assertion } = input;
  const assertionId = assertion.getAttribute('ID');
  if (!assertionId) refuse('saml_response_malformed', 'assertion without ID');

  const issuer = text(children(assertion, NS_ASSERTION, 'Issuer')[0]);
  if (issuer === null || issuer !== input.idpEntityId)
    refuse('saml_issuer_mismatch', `Assertion Issuer ${issuer}`);

  const subjects = children(assertion, NS_ASSERTION, 'Subject');
  const subject = subjects[0];
  const nameIds = subject ? children(subject, NS_ASSERTION, 'NameID') : [];
  const nameId = text(nameIds[0]);
  if (!subject || subjects.length !== 1 || nameIds.length !== 1 || nameId === null)
    refuse('saml_subject_missing', 'exactly one Subject with one NameID');

  // SAML profiles §4.1.4.2: a bearer confirmation, its data naming our ACS and an expiry.
  const bearer = children(subject, NS_ASSERTION, 'SubjectConfirmation').filter(
    (c) => c.getAttribute('Method') === BEARER,
  );
  if (bearer.length === 0) refuse('saml_subject_confirmation_invalid', 'no bearer SubjectConfirmation');
  const data = bearer.flatMap((c) => children(c, NS_ASSERTION, 'SubjectConfirmationData'));
  const forUs = data.filter((d) => d.getAttribute('Recipient') === input.acsUrl);
  if (forUs.length === 0)
    refuse('saml_recipient_mismatch', `Recipient ${data[0]?.getAttribute('Recipient') ?? 'missing'}`);
  const nowMs = input.now.getTime();
  const live = forUs.filter((d) => {
    const notOnOrAfter = time(d.getAttribute('NotOnOrAfter'));
    const notBefore = time(d.getAttribute('NotBefore'));
    return (
      notOnOrAfter !== null &&
      nowMs - input.clockSkewMs < notOnOrAfter &&
      (notBefore === null || notBefore <= nowMs + input.clockSkewMs)
    );
  });
  if (live.length === 0) refuse('saml_assertion_expired', 'no unexpired bearer SubjectConfirmationData');

  // Solicited iff the signed confirmation names a request; all live ones must agree.
  const answered = new Set(live.map((d) => d.getAttribute('InResponseTo') || null));
  if (answered.size !== 1)
    refuse('saml_in_response_to_invalid', 'bearer confirmations disagree on InResponseTo');
  const inResponseTo = [...answered][0] ?? null;
  if (input.envelopeInResponseTo !== null && input.envelopeInResponseTo !== inResponseTo)
    refuse('saml_in_response_to_invalid', 'the Response InResponseTo differs from the signed one');
  if (inResponseTo === null && !input.allowIdpInitiated)
    refuse('saml_unsolicited_response', 'no signed InResponseTo and IdP-initiated login is off');

  const acceptableUntil = new Date((latestLimit(assertion) ?? nowMs) + input.clockSkewMs);
  const authnInstant = time(
    children(assertion, NS_ASSERTION, 'AuthnStatement')[0]?.getAttribute('AuthnInstant') ?? null,
  );
  return {
    assertionId,
    nameId,
    nameIdFormat: nameIds[0]?.getAttribute('Format')?.trim() || null,
    inResponseTo,
    acceptableUntil,
    authnInstant:
      authnInstant !== null && authnInstant <= nowMs + input.clockSkewMs ? new Date(authnInstant) : null,
  };
}

/** What the connection asked to be signed, and what the envelope shows was signed. */
export interface SignatureContext {
  /** connection.samlSignedElement is 'assertion' or 'both'. */
  expectsAssertionSignature: boolean;
  responseSigned: boolean;
  assertionSigned: boolean;
}

/** node-saml's error messages, as reason codes (the message itself never reaches the person). */
export function reasonOfSamlError(error: unknown, signatures?: SignatureContext): LoginRefusedError {
  if (error instanceof LoginRefusedError) return error;
  const message = error instanceof Error ? error.message : String(error);
  const detail = `node-saml: ${message}`;
  // node-saml says "Invalid signature" of the assertion only after the Response signature it
  // was told to require (saml-options: wantAuthnResponseSigned when one is present) verified:
  // a genuine Response-only signature on a connection that wants the assertion signed.
  // "… from encrypted assertion": the same, for the assertion inside an EncryptedAssertion.
  if (
    (message === 'Invalid signature' || message === 'Invalid signature from encrypted assertion') &&
    signatures?.expectsAssertionSignature &&
    signatures.responseSigned &&
    !signatures.assertionSigned
  )
    return new LoginRefusedError(
      'saml_assertion_unsigned_response_signed',
      'the IdP signed only the Response; this connection expects a signed Assertion: set the ' +
        'connection\'s signed_element to "response", or have the IdP sign the assertion',
      { cause: error },
    );
  const name = error instanceof Error ? error.name : '';
  if (name === 'SamlStatusError' || /SAML provider returned/.test(message))
    return new LoginRefusedError('saml_idp_error', detail);
  if (/multiple assertions|Missing SAML assertion/i.test(message))
    return new LoginRefusedError('saml_assertion_count', detail);
  if (/InResponseTo/i.test(message)) return new LoginRefusedError('saml_in_response_to_invalid', detail);
  if (/signature|signed/i.test(message)) return new LoginRefusedError('saml_signature_invalid', detail);
  if (/audience/i.test(message)) return new LoginRefusedError('saml_audience_mismatch', detail);
  if (/not yet valid/i.test(message)) return new LoginRefusedError('saml_assertion_not_yet_valid', detail);
  // "No valid subject confirmation found": none whose time window holds now.
  if (/expired|too old|No valid subject confirmation/i.test(message))
    return new LoginRefusedError('saml_assertion_expired', detail);
  if (/subject confirmation/i.test(message))
    return new LoginRefusedError('saml_subject_confirmation_invalid', detail);
  return new LoginRefusedError('saml_response_invalid', detail, { cause: error });
}
