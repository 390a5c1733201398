/**
 * Our side of a SAML connection. Each connection is its own SP (its own
 * entity id and ACS URL), so an assertion made for one connection (or tenant)
 * can never be accepted by another: the audience and recipient differ.
 */
export interface ServiceProviderDetails {
  entityId: string;
  acsUrl: string;
  metadataUrl: string;
  /** SAML Single Logout, both bindings (issue 16; src/sso/saml/single-logout.ts). */
  sloUrl: string;
}

export function serviceProviderDetails(baseUrl: string, connectionId: string): ServiceProviderDetails {
  const root = `${baseUrl}/saml/${connectionId}`;
  return { entityId: root, acsUrl: `${root}/acs`, metadataUrl: `${root}/metadata`, sloUrl: `${root}/slo` };
}
