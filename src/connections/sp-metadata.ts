import type { ServiceProviderDetails } from './sp.js';
import { BINDING_POST, BINDING_REDIRECT } from './saml-metadata.js';

const NAMEID_EMAIL = 'urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress';
const NAMEID_UNSPECIFIED = 'urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified';

function escapeXml(value: string): string {
  return value
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;');
}

/** The base64 body of a PEM certificate, as ds:X509Certificate carries it. */
function certificateBody(pem: string): string {
  return pem.replace(/-----(BEGIN|END) CERTIFICATE-----/g, '').replace(/\s+/g, '');
}

/** XML Encryption 1.1 algorithms the ACS decrypts (sso/saml/saml-response-checks.ts), strongest first. */
const ENCRYPTION_METHODS = [
  'http://www.w3.org/2009/xmlenc11#aes256-gcm',
  'http://www.w3.org/2009/xmlenc11#aes128-gcm',
  'http://www.w3.org/2001/04/xmlenc#aes256-cbc',
  'http://www.w3.org/2001/04/xmlenc#aes128-cbc',
  'http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p',
];

function keyDescriptor(use: 'signing' | 'encryption', pem: string): string {
  // SAML metadata §2.4.1.1: EncryptionMethod lists what the SP accepts; an IdP that reads it picks among them.
  const methods =
    use === 'encryption'
      ? ENCRYPTION_METHODS.map((alg) => `\n      <md:EncryptionMethod Algorithm="${alg}"/>`).join('')
      : '';
  return `
    <md:KeyDescriptor use="${use}">
      <ds:KeyInfo>
        <ds:X509Data>
          <ds:X509Certificate>${certificateBody(pem)}</ds:X509Certificate>
        </ds:X509Data>
      </ds:KeyInfo>${methods}
    </md:KeyDescriptor>`;
}

/**
 * A connection's SP metadata (SAML 2.0 metadata §2.4.4): what the IdP admin
 * imports. Element order follows the schema (KeyDescriptor,
 * SingleLogoutService, NameIDFormat, AssertionConsumerService). Single Logout
 * (issue 16) is offered on both bindings at one URL (src/sso/saml/single-logout.ts). Assertions must be signed; AuthnRequests are
 * signed when the connection says so. Several KeyDescriptors of one use are
 * a rotation in progress (connections/sp-keys.service.ts): the current key
 * first, then the next one (published before it is used), then the previous
 * one (still accepted until retired).
 */
export function spMetadataXml(input: {
  sp: ServiceProviderDetails;
  authnRequestsSigned: boolean;
  /** One signing certificate (the deployment-wide key alone). */
  signingCertificatePem?: string | null;
  signingCertificatePems?: string[];
  encryptionCertificatePems?: string[];
}): string {
  const { sp } = input;
  const signing =
    input.signingCertificatePems ?? (input.signingCertificatePem ? [input.signingCertificatePem] : []);
  const keyDescriptors = [
    ...signing.map((pem) => keyDescriptor('signing', pem)),
    ...(input.encryptionCertificatePems ?? []).map((pem) => keyDescriptor('encryption', pem)),
  ].join('');
  return `<?xml version="1.0" encoding="UTF-8"?>
<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="${escapeXml(sp.entityId)}">
  <md:SPSSODescriptor AuthnRequestsSigned="${input.authnRequestsSigned}" WantAssertionsSigned="true" protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">${keyDescriptors}
    <md:SingleLogoutService Binding="${BINDING_REDIRECT}" Location="${escapeXml(sp.sloUrl)}"/>
    <md:SingleLogoutService Binding="${BINDING_POST}" Location="${escapeXml(sp.sloUrl)}"/>
    <md:NameIDFormat>${NAMEID_EMAIL}</md:NameIDFormat>
    <md:NameIDFormat>${NAMEID_UNSPECIFIED}</md:NameIDFormat>
    <md:AssertionConsumerService Binding="${BINDING_POST}" Location="${escapeXml(sp.acsUrl)}" index="0" isDefault="true"/>
  </md:SPSSODescriptor>
</md:EntityDescriptor>
`;
}
