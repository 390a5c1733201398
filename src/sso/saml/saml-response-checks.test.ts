import { checkSignedAssertion } from './saml-response-checks.js';

const ACS = 'https://gatehouse.test/saml/c1/acs';
const IDP = 'https://idp.test/metadata';

function assertion(o: {
  recipient?: string;
  notOnOrAfter: string;
  method?: string;
  inResponseTo?: string;
}): string {
  const irt = o.inResponseTo ? ` InResponseTo="${o.inResponseTo}"` : '';
  return (
    `<saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_a1" Version="2.0" IssueInstant="2030-01-01T00:00:00Z">` +
    `<saml:Issuer>${IDP}</saml:Issuer><saml:Subject><saml:NameID>alice@acme.test</saml:NameID>` +
    `<saml:SubjectConfirmation Method="${o.method ?? 'urn:oasis:names:tc:SAML:2.0:cm:bearer'}">` +
    `<saml:SubjectConfirmationData Recipient="${o.recipient ?? ACS}" NotOnOrAfter="${o.notOnOrAfter}"${irt}/>` +
    `</saml:SubjectConfirmation></saml:Subject>` +
    `<saml:Conditions NotBefore="2030-01-01T00:00:00Z" NotOnOrAfter="2030-01-01T00:05:00Z"/>` +
    `<saml:AuthnStatement AuthnInstant="2030-01-01T00:00:00Z"/></saml:Assertion>`
  );
}

const base = { acsUrl: ACS, idpEntityId: IDP, solicited: true, clockSkewMs: 60_000 };

describe('checkSignedAssertion (the clock is an argument)', () => {
  it('accepts a bearer assertion for this ACS and keeps it in the replay cache until expiry plus skew', () => {
    const facts = checkSignedAssertion({
      ...base,
      assertionXml: assertion({ notOnOrAfter: '2030-01-01T00:05:00Z' }),
      now: new Date('2030-01-01T00:01:00Z'),
    });
    expect(facts).toEqual({
      assertionId: '_a1',
      nameId: 'alice@acme.test',
      acceptableUntil: new Date('2030-01-01T00:06:00Z'),
      authnInstant: new Date('2030-01-01T00:00:00Z'),
    });
  });

  it('allows the configured skew past NotOnOrAfter, and not a second more', () => {
    const xml = assertion({ notOnOrAfter: '2030-01-01T00:05:00Z' });
    expect(() =>
      checkSignedAssertion({ ...base, assertionXml: xml, now: new Date('2030-01-01T00:05:59Z') }),
    ).not.toThrow();
    expect(() =>
      checkSignedAssertion({ ...base, assertionXml: xml, now: new Date('2030-01-01T00:06:00Z') }),
    ).toThrow(/saml_assertion_expired/);
  });

  it.each([
    [{ recipient: 'https://evil.test/acs' }, /saml_recipient_mismatch/],
    [{ method: 'urn:oasis:names:tc:SAML:2.0:cm:sender-vouches' }, /saml_subject_confirmation_invalid/],
  ])('refuses %j', (change, reason) => {
    const xml = assertion({ notOnOrAfter: '2030-01-01T00:05:00Z', ...change });
    expect(() =>
      checkSignedAssertion({ ...base, assertionXml: xml, now: new Date('2030-01-01T00:01:00Z') }),
    ).toThrow(reason);
  });

  it('refuses an unsolicited assertion that answers a request', () => {
    const xml = assertion({ notOnOrAfter: '2030-01-01T00:05:00Z', inResponseTo: '_req' });
    expect(() =>
      checkSignedAssertion({
        ...base,
        solicited: false,
        assertionXml: xml,
        now: new Date('2030-01-01T00:01:00Z'),
      }),
    ).toThrow(/saml_in_response_to_invalid/);
  });
});
