import { inflateRawSync } from 'node:zlib';
import type { Profile } from '@node-saml/node-saml';
import { DOMParser } from '@xmldom/xmldom';
import { prescanXml, XmlRefusedError, type XmlLimits } from '../../connections/xml-limits.js';
import { LoginRefusedError, refuse, type ReasonCode } from '../reasons.js';
import type { AssertionFacts } from './saml-response-checks.js';
import type { SamlLogoutSubject } from './single-logout.service.js';

/**
 * What did the IdP send to /saml/{connectionId}/slo, and is it shaped like a
 * SAML 2.0 logout message? Pure functions, the clock an argument: they read
 * the binding (SAML bindings §3.4 HTTP-Redirect, §3.5 HTTP-POST), bound every
 * size before anything is inflated or parsed, refuse unsigned messages, and
 * state the facts of a LogoutRequest or LogoutResponse. The signature itself
 * is node-saml's to verify (single-logout.ts); these checks only ever add a
 * refusal.
 */

const NS_PROTOCOL = 'urn:oasis:names:tc:SAML:2.0:protocol';
const NS_ASSERTION = 'urn:oasis:names:tc:SAML:2.0:assertion';
const NS_DSIG = 'http://www.w3.org/2000/09/xmldsig#';
export const STATUS_SUCCESS = 'urn:oasis:names:tc:SAML:2.0:status:Success';

/** A logout message is small; these bound the encoded value and what it inflates to. */
export const MAX_SLO_MESSAGE_LENGTH = 128 * 1024;
const MAX_INFLATED_BYTES = 256 * 1024;
/** SAML bindings §3.4.3 / §3.5.3: RelayState MUST NOT exceed 80 bytes; some IdPs send more, within reason. */
const MAX_RELAY_STATE = 512;

/** Query signature algorithms (SAML bindings §3.4.4.1 SigAlg); SHA-1 only where the connection allows it. */
const SHA2_SIG_ALGS = new Set([
  'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256',
  'http://www.w3.org/2001/04/xmldsig-more#rsa-sha384',
  'http://www.w3.org/2001/04/xmldsig-more#rsa-sha512',
]);
const SHA1_SIG_ALG = 'http://www.w3.org/2000/09/xmldsig#rsa-sha1';
const SHA2_XML_SIG = new Set([...SHA2_SIG_ALGS]);
const SHA2_XML_DIGEST = new Set([
  'http://www.w3.org/2001/04/xmlenc#sha256',
  'http://www.w3.org/2001/04/xmldsig-more#sha384',
  'http://www.w3.org/2001/04/xmlenc#sha512',
]);
const SHA1_XML_DIGEST = 'http://www.w3.org/2000/09/xmldsig#sha1';

export type SloBinding = 'redirect' | 'post';
export type SloKind = 'request' | 'response';

/** One logout message as received. */
export interface SloMessage {
  binding: SloBinding;
  kind: SloKind;
  /** What node-saml is handed: the parameters, decoded (SAMLRequest or SAMLResponse, RelayState, SigAlg, Signature). */
  container: Record<string, string>;
  /** HTTP-Redirect: the parameters exactly as sent, in the order the signature covers them. */
  originalQuery: string | null;
  relayState: string | null;
  xml: string;
}

const PARAMS = ['SAMLRequest', 'SAMLResponse', 'RelayState', 'SigAlg', 'Signature'] as const;
type Param = (typeof PARAMS)[number];
const isParam = (name: string): name is Param => (PARAMS as readonly string[]).includes(name);

function invalid(detail: string): never {
  refuse('saml_logout_request_invalid', detail);
}

function decodeComponent(raw: string): string {
  try {
    return decodeURIComponent(raw.replace(/\+/g, ' '));
  } catch {
    return invalid('a parameter is not URL-encoded');
  }
}

function base64Bytes(value: string): Buffer {
  const compact = value.replace(/[\r\n ]/g, '');
  if (
    compact.length === 0 ||
    compact.length > MAX_SLO_MESSAGE_LENGTH ||
    !/^[A-Za-z0-9+/]+={0,2}$/.test(compact)
  )
    invalid('the SAML message is not base64 of a sane size');
  return Buffer.from(compact, 'base64');
}

function checkSigAlg(sigAlg: string, allowSha1: boolean): void {
  if (SHA2_SIG_ALGS.has(sigAlg)) return;
  if (sigAlg === SHA1_SIG_ALG && allowSha1) return;
  refuse('saml_logout_signature_invalid', `signature algorithm not accepted: ${sigAlg.slice(0, 100)}`);
}

/**
 * HTTP-Redirect (SAML bindings §3.4.4.1): the signature covers
 * `SAMLRequest=…&RelayState=…&SigAlg=…` as the sender encoded them, so the
 * raw query is read here, each parameter at most once; anything else in the
 * query is not part of the message. Unsigned: refused.
 */
export function readRedirectMessage(rawQuery: string, allowSha1: boolean): SloMessage {
  if (rawQuery.length > MAX_SLO_MESSAGE_LENGTH * 2) invalid('the query is too long');
  const raw = new Map<Param, string>();
  for (const token of rawQuery.split('&')) {
    const eq = token.indexOf('=');
    const name = eq < 0 ? token : token.slice(0, eq);
    if (!isParam(name)) continue;
    if (raw.has(name)) invalid(`${name} given more than once`);
    raw.set(name, eq < 0 ? '' : token.slice(eq + 1));
  }
  const kind: SloKind | null = raw.has('SAMLRequest')
    ? raw.has('SAMLResponse')
      ? null
      : 'request'
    : raw.has('SAMLResponse')
      ? 'response'
      : null;
  if (!kind) invalid('expected exactly one of SAMLRequest or SAMLResponse');
  const messageParam: Param = kind === 'request' ? 'SAMLRequest' : 'SAMLResponse';
  const container: Record<string, string> = {};
  for (const [name, value] of raw) container[name] = decodeComponent(value);
  if (!container.Signature || !container.SigAlg)
    refuse('saml_logout_signature_invalid', 'an unsigned logout message (no Signature or SigAlg)');
  checkSigAlg(container.SigAlg, allowSha1);
  const relayState = container.RelayState ?? null;
  if (relayState !== null && relayState.length > MAX_RELAY_STATE) invalid('RelayState is too long');
  let xml: string;
  try {
    xml = inflateRawSync(base64Bytes(container[messageParam] ?? ''), {
      maxOutputLength: MAX_INFLATED_BYTES,
    }).toString('utf8');
  } catch (error) {
    if (error instanceof LoginRefusedError) throw error;
    return invalid('the SAML message does not inflate (DEFLATE, bounded)');
  }
  const signed = (['SigAlg', 'Signature'] as const).map((p) => `${p}=${raw.get(p) ?? ''}`);
  const originalQuery = [`${messageParam}=${raw.get(messageParam) ?? ''}`]
    .concat(raw.has('RelayState') ? [`RelayState=${raw.get('RelayState') ?? ''}`] : [])
    .concat(signed)
    .join('&');
  return { binding: 'redirect', kind, container, originalQuery, relayState, xml };
}

/** HTTP-POST (SAML bindings §3.5.4): base64 of the XML, which carries its own enveloped signature. */
export function readPostMessage(body: unknown): SloMessage {
  const form = body !== null && typeof body === 'object' ? (body as Record<string, unknown>) : {};
  const field = (name: string): string | null => {
    const value = Object.hasOwn(form, name) ? form[name] : undefined;
    if (value === undefined) return null;
    if (typeof value !== 'string') return invalid(`${name} is not one string`);
    return value;
  };
  const request = field('SAMLRequest');
  const response = field('SAMLResponse');
  if ((request === null) === (response === null))
    invalid('expected exactly one of SAMLRequest or SAMLResponse');
  const relayState = field('RelayState');
  if (relayState !== null && relayState.length > MAX_RELAY_STATE) invalid('RelayState is too long');
  const kind: SloKind = request !== null ? 'request' : 'response';
  const value = request ?? response ?? '';
  const xml = base64Bytes(value).toString('utf8');
  const container: Record<string, string> =
    kind === 'request' ? { SAMLRequest: value } : { SAMLResponse: value };
  if (relayState !== null) container.RelayState = relayState;
  return { binding: 'post', kind, container, originalQuery: null, relayState, xml };
}

export interface LogoutMessageFacts {
  kind: SloKind;
  id: string;
  issueInstant: Date;
  destination: string | null;
  issuer: string | null;
  /** LogoutRequest (SAML core §3.7.1). */
  notOnOrAfter: Date | null;
  nameId: string | null;
  sessionIndexes: string[];
  /** LogoutResponse (SAML core §3.2.2). */
  inResponseTo: string | null;
  status: string | null;
}

function parseStrict(xml: string): Document {
  const problems: string[] = [];
  const record = (msg: string) => {
    problems.push(msg);
  };
  const doc = new DOMParser({
    errorHandler: { warning: () => undefined, error: record, fatalError: record },
  }).parseFromString(xml, 'text/xml');
  if (problems.length > 0 || !doc.documentElement) invalid(problems[0] ?? 'no document');
  return doc;
}

function children(parent: Element, ns: string, localName: string): Element[] {
  return Array.from(parent.childNodes).filter(
    (n): n is Element =>
      n.nodeType === 1 && (n as Element).namespaceURI === ns && (n as Element).localName === localName,
  );
}

/** Comments and processing instructions have no place in a logout message (they survive c14n games). */
function hasCommentOrPi(node: Node): boolean {
  for (const child of Array.from((node.childNodes as NodeListOf<ChildNode> | null) ?? [])) {
    if (child.nodeType === 7 || child.nodeType === 8) return true;
    if (hasCommentOrPi(child)) return true;
  }
  return false;
}

function instant(value: string | null, what: string): Date | null {
  if (value === null) return null;
  const ms = Date.parse(value);
  if (!/^\d{4}-\d\d-\d\dT/.test(value) || Number.isNaN(ms)) invalid(`${what} is not a time`);
  return new Date(ms);
}

function onlyText(element: Element | undefined): string | null {
  const value = element?.textContent?.trim();
  return value ? value : null;
}

/** POST: the root must carry an enveloped signature of accepted algorithms (node-saml verifies it). */
function checkXmlSignature(root: Element, allowSha1: boolean): void {
  const signatures = children(root, NS_DSIG, 'Signature');
  if (signatures.length !== 1)
    refuse('saml_logout_signature_invalid', 'no (or more than one) signature on the message');
  for (const method of Array.from(root.getElementsByTagNameNS(NS_DSIG, 'SignatureMethod'))) {
    const alg = method.getAttribute('Algorithm') ?? '';
    if (!(SHA2_XML_SIG.has(alg) || (allowSha1 && alg === SHA1_SIG_ALG)))
      refuse('saml_logout_signature_invalid', `signature method not accepted: ${alg.slice(0, 100)}`);
  }
  for (const method of Array.from(root.getElementsByTagNameNS(NS_DSIG, 'DigestMethod'))) {
    const alg = method.getAttribute('Algorithm') ?? '';
    if (!(SHA2_XML_DIGEST.has(alg) || (allowSha1 && alg === SHA1_XML_DIGEST)))
      refuse('saml_logout_signature_invalid', `digest method not accepted: ${alg.slice(0, 100)}`);
  }
}

/**
 * The XML of a logout message: bounded (no DTD, xml-limits before any DOM),
 * the root a LogoutRequest or LogoutResponse as the parameter said, no
 * comments, and its facts.
 */
export function inspectLogoutMessage(
  message: SloMessage,
  options: { xmlLimits: XmlLimits; allowSha1: boolean },
): LogoutMessageFacts {
  const { xml } = message;
  if (/<!DOCTYPE|<!ENTITY/i.test(xml)) invalid('a DOCTYPE or ENTITY declaration');
  try {
    prescanXml(xml, options.xmlLimits);
  } catch (error) {
    if (error instanceof XmlRefusedError) invalid(`XML refused: ${error.code}`);
    throw error;
  }
  const root = parseStrict(xml).documentElement;
  const expected = message.kind === 'request' ? 'LogoutRequest' : 'LogoutResponse';
  if (!root || root.namespaceURI !== NS_PROTOCOL || root.localName !== expected)
    invalid(`the message is not a ${expected}`);
  if (hasCommentOrPi(root)) invalid('comments or processing instructions in the message');
  if (message.binding === 'post') checkXmlSignature(root, options.allowSha1);
  const id = root.getAttribute('ID') ?? '';
  if (!/^[A-Za-z_][\w.-]{0,127}$/.test(id)) invalid('the message ID is missing or not an NCName');
  const issueInstant = instant(root.getAttribute('IssueInstant'), 'IssueInstant');
  if (!issueInstant) invalid('no IssueInstant');
  const issuers = children(root, NS_ASSERTION, 'Issuer');
  if (issuers.length > 1) invalid('more than one Issuer');
  const facts: LogoutMessageFacts = {
    kind: message.kind,
    id,
    issueInstant,
    destination: root.getAttribute('Destination') || null,
    issuer: onlyText(issuers[0]),
    notOnOrAfter: instant(root.getAttribute('NotOnOrAfter') || null, 'NotOnOrAfter'),
    nameId: null,
    sessionIndexes: [],
    inResponseTo: root.getAttribute('InResponseTo') || null,
    status: null,
  };
  if (message.kind === 'request') {
    const nameIds = children(root, NS_ASSERTION, 'NameID');
    // SAML core §3.7.1: BaseID, NameID or EncryptedID; we only ever receive (and accept) NameID.
    if (nameIds.length !== 1) invalid('expected exactly one NameID');
    facts.nameId = onlyText(nameIds[0]);
    if (!facts.nameId) invalid('an empty NameID');
    facts.sessionIndexes = children(root, NS_PROTOCOL, 'SessionIndex').map((e) => onlyText(e) ?? '');
  } else {
    const status = children(root, NS_PROTOCOL, 'Status')[0];
    const code = status ? children(status, NS_PROTOCOL, 'StatusCode')[0] : undefined;
    facts.status = code?.getAttribute('Value') ?? null;
    if (!facts.status) invalid('a LogoutResponse without a StatusCode');
  }
  return facts;
}

export interface LogoutCheckInput {
  facts: LogoutMessageFacts;
  idpEntityId: string | null;
  sloUrl: string;
  now: Date;
  clockSkewMs: number;
  /** How old (from IssueInstant) a message may be. */
  maxAgeMs: number;
}

/**
 * After node-saml verified the signature: the checks it does not make, on
 * the same (signed) bytes. Issuer = the connection's IdP; Destination = our
 * SLO URL (SAML bindings §3.4.5.2 / §3.5.5.2: required on signed messages);
 * IssueInstant not in the future and not older than maxAgeMs; NotOnOrAfter
 * not passed. Returns until when the message could be accepted (the replay
 * cache keeps its ID that long).
 */
export function checkLogoutMessage(input: LogoutCheckInput): { acceptableUntil: Date } {
  const { facts, now, clockSkewMs } = input;
  if (!input.idpEntityId || facts.issuer !== input.idpEntityId)
    refuse('saml_logout_issuer_mismatch', `issuer ${facts.issuer?.slice(0, 200) ?? '(none)'}`);
  if (facts.destination !== input.sloUrl)
    refuse('saml_logout_destination_mismatch', `destination ${facts.destination?.slice(0, 200) ?? '(none)'}`);
  const issued = facts.issueInstant.getTime();
  if (issued > now.getTime() + clockSkewMs) refuse('saml_logout_expired', 'IssueInstant in the future');
  let until = issued + input.maxAgeMs;
  if (facts.notOnOrAfter) until = Math.min(until, facts.notOnOrAfter.getTime());
  if (now.getTime() >= until + clockSkewMs)
    refuse('saml_logout_expired', 'the message is too old or past NotOnOrAfter');
  return { acceptableUntil: new Date(until + clockSkewMs) };
}

/** node-saml's refusals, as reason codes (its messages are for the log, never the page). */
export function reasonOfLogoutError(error: unknown, kind: SloKind): LoginRefusedError {
  if (error instanceof LoginRefusedError) return error;
  const message = error instanceof Error ? error.message : String(error);
  let reason: ReasonCode = 'saml_logout_request_invalid';
  if (/signature|not supported/i.test(message)) reason = 'saml_logout_signature_invalid';
  else if (/issuer/i.test(message)) reason = 'saml_logout_issuer_mismatch';
  else if (/NotBefore|NotOnOrAfter|expired/i.test(message)) reason = 'saml_logout_expired';
  else if (/Bad status code/i.test(message)) reason = 'saml_logout_response_failed';
  else if (/InResponseTo/i.test(message)) reason = 'saml_logout_in_response_to_invalid';
  else if (kind === 'response') reason = 'saml_logout_request_invalid';
  return new LoginRefusedError(reason, message.slice(0, 300), { cause: error });
}

/** The subject a login's session is found by at logout: the signed assertion's NameID, as node-saml read it. */
export function logoutSubjectOf(facts: AssertionFacts, profile: Profile): SamlLogoutSubject {
  const optional = (value: unknown): string | null => (typeof value === 'string' && value ? value : null);
  return {
    nameId: facts.nameId,
    nameIdFormat: facts.nameIdFormat,
    nameQualifier: optional(profile.nameQualifier),
    spNameQualifier: optional(profile.spNameQualifier),
    sessionIndex: optional(profile.sessionIndex),
  };
}
