import { createHash } from 'node:crypto';
import type { SamlUser } from './saml-idp.js';

/**
 * The people a SAML fuzz case signs in as, and how each IdP style releases
 * them. Each shape states, independently of Gatehouse's attribute mapping,
 * the profile a correct sign-in must produce from it: the fuzzer's oracle
 * compares the user row and the ID token with that, never with what the code
 * under test computes.
 */

export type PersonaKey = 'attacker' | 'victim1' | 'victim2';
export const PERSONAS: readonly PersonaKey[] = ['attacker', 'victim1', 'victim2'];

export type ShapeKey = 'okta' | 'entra' | 'google' | 'adfs';
export const SHAPES: readonly ShapeKey[] = ['okta', 'entra', 'google', 'adfs'];

/** The group a tenant maps to the admin role (by display name; Entra by object id). */
export const ADMIN_GROUP = 'Gatehouse Admins';

const ENTRA = 'http://schemas.xmlsoap.org/ws/2005/05/identity/claims';
const ENTRA_DISPLAY = 'http://schemas.microsoft.com/identity/claims/displayname';
const ENTRA_GROUPS = 'http://schemas.microsoft.com/ws/2008/06/identity/claims/groups';
/** ADFS's group claim: not one Gatehouse maps by default, so ADFS logins carry no groups. */
const ADFS_GROUPS = 'http://schemas.xmlsoap.org/claims/Group';

const NAMEID_EMAIL = 'urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress';
const NAMEID_PERSISTENT = 'urn:oasis:names:tc:SAML:2.0:nameid-format:persistent';
const NAMEID_UNSPECIFIED = 'urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified';

export interface Person {
  email: string;
  givenName: string;
  familyName: string;
  groups: string[];
}

/** The profile Gatehouse must keep for a person after a login in a given shape. */
export interface ExpectedProfile {
  email: string;
  givenName: string;
  familyName: string;
  displayName: string;
  groups: string[];
}

/** Entra sends group object ids: a stable GUID-looking id per group name. */
export function entraGroupId(name: string): string {
  const h = createHash('sha256').update(name).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-8${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/** The three people of one fuzz case in a tenant's domain; `n` makes them new users of that case. */
export function personasOf(domain: string, n: number): Record<PersonaKey, Person> {
  return {
    attacker: {
      email: `mallory.${n}@${domain}`,
      givenName: 'Mallory',
      familyName: `Attacker${n}`,
      groups: ['Staff'],
    },
    victim1: {
      email: `ceo.${n}@${domain}`,
      givenName: 'Cecilia',
      familyName: `Executive${n}`,
      groups: [ADMIN_GROUP, 'Staff'],
    },
    victim2: {
      email: `cfo.${n}@${domain}`,
      givenName: 'Frank',
      familyName: `Finance${n}`,
      groups: ['Finance'],
    },
  };
}

/** The person as `shape` releases them (NameID and attributes). */
export function samlUserOf(person: Person, shape: ShapeKey): SamlUser {
  switch (shape) {
    case 'okta':
      return {
        nameId: person.email,
        nameIdFormat: NAMEID_EMAIL,
        attributes: {
          email: person.email,
          firstName: person.givenName,
          lastName: person.familyName,
          groups: person.groups,
        },
      };
    case 'entra':
      return {
        nameId: `entra-${createHash('sha256').update(person.email).digest('base64url').slice(0, 22)}`,
        nameIdFormat: NAMEID_PERSISTENT,
        attributes: {
          [`${ENTRA}/emailaddress`]: person.email,
          [`${ENTRA}/givenname`]: person.givenName,
          [`${ENTRA}/surname`]: person.familyName,
          [ENTRA_DISPLAY]: `${person.givenName} ${person.familyName} (Entra)`,
          [ENTRA_GROUPS]: person.groups.map(entraGroupId),
        },
      };
    case 'google':
      // Google Workspace: the primary email is the NameID; names and groups as custom attributes.
      return {
        nameId: person.email,
        nameIdFormat: NAMEID_EMAIL,
        attributes: { first_name: person.givenName, last_name: person.familyName, groups: person.groups },
      };
    case 'adfs':
      return {
        nameId: `CORP\\${person.email.split('@')[0] ?? ''}`,
        nameIdFormat: NAMEID_UNSPECIFIED,
        attributes: {
          [`${ENTRA}/emailaddress`]: person.email,
          [`${ENTRA}/givenname`]: person.givenName,
          [`${ENTRA}/surname`]: person.familyName,
          [ADFS_GROUPS]: person.groups,
        },
      };
  }
}

export function expectedProfile(person: Person, shape: ShapeKey): ExpectedProfile {
  const composed = `${person.givenName} ${person.familyName}`;
  switch (shape) {
    case 'okta':
    case 'google':
      return { ...person, displayName: composed, groups: [...person.groups] };
    case 'entra':
      return { ...person, displayName: `${composed} (Entra)`, groups: person.groups.map(entraGroupId) };
    case 'adfs':
      return { ...person, displayName: composed, groups: [] };
  }
}

/** The roles a correct login gives (role mappings: ADMIN_GROUP by name, its Entra id by external id). */
export function expectedRoles(profile: ExpectedProfile): string[] {
  return profile.groups.includes(ADMIN_GROUP) || profile.groups.includes(entraGroupId(ADMIN_GROUP))
    ? ['admin']
    : ['member'];
}
