import type { ServiceProviderDetails } from './sp.js';
import { BINDING_POST } from './saml-metadata.js';

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

/**
 * A connection's SP metadata (SAML 2.0 metadata §2.4.4): what the IdP admin
 * imports. Element order follows the schema (KeyDescriptor, NameIDFormat,
 * AssertionConsumerService). Assertions must be signed; AuthnRequests are
 * signed when the connection says so, with the SP signing certificate given.
 */
export function spMetadataXml(input: {
  sp: ServiceProviderDetails;
  authnRequestsSigned: boolean;
  signingCertificatePem?: string | null;
}): string {
  const { sp } = input;
  const keyDescriptor = input.signingCertificatePem
    ? `
    <md:KeyDescriptor use="signing">
      <ds:KeyInfo>
        <ds:X509Data>
          <ds:X509Certificate>${certificateBody(input.signingCertificatePem)}</ds:X509Certificate>
        </ds:X509Data>
      </ds:KeyInfo>
    </md:KeyDescriptor>`
    : '';
  return `<?xml version="1.0" encoding="UTF-8"?>
<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="${escapeXml(sp.entityId)}">
  <md:SPSSODescriptor AuthnRequestsSigned="${input.authnRequestsSigned}" WantAssertionsSigned="true" protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">${keyDescriptor}
    <md:NameIDFormat>${NAMEID_EMAIL}</md:NameIDFormat>
    <md:NameIDFormat>${NAMEID_UNSPECIFIED}</md:NameIDFormat>
    <md:AssertionConsumerService Binding="${BINDING_POST}" Location="${escapeXml(sp.acsUrl)}" index="0" isDefault="true"/>
  </md:SPSSODescriptor>
</md:EntityDescriptor>
`;
}
