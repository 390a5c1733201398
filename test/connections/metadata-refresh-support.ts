import selfsigned from 'selfsigned';

/**
 * IdP metadata documents for the refresh tests (issue 16): an EntityDescriptor
 * with one IDPSSODescriptor, its SSO service and one signing KeyDescriptor per
 * certificate (SAML 2.0 metadata §2.4.3), as Okta or Entra publish them.
 */
export function metadataXml(
  entityId: string,
  ssoUrl: string,
  certificatePems: string[],
  sloUrl?: string,
): string {
  const keys = certificatePems
    .map((pem) => pem.replace(/-----(BEGIN|END) CERTIFICATE-----/g, '').replace(/\s+/g, ''))
    .map(
      (b64) =>
        `<md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>${b64}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>`,
    )
    .join('');
  return (
    `<?xml version="1.0"?><md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" ` +
    `xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="${entityId}">` +
    `<md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">${keys}` +
    (sloUrl
      ? `<md:SingleLogoutService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="${sloUrl}"/>`
      : '') +
    `<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="${ssoUrl}"/>` +
    `</md:IDPSSODescriptor></md:EntityDescriptor>`
  );
}

/** A self-signed certificate (EC, quick to make) valid until `notAfter`. */
export async function certificateUntil(notAfter: Date, name = 'idp.test'): Promise<string> {
  const pems = await selfsigned.generate([{ name: 'commonName', value: name }], {
    keyType: 'ec',
    algorithm: 'sha256',
    notBeforeDate: new Date(Math.min(Date.now(), notAfter.getTime()) - 86_400_000),
    notAfterDate: notAfter,
  });
  return pems.cert;
}
