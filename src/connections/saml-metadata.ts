import { X509Certificate } from 'node:crypto';
import { DOMParser } from '@xmldom/xmldom';
import xpath from 'xpath';
import { BadRequestError } from '../errors.js';
import type { SamlCertificate } from './connection.entity.js';
import { DEFAULT_XML_LIMITS, prescanXml, XmlRefusedError, type XmlLimits } from './xml-limits.js';

export const SAML_METADATA_MAX_BYTES = 256 * 1024;

export const BINDING_REDIRECT = 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect';
export const BINDING_POST = 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST';
const SAML2_PROTOCOL = 'urn:oasis:names:tc:SAML:2.0:protocol';
const NS = {
  md: 'urn:oasis:names:tc:SAML:2.0:metadata',
  ds: 'http://www.w3.org/2000/09/xmldsig#',
};
const select = xpath.useNamespaces(NS);

/** What a SAML connection keeps from its IdP's metadata. */
export interface IdpMetadata {
  entityId: string;
  ssoUrl: string;
  ssoBinding: typeof BINDING_REDIRECT | typeof BINDING_POST;
  certificates: SamlCertificate[];
  /** The IdP's SingleLogoutService (issue 16), HTTP-Redirect preferred; null: it offers none. */
  sloUrl: string | null;
  sloBinding: typeof BINDING_REDIRECT | typeof BINDING_POST | null;
  /** Accepted, but the admin should know (expired certificate, …). */
  warnings: string[];
}

export class MetadataError extends BadRequestError {}

function fail(message: string): never {
  throw new MetadataError(`metadata: ${message}`);
}

/**
 * Parses IdP metadata (SAML 2.0 metadata §2.4.3). A DTD is refused before the
 * parser sees the document: XXE and entity expansion (billion laughs) need one,
 * and metadata never does. Only the IdP's IDPSSODescriptor is read (namespace-
 * aware XPath, so a look-alike element in another namespace is ignored); its
 * signing certificates are all kept, for rotation.
 */
export function parseIdpMetadata(
  xml: string,
  options: { now: Date; allowHttp: boolean; xmlLimits?: XmlLimits },
): IdpMetadata {
  if (Buffer.byteLength(xml, 'utf8') > SAML_METADATA_MAX_BYTES) {
    fail(`the document is larger than ${SAML_METADATA_MAX_BYTES / 1024} KiB`);
  }
  // Threat: XXE / billion laughs. Refused on the raw text, before any parsing.
  if (/<!DOCTYPE|<!ENTITY/i.test(xml)) fail('a DOCTYPE or ENTITY declaration is not allowed');
  // Bounded parsing: depth, element, attribute and text limits before any DOM (docs/security.md).
  try {
    prescanXml(xml, options.xmlLimits ?? DEFAULT_XML_LIMITS);
  } catch (error) {
    if (!(error instanceof XmlRefusedError)) throw error;
    if (error.code === 'malformed') fail(`not well-formed XML (${error.detail})`);
    fail(`the document is ${error.code.replace(/_/g, ' ')} (${error.detail})`);
  }

  const doc = parseXml(xml);
  const root = doc.documentElement;
  if (!root || root.namespaceURI !== NS.md) fail('not a SAML 2.0 metadata document');
  const entity = pickIdpEntity(root);
  const entityId = entity.getAttribute('entityID')?.trim() ?? '';
  if (!entityId) fail('the EntityDescriptor has no entityID');
  if (entityId.length > 1024) fail('the entityID is longer than 1024 characters');

  const idp = select('md:IDPSSODescriptor', entity) as Element[];
  if (idp.length !== 1) fail('expected exactly one IDPSSODescriptor');
  const descriptor = idp[0]!;
  const protocols = (descriptor.getAttribute('protocolSupportEnumeration') ?? '').split(/\s+/);
  if (!protocols.includes(SAML2_PROTOCOL)) fail('the IDPSSODescriptor does not support SAML 2.0');

  const warnings: string[] = [];
  const validUntil = entity.getAttribute('validUntil');
  if (validUntil && Date.parse(validUntil) < options.now.getTime()) {
    warnings.push(`the metadata's validUntil (${validUntil}) has passed`);
  }
  const { ssoUrl, ssoBinding } = pickSingleSignOnService(descriptor, options.allowHttp);
  const { sloUrl, sloBinding } = pickSingleLogoutService(descriptor, options.allowHttp, warnings);
  const certificates = signingCertificates(descriptor);
  for (const cert of certificates) warnings.push(...certificateWarnings(cert, options.now));
  return { entityId, ssoUrl, ssoBinding, sloUrl, sloBinding, certificates, warnings };
}

function parseXml(xml: string): Document {
  const problems: string[] = [];
  const record = (message: string) => {
    problems.push(message.replace(/^\[xmldom \w+\]\s*/, '').split('\n')[0] ?? message);
  };
  let doc: Document | undefined;
  try {
    doc = new DOMParser({
      errorHandler: { warning: record, error: record, fatalError: record },
    }).parseFromString(xml, 'text/xml');
  } catch (error) {
    record(error instanceof Error ? error.message : String(error));
  }
  if (problems.length > 0 || !doc?.documentElement) {
    fail(`not well-formed XML${problems[0] ? ` (${problems[0]})` : ''}`);
  }
  return doc;
}

/** An EntityDescriptor, or an EntitiesDescriptor holding exactly one IdP. */
function pickIdpEntity(root: Element): Element {
  if (root.localName === 'EntityDescriptor') return root;
  if (root.localName !== 'EntitiesDescriptor') fail(`unexpected root element ${root.localName}`);
  const idps = select('.//md:EntityDescriptor[md:IDPSSODescriptor]', root) as Element[];
  if (idps.length === 0) fail('no identity provider (IDPSSODescriptor) in the document');
  if (idps.length > 1) fail(`the document describes ${idps.length} identity providers; give one`);
  return idps[0]!;
}

/** HTTP-Redirect preferred (what node-saml sends), else HTTP-POST. */
function pickSingleSignOnService(
  descriptor: Element,
  allowHttp: boolean,
): Pick<IdpMetadata, 'ssoUrl' | 'ssoBinding'> {
  const services = select('md:SingleSignOnService', descriptor) as Element[];
  for (const binding of [BINDING_REDIRECT, BINDING_POST] as const) {
    const service = services.find((s) => s.getAttribute('Binding') === binding);
    if (!service) continue;
    const location = service.getAttribute('Location')?.trim() ?? '';
    const url = URL.parse(location) ?? fail(`the SingleSignOnService Location "${location}" is not a URL`);
    if (url.protocol !== 'https:' && !(allowHttp && url.protocol === 'http:')) {
      fail(`the SingleSignOnService Location must be https (got ${url.protocol})`);
    }
    return { ssoUrl: location, ssoBinding: binding };
  }
  return fail('no SingleSignOnService with the HTTP-Redirect or HTTP-POST binding');
}

/**
 * SAML metadata §2.4.2: SingleLogoutService, HTTP-Redirect preferred, else
 * HTTP-POST (the bindings src/sso/saml/single-logout.ts sends by). Optional:
 * an IdP without one simply gets no LogoutRequest from us. Its Location is
 * checked as the SSO URL is; a bad one is a warning (sign-in still works),
 * never a refused import.
 */
function pickSingleLogoutService(
  descriptor: Element,
  allowHttp: boolean,
  warnings: string[],
): Pick<IdpMetadata, 'sloUrl' | 'sloBinding'> {
  const services = select('md:SingleLogoutService', descriptor) as Element[];
  for (const binding of [BINDING_REDIRECT, BINDING_POST] as const) {
    const service = services.find((s) => s.getAttribute('Binding') === binding);
    if (!service) continue;
    try {
      const sloUrl = checkServiceUrl(service.getAttribute('Location'), 'SingleLogoutService', allowHttp);
      return { sloUrl, sloBinding: binding };
    } catch (error) {
      if (!(error instanceof MetadataError)) throw error;
      warnings.push(`${error.message}; single logout is off for this IdP`);
    }
  }
  return { sloUrl: null, sloBinding: null };
}

/** A service Location (metadata) or an admin-given IdP URL: absolute, https unless http is allowed, ≤ 2048. */
export function checkServiceUrl(value: string | null, what: string, allowHttp: boolean): string {
  const location = value?.trim() ?? '';
  const url = URL.parse(location) ?? fail(`the ${what} Location "${location.slice(0, 200)}" is not a URL`);
  if (url.protocol !== 'https:' && !(allowHttp && url.protocol === 'http:')) {
    fail(`the ${what} Location must be https (got ${url.protocol})`);
  }
  if (location.length > 2048) fail(`the ${what} Location is longer than 2048 characters`);
  return location;
}

/** Every KeyDescriptor for signing (use="signing" or no use), deduplicated. */
function signingCertificates(descriptor: Element): SamlCertificate[] {
  const descriptors = (select('md:KeyDescriptor', descriptor) as Element[]).filter((kd) => {
    const use = kd.getAttribute('use');
    return !use || use === 'signing';
  });
  const seen = new Map<string, SamlCertificate>();
  for (const kd of descriptors) {
    for (const node of select('ds:KeyInfo/ds:X509Data/ds:X509Certificate', kd) as Element[]) {
      const cert = parseCertificate(node.textContent ?? '', `KeyDescriptor #${seen.size + 1}`);
      if (!seen.has(cert.fingerprintSha256)) seen.set(cert.fingerprintSha256, cert);
    }
  }
  if (seen.size === 0) fail('no signing certificate (KeyDescriptor use="signing" with an X509Certificate)');
  return [...seen.values()];
}

/** A certificate as base64 DER (metadata) or PEM (admin API), parsed with node:crypto. */
export function parseCertificate(text: string, label: string): SamlCertificate {
  const base64 = text.replace(/-----(BEGIN|END) CERTIFICATE-----/g, '').replace(/\s+/g, '');
  if (!base64 || !/^[A-Za-z0-9+/]+={0,2}$/.test(base64)) {
    throw new MetadataError(`${label}: not a base64 X.509 certificate`);
  }
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(Buffer.from(base64, 'base64'));
  } catch (error) {
    throw new MetadataError(`${label}: not a valid X.509 certificate`, { cause: error });
  }
  return {
    pem: cert.toString(),
    fingerprintSha256: cert.fingerprint256,
    notBefore: new Date(cert.validFrom).toISOString(),
    notAfter: new Date(cert.validTo).toISOString(),
  };
}

export function isExpired(cert: SamlCertificate, now: Date): boolean {
  return Date.parse(cert.notAfter) <= now.getTime();
}

export function certificateWarnings(cert: SamlCertificate, now: Date): string[] {
  const short = cert.fingerprintSha256.slice(0, 23);
  if (isExpired(cert, now)) return [`certificate ${short}… expired on ${cert.notAfter}`];
  if (Date.parse(cert.notBefore) > now.getTime()) {
    return [`certificate ${short}… is not valid before ${cert.notBefore}`];
  }
  return [];
}
