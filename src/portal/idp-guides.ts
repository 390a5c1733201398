/**
 * What does a customer's IT admin type into their IdP, step by step? One entry
 * per IdP the SSO wizard offers. The SP values (ACS URL, entity id, metadata
 * URL, redirect URI) are filled in by the page from the connection; the
 * attribute names are ones src/connections/attribute-mapping.ts reads by
 * default, so no mapping has to be configured on our side.
 */

export type GuideValue = 'acs_url' | 'entity_id' | 'metadata_url' | 'redirect_uri';

export interface IdpGuide {
  id: string;
  name: string;
  protocol: 'saml' | 'oidc';
  /** Plain-text steps; `{acs_url}` and the like are shown as the value with a copy button. */
  steps: string[];
  nameIdFormat?: string;
  /** Attribute (or claim) name to send → what Gatehouse makes of it. */
  attributes: { name: string; meaning: string }[];
  /** Where the IdP offers its metadata (SAML) or its issuer (OIDC). */
  metadataHint: string;
}

const EMAIL_NAMEID = 'urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress';
const WSFED = 'http://schemas.xmlsoap.org/ws/2005/05/identity/claims';

const basicAttributes = [
  { name: 'email', meaning: 'email address (required)' },
  { name: 'firstName', meaning: 'given name' },
  { name: 'lastName', meaning: 'family name' },
  { name: 'groups', meaning: 'group names, for role mappings' },
];
const wsfedAttributes = [
  { name: `${WSFED}/emailaddress`, meaning: 'email address (required)' },
  { name: `${WSFED}/givenname`, meaning: 'given name' },
  { name: `${WSFED}/surname`, meaning: 'family name' },
  {
    name: 'http://schemas.microsoft.com/ws/2008/06/identity/claims/groups',
    meaning: 'groups, for role mappings',
  },
];

export const IDP_GUIDES: readonly IdpGuide[] = [
  {
    id: 'okta',
    name: 'Okta',
    protocol: 'saml',
    steps: [
      'In the Okta Admin Console open Applications → Applications → Create App Integration, choose SAML 2.0.',
      'Name the app, then under "Configure SAML" set Single sign-on URL to {acs_url} and keep "Use this for Recipient URL and Destination URL" checked.',
      'Set Audience URI (SP Entity ID) to {entity_id}.',
      'Set Name ID format to EmailAddress and Application username to Email.',
      'Add the attribute statements below (Name format: Unspecified), and a group attribute statement "groups" with the filter Matches regex .* if you map groups to roles.',
      'Finish, open the Sign On tab and copy the "Metadata URL", or download the metadata file.',
      'Assign the people or groups who may sign in.',
    ],
    nameIdFormat: EMAIL_NAMEID,
    attributes: basicAttributes,
    metadataHint: 'Sign On tab → SAML Signing Certificates → Actions → View IdP metadata.',
  },
  {
    id: 'entra',
    name: 'Microsoft Entra ID',
    protocol: 'saml',
    steps: [
      'In the Entra admin center open Enterprise applications → New application → Create your own application ("Integrate any other application you don\'t find in the gallery").',
      'Open Single sign-on → SAML. In Basic SAML Configuration set Identifier (Entity ID) to {entity_id} and Reply URL (Assertion Consumer Service URL) to {acs_url}.',
      'Keep the default claims (they are the attribute names below); add a group claim if you map groups to roles.',
      'Copy the "App Federation Metadata Url" from SAML Certificates, or download "Federation Metadata XML".',
      'Assign users and groups under Users and groups.',
    ],
    nameIdFormat: EMAIL_NAMEID,
    attributes: wsfedAttributes,
    metadataHint: 'SAML Certificates → App Federation Metadata Url.',
  },
  {
    id: 'google',
    name: 'Google Workspace',
    protocol: 'saml',
    steps: [
      'In the Google Admin console open Apps → Web and mobile apps → Add app → Add custom SAML app.',
      'On "Google Identity Provider details" download the metadata (Option 1) and continue.',
      'Set ACS URL to {acs_url} and Entity ID to {entity_id}; leave "Signed response" unchecked.',
      'Set Name ID format to EMAIL and Name ID to Basic Information → Primary email.',
      'Map First name → firstName and Last name → lastName; add Group membership → groups if you map groups to roles.',
      'Turn the app ON for the organisational units that may sign in.',
    ],
    nameIdFormat: EMAIL_NAMEID,
    attributes: [
      { name: 'NameID (primary email)', meaning: 'email address (required)' },
      ...basicAttributes.slice(1),
    ],
    metadataHint: 'Download the IdP metadata file on the "Google Identity Provider details" step.',
  },
  {
    id: 'onelogin',
    name: 'OneLogin',
    protocol: 'saml',
    steps: [
      'In OneLogin open Applications → Add App and choose "SAML Custom Connector (Advanced)".',
      'In Configuration set Audience (EntityID) to {entity_id}, Recipient and ACS (Consumer) URL to {acs_url}, and ACS URL Validator to the same URL with dots escaped.',
      'Set SAML nameID format to Email and SAML signature element to Assertion.',
      'In Parameters add email, firstName, lastName (and groups) with "Include in SAML assertion".',
      'Save, then More Actions → SAML Metadata to download the metadata.',
    ],
    nameIdFormat: EMAIL_NAMEID,
    attributes: basicAttributes,
    metadataHint: 'More Actions → SAML Metadata, or the Issuer URL on the SSO tab.',
  },
  {
    id: 'jumpcloud',
    name: 'JumpCloud',
    protocol: 'saml',
    steps: [
      'In the JumpCloud Admin Portal open SSO Applications → Add New Application → Custom Application → Manage Single Sign-On (SSO) with SAML.',
      'Set SP Entity ID to {entity_id} and ACS URLs (default URL) to {acs_url}.',
      'Set SAMLSubject NameID to email and its format to emailAddress; Signature Algorithm RSA-SHA256; "Sign Assertion".',
      'Add user attributes email, firstName, lastName; include the group attribute "groups" if you map groups to roles.',
      'Activate, then Export Metadata.',
    ],
    nameIdFormat: EMAIL_NAMEID,
    attributes: basicAttributes,
    metadataHint: "The application's SSO tab → Export Metadata.",
  },
  {
    id: 'adfs',
    name: 'AD FS',
    protocol: 'saml',
    steps: [
      'In AD FS Management open Relying Party Trusts → Add Relying Party Trust (claims aware).',
      'Choose "Import data about the relying party published online" and enter {metadata_url}, or enter the values by hand: identifier {entity_id}, SAML 2.0 WebSSO URL {acs_url}.',
      'Add a claim issuance rule "Send LDAP Attributes as Claims": E-Mail-Addresses → E-Mail Address, Given-Name → Given Name, Surname → Surname, Token-Groups - Unqualified Names → Group.',
      'Add a "Transform an Incoming Claim" rule: E-Mail Address → Name ID, format Email.',
      'Give Gatehouse your federation metadata URL: https://<your AD FS host>/FederationMetadata/2007-06/FederationMetadata.xml.',
    ],
    nameIdFormat: EMAIL_NAMEID,
    attributes: wsfedAttributes,
    metadataHint: 'https://<your AD FS host>/FederationMetadata/2007-06/FederationMetadata.xml',
  },
  {
    id: 'pingfederate',
    name: 'PingFederate',
    protocol: 'saml',
    steps: [
      'In PingFederate open Applications → SP Connections → Create Connection (Browser SSO, SAML 2.0).',
      "Import the metadata from {metadata_url}, or set Partner's Entity ID to {entity_id} and the ACS endpoint (HTTP-POST) to {acs_url}.",
      'Under Assertion Creation send SAML_SUBJECT as the email address (format emailAddress) and the attributes below.',
      'Sign the assertion with RSA-SHA256, activate the connection and export its metadata (Actions → Export Metadata).',
    ],
    nameIdFormat: EMAIL_NAMEID,
    attributes: basicAttributes,
    metadataHint: 'SP Connections → your connection → Export Metadata.',
  },
  {
    id: 'saml',
    name: 'Other SAML 2.0 IdP',
    protocol: 'saml',
    steps: [
      'Create a SAML 2.0 application (service provider) in your IdP.',
      'Set its ACS URL (HTTP-POST) to {acs_url} and its SP entity id (audience) to {entity_id}; if the IdP can read SP metadata, give it {metadata_url}.',
      'Send the email address as NameID (emailAddress format) and the attributes below; sign the assertion with RSA-SHA256.',
      'Export the IdP metadata and give it to us below.',
    ],
    nameIdFormat: EMAIL_NAMEID,
    attributes: basicAttributes,
    metadataHint: "Your IdP's metadata XML or its metadata URL.",
  },
  {
    id: 'oidc',
    name: 'Other OpenID Connect IdP',
    protocol: 'oidc',
    steps: [
      'Register a web application (confidential client, authorization code flow) in your IdP.',
      'Set its redirect (callback) URI to {redirect_uri}.',
      'Grant the scopes openid, email and profile; the ID token must say email_verified: true.',
      'Give us below the issuer URL (its /.well-known/openid-configuration must be reachable), the client id and the client secret.',
    ],
    attributes: [
      { name: 'email', meaning: 'email address (required, with email_verified)' },
      { name: 'given_name', meaning: 'given name' },
      { name: 'family_name', meaning: 'family name' },
      { name: 'groups', meaning: 'group names, for role mappings' },
    ],
    metadataHint: 'The issuer URL, e.g. https://idp.example.com.',
  },
];

export function findGuide(id: string): IdpGuide | undefined {
  return IDP_GUIDES.find((g) => g.id === id);
}
