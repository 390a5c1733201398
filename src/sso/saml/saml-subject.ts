import { persistentSubject } from '../../connections/attribute-mapping.js';
import { NAMEID_TRANSIENT, type AssertionFacts } from './saml-response-checks.js';

/**
 * Which key a SAML login is remembered by. A persistent (or email,
 * unspecified…) NameID is the identity's subject, as always. A transient one
 * (SAML core §8.3.8) is a fresh value at every login: stored as an identity it
 * would pile up a row per login and recognise nobody, and read as an email it
 * could claim an account. So it is never used at all: the key becomes the
 * persistent identifier attribute (`attribute_mapping.subject`, else the
 * standard ones), or, without one, none — the login is then matched by email
 * under the JIT rules (src/directory/jit.service.ts), which accept only an
 * email in a verified domain for it. Everything here comes from the signed
 * assertion (docs/security.md, "signed bytes only").
 */
export interface SamlLoginSubject {
  /** The identity key; null: no stable one, match by trusted email only. */
  subject: string | null;
  /** What the attribute mapping may read as `$NameID`; undefined for a transient NameID. */
  profileNameId: string | undefined;
}

export function samlLoginSubject(input: {
  facts: Pick<AssertionFacts, 'nameId' | 'nameIdFormat'>;
  attributes: Record<string, unknown>;
  mapping: Record<string, string>;
}): SamlLoginSubject {
  const { facts } = input;
  if (facts.nameIdFormat !== NAMEID_TRANSIENT) return { subject: facts.nameId, profileNameId: facts.nameId };
  return { subject: persistentSubject(input.mapping, input.attributes), profileNameId: undefined };
}
