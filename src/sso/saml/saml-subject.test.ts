import fc from 'fast-check';
import { NAME_ID } from '../../connections/attribute-mapping.js';
import { NAMEID_TRANSIENT } from './saml-response-checks.js';
import { samlLoginSubject } from './saml-subject.js';

const RUNS = Number(process.env.GATEHOUSE_FUZZ_RUNS ?? 300);
const SEED = Number(process.env.GATEHOUSE_FUZZ_SEED ?? 16);

const name = fc.oneof(
  fc.constantFrom(
    'urn:oasis:names:tc:SAML:attribute:subject-id',
    'urn:oasis:names:tc:SAML:attribute:pairwise-id',
    'employeeNumber',
    'mail',
    NAME_ID,
    '__proto__',
    'constructor',
  ),
  fc.string({ maxLength: 20 }),
);
const value = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.array(fc.string({ maxLength: 40 }), { maxLength: 3 }),
  fc.integer(),
  fc.constant(null),
);
const format = fc.oneof(
  fc.constant(NAMEID_TRANSIENT),
  fc.constantFrom(
    'urn:oasis:names:tc:SAML:2.0:nameid-format:persistent',
    'urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress',
  ),
  fc.constant(null),
);

describe('samlLoginSubject (property: a transient NameID is never a key)', () => {
  it('never returns a transient NameID as the subject or for $NameID; keeps any other NameID', () => {
    fc.assert(
      fc.property(
        fc.string({ minLength: 1, maxLength: 60 }),
        format,
        fc.dictionary(name, value, { maxKeys: 6 }),
        fc.option(name, { nil: undefined }),
        (nameId, nameIdFormat, attributes, subjectAttribute) => {
          const mapping: Record<string, string> =
            subjectAttribute === undefined ? {} : { subject: subjectAttribute };
          const before = JSON.stringify(Object.prototype);
          const out = samlLoginSubject({ facts: { nameId, nameIdFormat }, attributes, mapping });
          expect(JSON.stringify(Object.prototype)).toBe(before);
          if (nameIdFormat !== NAMEID_TRANSIENT) {
            expect(out).toEqual({ subject: nameId, profileNameId: nameId });
            return;
          }
          expect(out.profileNameId).toBeUndefined();
          // The subject, when any, is one value of one of the signed attributes, bounded in length.
          if (out.subject !== null) {
            const sent = Object.values(attributes).flatMap((v) => (Array.isArray(v) ? v : [v]));
            expect(sent.map((v) => (typeof v === 'number' ? String(v) : v?.trim()))).toContain(out.subject);
            expect(out.subject.length).toBeGreaterThan(0);
            expect(out.subject.length).toBeLessThanOrEqual(512);
          }
        },
      ),
      { seed: SEED, numRuns: RUNS },
    );
  });
});
