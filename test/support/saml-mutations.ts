import { randomBytes } from 'node:crypto';
import { DOMParser, XMLSerializer } from '@xmldom/xmldom';
import { SignedXml } from 'xml-crypto';
import { samlUserOf, type Person, type PersonaKey, type ShapeKey } from './saml-shapes.js';

/**
 * The SAML mutation engine of test/sso/saml-mutation.fuzz.test.ts: it edits a
 * genuine signed Response (samlify's) with @xmldom/xmldom and re-signs with
 * xml-crypto, and keeps the books the oracle needs — a ledger of every
 * assertion signed during a case with the facts its signature covers. A
 * mutation never adds to the ledger content it cannot vouch for: an
 * assertion edited after signing is "tampered" and only ever re-signed with a
 * key the connection does not trust.
 */
const NS_ASSERTION = 'urn:oasis:names:tc:SAML:2.0:assertion';
const NS_PROTOCOL = 'urn:oasis:names:tc:SAML:2.0:protocol';
const NS_DSIG = 'http://www.w3.org/2000/09/xmldsig#';
const NS_FUZZ = 'urn:gatehouse:fuzz';
const SAML1_ASSERTION = 'urn:oasis:names:tc:SAML:1.0:assertion';
const RSA_SHA256 = 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256';
const EXC_C14N = 'http://www.w3.org/2001/10/xml-exc-c14n#';
const ENVELOPED = 'http://www.w3.org/2000/09/xmldsig#enveloped-signature';
const SHA256 = 'http://www.w3.org/2001/04/xmlenc#sha256';

export type KeyName = 'home-idp' | 'other-idp' | 'attacker';

export interface SigningKey {
  name: KeyName;
  privateKeyPem: string;
  certificatePem: string;
}

export interface SpRef {
  entityId: string;
  acsUrl: string;
}

/** What a signature covers about one assertion: every fact the login may use. */
export interface AssertionFacts {
  persona: PersonaKey;
  /** The signed SubjectConfirmationData/@InResponseTo (null: IdP-initiated). */
  inResponseTo: string | null;
  audience: string | null;
  recipient: string | null;
  issuer: string | null;
  /** Seconds every instant is shifted from "now" (0: a live assertion). */
  timeShiftSeconds: number;
  signer: KeyName;
}

export interface LedgerEntry {
  id: string;
  facts: AssertionFacts;
}

export interface MutationContext {
  shape: ShapeKey;
  people: Record<PersonaKey, Person>;
  keys: Record<KeyName, SigningKey>;
  /** The home connection's SP, and another connection's (same IdP) for cross-connection edits. */
  home: SpRef;
  other: SpRef;
  requests: { attacker: string; victim: string | null };
  /** Genuine signed assertions (serialized elements) of other people, to smuggle along. */
  donors: string[];
  /** Every assertion signed in this case, with its facts. */
  ledger: LedgerEntry[];
}

export interface Workbench {
  xml: string;
  /** Assertion IDs whose content still equals their ledger facts. */
  pristine: Set<string>;
}

export type IrtValue = 'attacker-request' | 'victim-request' | 'random' | 'empty';
export type DeleteTarget =
  | 'assertion-signature'
  | 'response-signature'
  | 'scd-in-response-to'
  | 'envelope-in-response-to'
  | 'conditions'
  | 'audience-restriction'
  | 'destination'
  | 'recipient'
  | 'assertion-issuer'
  | 'response-issuer'
  | 'status'
  | 'authn-statement'
  | 'attribute-statement'
  | 'subject-confirmation'
  | 'assertion-id';
export type EditTarget =
  | { field: 'name-id' | 'email-attribute'; persona: PersonaKey }
  | { field: 'envelope-in-response-to' | 'scd-in-response-to'; value: IrtValue }
  | {
      field:
        | 'recipient'
        | 'audience'
        | 'assertion-issuer'
        | 'response-issuer'
        | 'destination'
        | 'not-on-or-after'
        | 'assertion-id';
    };
export type ResignChange =
  | { kind: 'fresh-id' }
  | { kind: 'persona'; persona: PersonaKey }
  | { kind: 'in-response-to'; value: IrtValue | 'none' }
  | { kind: 'audience-other' }
  | { kind: 'recipient-other' }
  | { kind: 'issuer-evil' }
  | { kind: 'time'; shiftSeconds: number };

export type Mutation =
  | {
      kind: 'wrap';
      where: 'extensions' | 'advice' | 'object' | 'response' | 'assertion';
      evil: PersonaKey;
      pick: number;
    }
  | { kind: 'duplicate'; what: 'self' | 'donor'; position: 'before' | 'after' | 'extensions'; pick: number }
  | { kind: 'delete'; target: DeleteTarget; pick: number }
  | { kind: 'edit'; edit: EditTarget; pick: number }
  | {
      kind: 'inject';
      node: 'comment' | 'pi';
      where: 'NameID' | 'AttributeValue' | 'Issuer' | 'Audience';
      at: number;
      pick: number;
    }
  | {
      kind: 'namespace';
      how: 'prefix-assertion' | 'prefix-response' | 'extra-declaration' | 'saml1-assertion';
    }
  | { kind: 'resign'; change: ResignChange; key: KeyName; pick: number }
  | { kind: 'resign-response'; key: KeyName }
  | { kind: 'nest'; depth: number; where: 'extensions' | 'around-assertion'; pick: number };

const EVIL_ISSUER = 'https://evil.idp.test/metadata';

export const toBase64 = (xml: string) => Buffer.from(xml, 'utf8').toString('base64');
const freshId = (prefix = '_') => `${prefix}${randomBytes(12).toString('hex')}`;

function parse(xml: string): Document {
  return new DOMParser({
    errorHandler: { warning: () => undefined, error: () => undefined },
  }).parseFromString(xml, 'text/xml');
}

function serialize(doc: Document | Node): string {
  return new XMLSerializer().serializeToString(doc);
}

function elementChildren(parent: Node): Element[] {
  return Array.from(parent.childNodes ?? []).filter((n): n is Element => n.nodeType === 1);
}

function child(parent: Element, ns: string, localName: string): Element | undefined {
  return elementChildren(parent).find((e) => e.namespaceURI === ns && e.localName === localName);
}

function all(root: Document | Element, ns: string, localName: string): Element[] {
  return Array.from(root.getElementsByTagNameNS(ns, localName));
}

function assertionsOf(doc: Document): Element[] {
  return all(doc, NS_ASSERTION, 'Assertion');
}

function picked<T>(list: T[], pick: number): T | undefined {
  return list.length === 0 ? undefined : list[pick % list.length];
}

function remove(node: Node | undefined | null): void {
  node?.parentNode?.removeChild(node);
}

function setText(el: Element, value: string): void {
  while (el.firstChild) el.removeChild(el.firstChild);
  el.appendChild(el.ownerDocument.createTextNode(value));
}

function irtValue(ctx: MutationContext, value: IrtValue): string {
  switch (value) {
    case 'attacker-request':
      return ctx.requests.attacker;
    case 'victim-request':
      return ctx.requests.victim ?? freshId('_never');
    case 'random':
      return freshId('_never');
    case 'empty':
      return '';
  }
}

function subjectConfirmationData(assertion: Element): Element[] {
  return all(assertion, NS_ASSERTION, 'SubjectConfirmationData');
}

/** Replaces NameID and AttributeStatement with `persona`'s, as the case's IdP shape releases them. */
function becomePersona(ctx: MutationContext, assertion: Element, persona: PersonaKey): void {
  const doc = assertion.ownerDocument;
  const user = samlUserOf(ctx.people[persona], ctx.shape);
  for (const nameId of all(assertion, NS_ASSERTION, 'NameID')) setText(nameId, user.nameId);
  for (const statement of all(assertion, NS_ASSERTION, 'AttributeStatement')) {
    while (statement.firstChild) statement.removeChild(statement.firstChild);
    for (const [name, value] of Object.entries(user.attributes ?? {})) {
      const attribute = doc.createElementNS(NS_ASSERTION, 'saml:Attribute');
      attribute.setAttribute('Name', name);
      attribute.setAttribute('NameFormat', 'urn:oasis:names:tc:SAML:2.0:attrname-format:unspecified');
      for (const v of Array.isArray(value) ? value : [value]) {
        const av = doc.createElementNS(NS_ASSERTION, 'saml:AttributeValue');
        av.appendChild(doc.createTextNode(v));
        attribute.appendChild(av);
      }
      statement.appendChild(attribute);
    }
  }
}

/** An unsigned copy of `assertion` naming `persona`, with a new ID: the attacker's forgery. */
function evilCopy(ctx: MutationContext, assertion: Element, persona: PersonaKey): Element {
  const evil = assertion.cloneNode(true) as Element;
  evil.setAttribute('ID', freshId('_evil'));
  remove(child(evil, NS_DSIG, 'Signature'));
  becomePersona(ctx, evil, persona);
  return evil;
}

function insertAfterIssuer(parent: Element, node: Node): void {
  const issuer = child(parent, NS_ASSERTION, 'Issuer');
  parent.insertBefore(node, issuer ? issuer.nextSibling : parent.firstChild);
}

function extensionsOf(response: Element): Element {
  const existing = child(response, NS_PROTOCOL, 'Extensions');
  if (existing) return existing;
  const extensions = response.ownerDocument.createElementNS(NS_PROTOCOL, 'samlp:Extensions');
  insertAfterIssuer(response, extensions);
  return extensions;
}

function shiftInstant(value: string | null, seconds: number): string | null {
  if (!value) return value;
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? value : new Date(ms + seconds * 1000).toISOString();
}

function shiftTimes(assertion: Element, seconds: number): void {
  const nodes = [assertion, ...Array.from(assertion.getElementsByTagName('*'))];
  for (const el of nodes) {
    for (const name of ['IssueInstant', 'NotBefore', 'NotOnOrAfter', 'AuthnInstant']) {
      const value = el.getAttribute(name);
      if (value) el.setAttribute(name, shiftInstant(value, seconds) ?? value);
    }
  }
}

/** Processing instructions removed: xml-crypto cannot canonicalize them (the text they split is kept). */
function withoutProcessingInstructions(xml: string): string {
  const doc = parse(xml);
  const pis: Node[] = [];
  const walk = (node: Node) => {
    for (const n of Array.from(node.childNodes ?? [])) {
      if (n.nodeType === 7) pis.push(n);
      else walk(n);
    }
  };
  walk(doc);
  if (pis.length === 0) return xml;
  for (const pi of pis) remove(pi);
  return serialize(doc);
}

/** Signs the element with ID `id` in `xml` (enveloped, exclusive c14n, RSA-SHA256), Signature after its Issuer. */
export function signElement(xml: string, id: string, key: SigningKey): string {
  const sig = new SignedXml({
    privateKey: key.privateKeyPem,
    publicCert: key.certificatePem,
    signatureAlgorithm: RSA_SHA256,
    canonicalizationAlgorithm: EXC_C14N,
  });
  const target = `//*[@ID='${id}']`;
  sig.addReference({ xpath: target, transforms: [ENVELOPED, EXC_C14N], digestAlgorithm: SHA256 });
  xml = withoutProcessingInstructions(xml);
  const doc = parse(xml);
  const element = Array.from(doc.getElementsByTagName('*')).find((e) => e.getAttribute('ID') === id);
  const hasIssuer = element ? child(element, NS_ASSERTION, 'Issuer') !== undefined : false;
  sig.computeSignature(xml, {
    prefix: 'ds',
    location: hasIssuer
      ? { reference: `${target}/*[local-name(.)='Issuer']`, action: 'after' }
      : { reference: target, action: 'prepend' },
  });
  return sig.getSignedXml();
}

/** ADFS-like: the assertion's own signature removed, the Response signed instead. */
export function signResponseOnly(xml: string, key: SigningKey): string {
  const doc = parse(xml);
  for (const assertion of assertionsOf(doc)) remove(child(assertion, NS_DSIG, 'Signature'));
  const response = doc.documentElement;
  if (!response) throw new Error('no Response');
  remove(child(response, NS_DSIG, 'Signature'));
  return signElement(serialize(doc), response.getAttribute('ID') ?? '', key);
}

/** The direct assertion ID of the only Assertion in `xml`. */
export function assertionIdOf(xml: string): string {
  const [assertion] = assertionsOf(parse(xml));
  const id = assertion?.getAttribute('ID');
  if (!id) throw new Error('no assertion ID');
  return id;
}

/** The serialized (signed) Assertion element of a genuine response, to smuggle into another. */
export function assertionElementOf(xml: string): string {
  const [assertion] = assertionsOf(parse(xml));
  if (!assertion) throw new Error('no assertion');
  return serialize(assertion);
}

function tamper(bench: Workbench, assertion: Element | undefined): void {
  const id = assertion?.getAttribute('ID');
  if (id) bench.pristine.delete(id);
}

/** Applies one mutation; returns the new workbench (the ledger in ctx may grow). */
export function applyMutation(ctx: MutationContext, bench: Workbench, m: Mutation): Workbench {
  // String-level edits first: prefixes and deep nesting are easiest as text.
  if (m.kind === 'namespace' && m.how !== 'saml1-assertion') {
    let xml = bench.xml;
    if (m.how === 'prefix-assertion')
      xml = xml.replace(/<(\/?)saml:/g, '<$1a:').replace(/xmlns:saml=/g, 'xmlns:a=');
    else if (m.how === 'prefix-response')
      xml = xml.replace(/<(\/?)samlp:/g, '<$1p:').replace(/xmlns:samlp=/g, 'xmlns:p=');
    else xml = xml.replace(/^(\s*<[^\s>]+)/, '$1 xmlns:evil="urn:evil"');
    return { xml, pristine: bench.pristine };
  }

  const doc = parse(bench.xml);
  const response = doc.documentElement;
  if (!response) return bench;
  const assertions = assertionsOf(doc);
  const pick = 'pick' in m ? m.pick : 0;
  const target = picked(assertions, pick);
  const done = () => ({ xml: serialize(doc), pristine: bench.pristine });

  switch (m.kind) {
    case 'namespace': {
      // saml1-assertion: the assertion re-created in the SAML 1.0 namespace.
      if (!target) return bench;
      const moved = doc.createElementNS(SAML1_ASSERTION, 'saml1:Assertion');
      for (const attr of Array.from(target.attributes)) {
        if (!attr.name.startsWith('xmlns')) moved.setAttribute(attr.name, attr.value);
      }
      while (target.firstChild) moved.appendChild(target.firstChild);
      target.parentNode?.replaceChild(moved, target);
      tamper(bench, target);
      return done();
    }
    case 'wrap': {
      if (!target) return bench;
      const evil = evilCopy(ctx, target, m.evil);
      const parent = target.parentNode as Element;
      if (m.where === 'response') {
        // XSW1/2-like: a new Response around the evil assertion, the original Response inside.
        const outer = doc.createElementNS(NS_PROTOCOL, 'samlp:Response');
        for (const attr of Array.from(response.attributes)) {
          if (!attr.name.startsWith('xmlns')) outer.setAttribute(attr.name, attr.value);
        }
        outer.setAttribute('ID', freshId('_evilresponse'));
        const issuer = child(response, NS_ASSERTION, 'Issuer');
        const status = child(response, NS_PROTOCOL, 'Status');
        if (issuer) outer.appendChild(issuer.cloneNode(true));
        if (status) outer.appendChild(status.cloneNode(true));
        outer.appendChild(evil);
        doc.replaceChild(outer, response);
        extensionsOf(outer).appendChild(response);
        return done();
      }
      parent.replaceChild(evil, target);
      if (m.where === 'extensions') extensionsOf(response).appendChild(target);
      else if (m.where === 'assertion') evil.appendChild(target);
      else if (m.where === 'advice') {
        const advice = doc.createElementNS(NS_ASSERTION, 'saml:Advice');
        advice.appendChild(target);
        insertAfterIssuer(evil, advice);
      } else {
        const signature =
          (child(target, NS_DSIG, 'Signature')?.cloneNode(true) as Element | undefined) ??
          doc.createElementNS(NS_DSIG, 'ds:Signature');
        const object = doc.createElementNS(NS_DSIG, 'ds:Object');
        object.appendChild(target);
        signature.appendChild(object);
        insertAfterIssuer(evil, signature);
      }
      return done();
    }
    case 'duplicate': {
      let copy: Node | undefined;
      if (m.what === 'self') copy = target?.cloneNode(true);
      else {
        const donor = picked(ctx.donors, pick);
        const donorDoc = donor ? parse(donor) : undefined;
        copy = donorDoc?.documentElement ? doc.importNode(donorDoc.documentElement, true) : undefined;
      }
      if (!copy) return bench;
      if (m.position === 'extensions' || !target) extensionsOf(response).appendChild(copy);
      else if (m.position === 'before') target.parentNode?.insertBefore(copy, target);
      else target.parentNode?.insertBefore(copy, target.nextSibling);
      return done();
    }
    case 'delete': {
      switch (m.target) {
        case 'assertion-signature':
          remove(target ? child(target, NS_DSIG, 'Signature') : undefined);
          return done();
        case 'response-signature':
          remove(child(response, NS_DSIG, 'Signature'));
          return done();
        case 'envelope-in-response-to':
          response.removeAttribute('InResponseTo');
          return done();
        case 'destination':
          response.removeAttribute('Destination');
          return done();
        case 'response-issuer':
          remove(child(response, NS_ASSERTION, 'Issuer'));
          return done();
        case 'status':
          remove(child(response, NS_PROTOCOL, 'Status'));
          return done();
        default:
          break;
      }
      if (!target) return bench;
      tamper(bench, target);
      switch (m.target) {
        case 'scd-in-response-to':
          for (const d of subjectConfirmationData(target)) d.removeAttribute('InResponseTo');
          break;
        case 'recipient':
          for (const d of subjectConfirmationData(target)) d.removeAttribute('Recipient');
          break;
        case 'conditions':
          remove(child(target, NS_ASSERTION, 'Conditions'));
          break;
        case 'audience-restriction':
          for (const a of all(target, NS_ASSERTION, 'AudienceRestriction')) remove(a);
          break;
        case 'assertion-issuer':
          remove(child(target, NS_ASSERTION, 'Issuer'));
          break;
        case 'authn-statement':
          remove(child(target, NS_ASSERTION, 'AuthnStatement'));
          break;
        case 'attribute-statement':
          remove(child(target, NS_ASSERTION, 'AttributeStatement'));
          break;
        case 'subject-confirmation':
          for (const s of all(target, NS_ASSERTION, 'SubjectConfirmation')) remove(s);
          break;
        case 'assertion-id':
          target.removeAttribute('ID');
          break;
      }
      return done();
    }
    case 'edit': {
      const e = m.edit;
      switch (e.field) {
        case 'envelope-in-response-to':
          response.setAttribute('InResponseTo', irtValue(ctx, e.value));
          return done();
        case 'response-issuer': {
          const issuer = child(response, NS_ASSERTION, 'Issuer');
          if (issuer) setText(issuer, EVIL_ISSUER);
          return done();
        }
        case 'destination':
          response.setAttribute('Destination', ctx.other.acsUrl);
          return done();
        default:
          break;
      }
      if (!target) return bench;
      tamper(bench, target);
      switch (e.field) {
        case 'name-id': {
          const user = samlUserOf(ctx.people[e.persona], ctx.shape);
          for (const n of all(target, NS_ASSERTION, 'NameID')) setText(n, user.nameId);
          break;
        }
        case 'email-attribute':
          for (const a of all(target, NS_ASSERTION, 'Attribute')) {
            if (!/email/i.test(a.getAttribute('Name') ?? '')) continue;
            for (const v of all(a, NS_ASSERTION, 'AttributeValue')) setText(v, ctx.people[e.persona].email);
          }
          break;
        case 'scd-in-response-to':
          for (const d of subjectConfirmationData(target))
            d.setAttribute('InResponseTo', irtValue(ctx, e.value));
          break;
        case 'recipient':
          for (const d of subjectConfirmationData(target)) d.setAttribute('Recipient', ctx.other.acsUrl);
          break;
        case 'audience':
          for (const a of all(target, NS_ASSERTION, 'Audience')) setText(a, ctx.other.entityId);
          break;
        case 'assertion-issuer': {
          const issuer = child(target, NS_ASSERTION, 'Issuer');
          if (issuer) setText(issuer, EVIL_ISSUER);
          break;
        }
        case 'not-on-or-after':
          for (const el of [...all(target, NS_ASSERTION, 'Conditions'), ...subjectConfirmationData(target)])
            el.setAttribute('NotOnOrAfter', new Date(Date.now() + 86_400_000).toISOString());
          break;
        case 'assertion-id':
          target.setAttribute('ID', freshId());
          break;
      }
      return done();
    }
    case 'inject': {
      // A comment or PI splitting a text node: exclusive c14n drops comments, so
      // a signature over the element still verifies (CVE-2017-11428 class).
      const candidates = all(doc, NS_ASSERTION, m.where).filter((e) => (e.textContent ?? '').length > 1);
      const el = picked(candidates, pick);
      if (!el) return bench;
      const value = el.textContent ?? '';
      const cut = 1 + (m.at % (value.length - 1));
      while (el.firstChild) el.removeChild(el.firstChild);
      el.appendChild(doc.createTextNode(value.slice(0, cut)));
      el.appendChild(m.node === 'comment' ? doc.createComment('') : doc.createProcessingInstruction('x', ''));
      el.appendChild(doc.createTextNode(value.slice(cut)));
      return done();
    }
    case 'resign': {
      if (!target) return bench;
      const oldId = target.getAttribute('ID') ?? '';
      const known = bench.pristine.has(oldId) ? ctx.ledger.find((l) => l.id === oldId) : undefined;
      // Content the fuzzer cannot vouch for is never signed with a trusted key.
      const key: KeyName = known ? m.key : 'attacker';
      const fresh = target.cloneNode(true) as Element;
      const id = freshId();
      fresh.setAttribute('ID', id);
      remove(child(fresh, NS_DSIG, 'Signature'));
      const facts = known ? { ...known.facts, signer: key } : undefined;
      const c = m.change;
      if (c.kind === 'persona') {
        becomePersona(ctx, fresh, c.persona);
        if (facts) facts.persona = c.persona;
      } else if (c.kind === 'in-response-to') {
        const value = c.value === 'none' ? null : irtValue(ctx, c.value);
        for (const d of subjectConfirmationData(fresh)) {
          if (value === null) d.removeAttribute('InResponseTo');
          else d.setAttribute('InResponseTo', value);
        }
        if (facts) facts.inResponseTo = value || null;
      } else if (c.kind === 'audience-other') {
        for (const a of all(fresh, NS_ASSERTION, 'Audience')) setText(a, ctx.other.entityId);
        if (facts) facts.audience = ctx.other.entityId;
      } else if (c.kind === 'recipient-other') {
        for (const d of subjectConfirmationData(fresh)) d.setAttribute('Recipient', ctx.other.acsUrl);
        if (facts) facts.recipient = ctx.other.acsUrl;
      } else if (c.kind === 'issuer-evil') {
        const issuer = child(fresh, NS_ASSERTION, 'Issuer');
        if (issuer) setText(issuer, EVIL_ISSUER);
        if (facts) facts.issuer = EVIL_ISSUER;
      } else if (c.kind === 'time') {
        shiftTimes(fresh, c.shiftSeconds);
        if (facts) facts.timeShiftSeconds += c.shiftSeconds;
      }
      target.parentNode?.replaceChild(fresh, target);
      const xml = signElement(serialize(doc), id, ctx.keys[key]);
      if (facts) {
        ctx.ledger.push({ id, facts });
        bench.pristine.add(id);
      }
      return { xml, pristine: bench.pristine };
    }
    case 'resign-response': {
      // The IdP's key covers only a Response whose one assertion the ledger vouches for.
      const only = assertions.length === 1 ? assertions[0] : undefined;
      const vouched = only !== undefined && bench.pristine.has(only.getAttribute('ID') ?? '');
      const key: KeyName = vouched ? m.key : 'attacker';
      remove(child(response, NS_DSIG, 'Signature'));
      let id = response.getAttribute('ID');
      if (!id) {
        id = freshId();
        response.setAttribute('ID', id);
      }
      return { xml: signElement(serialize(doc), id, ctx.keys[key]), pristine: bench.pristine };
    }
    case 'nest': {
      // Deep nesting as text (the DOM serializer recurses); the placeholder marks the spot.
      const marker = doc.createElementNS(NS_FUZZ, 'fuzz:marker');
      if (m.where === 'extensions' || !target) extensionsOf(response).appendChild(marker);
      else target.parentNode?.replaceChild(marker, target);
      const inner = m.where === 'around-assertion' && target ? serialize(target) : '';
      const open = '<fuzz:n xmlns:fuzz="urn:gatehouse:fuzz">'.repeat(m.depth);
      const close = '</fuzz:n>'.repeat(m.depth);
      const xml = serialize(doc).replace(/<fuzz:marker[^>]*\/>/, `${open}${inner}${close}`);
      return { xml, pristine: bench.pristine };
    }
  }
}

/** A short human description of a mutation list, for failure reports. */
export function describeMutations(mutations: Mutation[]): string {
  return mutations.map((m) => JSON.stringify(m)).join('\n    ');
}

export { NS_ASSERTION, NS_PROTOCOL, NS_DSIG };
