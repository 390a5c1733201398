/**
 * Which IdP attribute (SAML) or claim (OIDC) fills which profile field. The
 * defaults work out of the box for Okta, Microsoft Entra ID, Google Workspace,
 * AD FS, Shibboleth / SimpleSAMLphp (LDAP names and their urn:oid forms) and
 * standard OIDC claims; a connection's `attribute_mapping` overrides a field
 * with one attribute name of its own (and then only that attribute is read for
 * that field, so an unexpected attribute can never fill it instead).
 *
 * `subject` is not a profile field: it names the stable identifier a SAML
 * login is keyed by when the NameID is transient (a fresh value per login that
 * must never be stored as an identity; SAML core §8.3.8), see
 * `persistentSubject`.
 */
export const PROFILE_FIELDS = [
  'email',
  'given_name',
  'family_name',
  'display_name',
  'groups',
  'subject',
] as const;
export type ProfileField = (typeof PROFILE_FIELDS)[number];

/** Pseudo-attribute: the SAML Subject's NameID (Google Workspace sends the email there). */
export const NAME_ID = '$NameID';

/** WS-Federation claim types: Entra ID and AD FS send these as SAML attribute names. */
const ENTRA = 'http://schemas.xmlsoap.org/ws/2005/05/identity/claims';

/** Per field, the attribute names tried in order; the first with a value wins. */
export const DEFAULT_ATTRIBUTE_MAPPING: Readonly<Record<ProfileField, readonly string[]>> = {
  email: [
    'email', // Okta, Google Workspace (custom attribute), OIDC
    `${ENTRA}/emailaddress`, // Entra ID
    'mail',
    'urn:oid:0.9.2342.19200300.100.1.3', // eduPerson / Shibboleth "mail"
    'Email',
    'emailAddress',
    NAME_ID, // Google Workspace: NameID is the primary email
  ],
  given_name: [
    'firstName', // Okta
    `${ENTRA}/givenname`, // Entra ID
    'given_name', // OIDC
    'givenName', // LDAP / SimpleSAMLphp (basic name format)
    'first_name', // Google Workspace (as commonly configured)
    'urn:oid:2.5.4.42', // givenName, Shibboleth / SimpleSAMLphp (uri name format)
  ],
  family_name: [
    'lastName', // Okta
    `${ENTRA}/surname`, // Entra ID, AD FS
    'family_name', // OIDC
    'familyName',
    'surname',
    'sn', // LDAP / SimpleSAMLphp (basic name format)
    'last_name', // Google Workspace (as commonly configured)
    'urn:oid:2.5.4.4', // sn, Shibboleth / SimpleSAMLphp (uri name format)
  ],
  display_name: [
    'displayName',
    'http://schemas.microsoft.com/identity/claims/displayname', // Entra ID
    'urn:oid:2.16.840.1.113730.3.1.241', // displayName, Shibboleth / SimpleSAMLphp
    'name', // OIDC
    `${ENTRA}/name`, // Entra ID, AD FS (often the UPN; used when nothing better is sent)
    'cn', // LDAP common name
    'urn:oid:2.5.4.3', // cn
  ],
  groups: [
    'groups', // Okta, Google Workspace (group membership attribute), OIDC
    'http://schemas.microsoft.com/ws/2008/06/identity/claims/groups', // Entra ID
    'memberOf',
    'isMemberOf',
    'urn:oid:1.3.6.1.4.1.5923.1.5.1.1', // eduPerson isMemberOf
  ],
  // Read only for a transient NameID: identifiers defined as persistent and never reassigned.
  subject: [
    'urn:oasis:names:tc:SAML:attribute:subject-id', // SAML V2.0 Subject Identifier Attributes Profile §3.3
    'urn:oasis:names:tc:SAML:attribute:pairwise-id', // same profile, §3.4
    'urn:oid:1.3.6.1.4.1.5923.1.1.1.13', // eduPersonUniqueId
    'http://schemas.microsoft.com/identity/claims/objectidentifier', // Entra ID object id
  ],
};

export interface ResolvedProfile {
  email: string | null;
  givenName: string | null;
  familyName: string | null;
  displayName: string | null;
  groups: string[];
}

/** An attribute's values as strings, whatever shape the library handed over. */
function valuesOf(value: unknown): string[] {
  const list = Array.isArray(value) ? (value as unknown[]) : [value];
  return list
    .map((v) => (typeof v === 'string' ? v : typeof v === 'number' ? String(v) : null))
    .filter((v): v is string => v !== null)
    .map((v) => v.trim())
    .filter((v) => v.length > 0);
}

/** Exact name first, then a case-insensitive match (IdPs differ on "Email" vs "email"). */
function lookupAttribute(attributes: Record<string, unknown>, name: string): unknown {
  if (Object.hasOwn(attributes, name)) return attributes[name];
  const lower = name.toLowerCase();
  const key = Object.keys(attributes).find((k) => k.toLowerCase() === lower);
  return key === undefined ? undefined : attributes[key];
}

function namesFor(field: ProfileField, mapping: Record<string, string>): readonly string[] {
  const override = Object.hasOwn(mapping, field) ? mapping[field] : undefined;
  return override ? [override] : DEFAULT_ATTRIBUTE_MAPPING[field];
}

function valuesFor(
  field: ProfileField,
  mapping: Record<string, string>,
  attributes: Record<string, unknown>,
  nameId: string | undefined,
): string[] {
  for (const name of namesFor(field, mapping)) {
    const values = name === NAME_ID ? valuesOf(nameId) : valuesOf(lookupAttribute(attributes, name));
    if (values.length > 0) return values;
  }
  return [];
}

const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

/** Characters, well under the ~2,700-byte B-tree entry limit of the identities (connection, subject) key. */
const MAX_SUBJECT_LENGTH = 512;

/**
 * The stable identifier a login with a transient NameID is keyed by: the
 * connection's `attribute_mapping.subject`, else the first standard persistent
 * identifier present. Exactly one value, or none: a multi-valued or over-long
 * "identifier" identifies nobody. Null: the login has no stable subject and is
 * matched by email alone (src/directory/jit.service.ts).
 */
export function persistentSubject(
  mapping: Record<string, string>,
  attributes: Record<string, unknown>,
): string | null {
  for (const name of namesFor('subject', mapping)) {
    if (name === NAME_ID) return null;
    const values = [...new Set(valuesOf(lookupAttribute(attributes, name)))];
    if (values.length === 0) continue;
    const [value] = values;
    return values.length === 1 && value !== undefined && value.length <= MAX_SUBJECT_LENGTH ? value : null;
  }
  return null;
}

/**
 * The profile Gatehouse keeps for a person, from an assertion's attributes or
 * an ID token's claims. Pure: the sign-in code decides what to trust.
 * The email is lower-cased and must look like one (else null).
 */
export function resolveProfileAttributes(
  mapping: Record<string, string>,
  attributes: Record<string, unknown>,
  nameId?: string,
): ResolvedProfile {
  const first = (field: ProfileField) => valuesFor(field, mapping, attributes, nameId)[0] ?? null;
  const emailValue = valuesFor('email', mapping, attributes, nameId).find((v) => EMAIL.test(v));
  const givenName = first('given_name');
  const familyName = first('family_name');
  const composed = [givenName, familyName].filter(Boolean).join(' ');
  return {
    email: emailValue ? emailValue.toLowerCase() : null,
    givenName,
    familyName,
    displayName: first('display_name') ?? (composed || null),
    groups: [...new Set(valuesFor('groups', mapping, attributes, nameId))],
  };
}
