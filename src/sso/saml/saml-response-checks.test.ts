import { DEFAULT_XML_LIMITS } from '../../connections/xml-limits.js';
import {
  assertionIdentity,
  checkSignedAssertion,
  inspectSamlResponse,
  parseSignedAssertion,
} from './saml-response-checks.js';

const ACS = 'https://gatehouse.test/saml/c1/acs';
const IDP = 'https://idp.test/metadata';

function assertion(o: {
  recipient?: string;
  notOnOrAfter: string;
  method?: string;
  inResponseTo?: string | null;
  extraConfirmation?: string;
}): string {
  const irt = o.inResponseTo === null ? '' : ` InResponseTo="${o.inResponseTo ?? '_req'}"`;
  return (
    `<saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_a1" Version="2.0" IssueInstant="2030-01-01T00:00:00Z">` +
    `<saml:Issuer>${IDP}</saml:Issuer><saml:Subject><saml:NameID>alice@acme.test</saml:NameID>` +
    `<saml:SubjectConfirmation Method="${o.method ?? 'urn:oasis:names:tc:SAML:2.0:cm:bearer'}">` +
    `<saml:SubjectConfirmationData Recipient="${o.recipient ?? ACS}" NotOnOrAfter="${o.notOnOrAfter}"${irt}/>` +
    `</saml:SubjectConfirmation>${o.extraConfirmation ?? ''}</saml:Subject>` +
    `<saml:Conditions NotBefore="2030-01-01T00:00:00Z" NotOnOrAfter="2030-01-01T00:05:00Z"/>` +
    `<saml:AuthnStatement AuthnInstant="2030-01-01T00:00:00Z"/></saml:Assertion>`
  );
}

const base = {
  acsUrl: ACS,
  idpEntityId: IDP,
  envelopeInResponseTo: null,
  allowIdpInitiated: false,
  clockSkewMs: 60_000,
};
const NOW = new Date('2030-01-01T00:01:00Z');

describe('checkSignedAssertion (the clock is an argument)', () => {
  it('accepts a bearer assertion for this ACS and keeps it in the replay cache until expiry plus skew', () => {
    const facts = checkSignedAssertion({
      ...base,
      assertion: parseSignedAssertion(assertion({ notOnOrAfter: '2030-01-01T00:05:00Z' })),
      now: new Date('2030-01-01T00:01:00Z'),
    });
    expect(facts).toEqual({
      assertionId: '_a1',
      nameId: 'alice@acme.test',
      nameIdFormat: null,
      inResponseTo: '_req',
      acceptableUntil: new Date('2030-01-01T00:06:00Z'),
      authnInstant: new Date('2030-01-01T00:00:00Z'),
    });
  });

  it('allows the configured skew past NotOnOrAfter, and not a second more', () => {
    const xml = assertion({ notOnOrAfter: '2030-01-01T00:05:00Z' });
    expect(() =>
      checkSignedAssertion({
        ...base,
        assertion: parseSignedAssertion(xml),
        now: new Date('2030-01-01T00:05:59Z'),
      }),
    ).not.toThrow();
    expect(() =>
      checkSignedAssertion({
        ...base,
        assertion: parseSignedAssertion(xml),
        now: new Date('2030-01-01T00:06:00Z'),
      }),
    ).toThrow(/saml_assertion_expired/);
  });

  it.each([
    [{ recipient: 'https://evil.test/acs' }, /saml_recipient_mismatch/],
    [{ method: 'urn:oasis:names:tc:SAML:2.0:cm:sender-vouches' }, /saml_subject_confirmation_invalid/],
  ])('refuses %j', (change, reason) => {
    const xml = assertion({ notOnOrAfter: '2030-01-01T00:05:00Z', ...change });
    expect(() =>
      checkSignedAssertion({
        ...base,
        assertion: parseSignedAssertion(xml),
        now: new Date('2030-01-01T00:01:00Z'),
      }),
    ).toThrow(reason);
  });

  describe('solicited or not is read from the signed SubjectConfirmationData only', () => {
    const unsolicited = assertion({ notOnOrAfter: '2030-01-01T00:05:00Z', inResponseTo: null });

    it('refuses a signed IdP-initiated assertion wrapped in an envelope naming a pending request', () => {
      // issue 8, defect 1: the envelope's InResponseTo must not make a signed unsolicited assertion solicited.
      expect(() =>
        checkSignedAssertion({
          ...base,
          allowIdpInitiated: true,
          envelopeInResponseTo: '_attackers_request',
          assertion: parseSignedAssertion(unsolicited),
          now: NOW,
        }),
      ).toThrow(/saml_in_response_to_invalid/);
    });

    it('refuses an assertion without a signed InResponseTo when IdP-initiated login is off', () => {
      expect(() =>
        checkSignedAssertion({ ...base, assertion: parseSignedAssertion(unsolicited), now: NOW }),
      ).toThrow(/saml_unsolicited_response/);
    });

    it('admits it as IdP-initiated (inResponseTo null) where the connection allows', () => {
      const facts = checkSignedAssertion({
        ...base,
        allowIdpInitiated: true,
        assertion: parseSignedAssertion(unsolicited),
        now: NOW,
      });
      expect(facts.inResponseTo).toBeNull();
    });

    it('refuses an envelope InResponseTo that differs from the signed one', () => {
      const xml = assertion({ notOnOrAfter: '2030-01-01T00:05:00Z', inResponseTo: '_req' });
      expect(() =>
        checkSignedAssertion({
          ...base,
          envelopeInResponseTo: '_other',
          assertion: parseSignedAssertion(xml),
          now: NOW,
        }),
      ).toThrow(/saml_in_response_to_invalid/);
      expect(
        checkSignedAssertion({
          ...base,
          envelopeInResponseTo: '_req',
          assertion: parseSignedAssertion(xml),
          now: NOW,
        }).inResponseTo,
      ).toBe('_req');
    });

    it('refuses live bearer confirmations that disagree on InResponseTo', () => {
      const second =
        `<saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer">` +
        `<saml:SubjectConfirmationData Recipient="${ACS}" NotOnOrAfter="2030-01-01T00:05:00Z"/></saml:SubjectConfirmation>`;
      const xml = assertion({ notOnOrAfter: '2030-01-01T00:05:00Z', extraConfirmation: second });
      expect(() =>
        checkSignedAssertion({
          ...base,
          allowIdpInitiated: true,
          assertion: parseSignedAssertion(xml),
          now: NOW,
        }),
      ).toThrow(/saml_in_response_to_invalid/);
    });
  });

  it('remembers an assertion without time limits for the maximum assertion age', () => {
    const xml =
      `<saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_bare" Version="2.0">` +
      `<saml:Issuer>${IDP}</saml:Issuer></saml:Assertion>`;
    expect(
      assertionIdentity({
        assertion: parseSignedAssertion(xml),
        now: NOW,
        clockSkewMs: 1000,
        maxAssertionAgeMs: 60_000,
      }),
    ).toEqual({
      assertionId: '_bare',
      acceptableUntil: new Date(NOW.getTime() + 61_000),
    });
  });
});

describe('inspectSamlResponse bounds the document before parsing it', () => {
  const input = (xml: string) => ({
    samlResponse: Buffer.from(xml).toString('base64'),
    acsUrl: ACS,
    idpEntityId: IDP,
    allowSha1: false,
    xmlLimits: DEFAULT_XML_LIMITS,
  });
  const response = (inner: string) =>
    `<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="_r">${inner}</samlp:Response>`;

  it.each([
    ['too_deep', '<x>'.repeat(30_000) + '</x>'.repeat(30_000)],
    ['too_many_elements', '<x/>'.repeat(25_000)],
    [
      'too_many_attributes',
      `<x ${Array.from({ length: 1000 }, (_, i) => `a${i}="1"`).join(' ')}/>`.repeat(41),
    ],
  ])('refuses a response that is %s, under the size cap', (violation, inner) => {
    const xml = response(inner);
    expect(Buffer.from(xml).toString('base64').length).toBeLessThan(512 * 1024);
    expect(() => inspectSamlResponse(input(xml))).toThrow(new RegExp(`saml_xml_${violation}`));
  });

  it('refuses a DTD before anything else', () => {
    expect(() => inspectSamlResponse(input(`<!DOCTYPE r>${response('')}`))).toThrow(/saml_dtd_forbidden/);
  });
});
