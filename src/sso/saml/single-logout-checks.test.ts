import { deflateRawSync } from 'node:zlib';
import { DEFAULT_XML_LIMITS } from '../../connections/xml-limits.js';
import { LoginRefusedError } from '../reasons.js';
import {
  checkLogoutMessage,
  inspectLogoutMessage,
  readPostMessage,
  readRedirectMessage,
  type LogoutMessageFacts,
} from './single-logout-checks.js';

const SHA256 = 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256';
const SHA1 = 'http://www.w3.org/2000/09/xmldsig#rsa-sha1';
const IDP = 'https://idp.test/metadata';
const SLO = 'https://gatehouse.test/saml/c1/slo';

const request = (inner = '<saml:NameID>alice@acme.test</saml:NameID>', attrs = '') =>
  `<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_r1" Version="2.0" IssueInstant="2026-12-03T10:00:00Z" Destination="${SLO}"${attrs}><saml:Issuer>${IDP}</saml:Issuer>${inner}</samlp:LogoutRequest>`;

const encode = (xml: string | Buffer) =>
  encodeURIComponent(deflateRawSync(typeof xml === 'string' ? Buffer.from(xml) : xml).toString('base64'));
const signedQuery = (message: string, extra = '') =>
  `SAMLRequest=${message}${extra}&SigAlg=${encodeURIComponent(SHA256)}&Signature=c2ln`;

function reasonOf(fn: () => unknown): string {
  try {
    fn();
    return 'accepted';
  } catch (error) {
    if (error instanceof LoginRefusedError) return error.reason;
    throw error;
  }
}

describe('readRedirectMessage (SAML bindings §3.4.4.1)', () => {
  it('keeps the signed parameters as sent, in signature order, and ignores others', () => {
    const message = encode(request());
    const read = readRedirectMessage(`foo=bar&${signedQuery(message, '&RelayState=a%20b')}`, false);
    expect(read.kind).toBe('request');
    expect(read.relayState).toBe('a b');
    expect(read.originalQuery).toBe(
      `SAMLRequest=${message}&RelayState=a%20b&SigAlg=${encodeURIComponent(SHA256)}&Signature=c2ln`,
    );
    expect(read.xml).toBe(request());
  });

  it.each([
    ['unsigned', `SAMLRequest=${encode(request())}`, 'saml_logout_signature_invalid'],
    [
      'SHA-1 without allow_sha1',
      `SAMLRequest=x&SigAlg=${encodeURIComponent(SHA1)}&Signature=c2ln`,
      'saml_logout_signature_invalid',
    ],
    [
      'a repeated SAMLRequest',
      `${signedQuery(encode(request()))}&SAMLRequest=x`,
      'saml_logout_request_invalid',
    ],
    [
      'both SAMLRequest and SAMLResponse',
      `${signedQuery('x')}&SAMLResponse=y`,
      'saml_logout_request_invalid',
    ],
    ['neither', 'RelayState=x', 'saml_logout_request_invalid'],
    [
      'not DEFLATE',
      signedQuery(encodeURIComponent(Buffer.from('plain').toString('base64'))),
      'saml_logout_request_invalid',
    ],
    [
      'a DEFLATE bomb',
      signedQuery(encode(Buffer.alloc(4 * 1024 * 1024, 0x20))),
      'saml_logout_request_invalid',
    ],
    ['bad percent-encoding', signedQuery('%E0%A4%A'), 'saml_logout_request_invalid'],
  ])('refuses %s', (_name, query, reason) => {
    expect(reasonOf(() => readRedirectMessage(query, false))).toBe(reason);
  });

  it('takes SHA-1 where the connection allows it', () => {
    const query = `SAMLRequest=${encode(request())}&SigAlg=${encodeURIComponent(SHA1)}&Signature=c2ln`;
    expect(readRedirectMessage(query, true).kind).toBe('request');
  });
});

describe('readPostMessage (SAML bindings §3.5.4)', () => {
  it.each([
    ['a repeated field', { SAMLRequest: ['a', 'b'] }],
    ['both messages', { SAMLRequest: 'YQ==', SAMLResponse: 'YQ==' }],
    ['no message', { RelayState: 'x' }],
    ['not base64', { SAMLRequest: '<xml/>' }],
    ['a RelayState too long', { SAMLRequest: 'YQ==', RelayState: 'r'.repeat(600) }],
  ])('refuses %s', (_name, body) => {
    expect(reasonOf(() => readPostMessage(body))).toBe('saml_logout_request_invalid');
  });
});

describe('inspectLogoutMessage', () => {
  const redirect = (xml: string) => ({
    binding: 'redirect' as const,
    kind: 'request' as const,
    container: {},
    originalQuery: '',
    relayState: null,
    xml,
  });
  const options = { xmlLimits: DEFAULT_XML_LIMITS, allowSha1: false };

  it('states the facts of a LogoutRequest, every SessionIndex included', () => {
    const facts = inspectLogoutMessage(
      redirect(
        request(
          '<saml:NameID Format="urn:x">alice@acme.test</saml:NameID><samlp:SessionIndex>s1</samlp:SessionIndex><samlp:SessionIndex>s2</samlp:SessionIndex>',
          ' NotOnOrAfter="2026-12-03T10:05:00Z"',
        ),
      ),
      options,
    );
    expect(facts).toMatchObject({
      id: '_r1',
      issuer: IDP,
      destination: SLO,
      nameId: 'alice@acme.test',
      sessionIndexes: ['s1', 's2'],
      notOnOrAfter: new Date('2026-12-03T10:05:00Z'),
    });
  });

  it.each([
    ['a DTD', `<!DOCTYPE x [<!ENTITY e "x">]>${request()}`],
    ['another root', request().replace(/LogoutRequest/g, 'AuthnRequest')],
    ['a comment in the NameID', request('<saml:NameID>alice@acme.test<!---->.evil.test</saml:NameID>')],
    ['two NameIDs', request('<saml:NameID>a@x.test</saml:NameID><saml:NameID>b@x.test</saml:NameID>')],
    ['no NameID', request('')],
    ['not well-formed', request().slice(0, -5)],
  ])('refuses %s with saml_logout_request_invalid', (_name, xml) => {
    expect(reasonOf(() => inspectLogoutMessage(redirect(xml), options))).toBe('saml_logout_request_invalid');
  });

  it('refuses an unsigned POST message', () => {
    const post = { ...redirect(request()), binding: 'post' as const, originalQuery: null };
    expect(reasonOf(() => inspectLogoutMessage(post, options))).toBe('saml_logout_signature_invalid');
  });
});

describe('checkLogoutMessage (after the signature verified)', () => {
  const issued = new Date('2026-12-03T10:00:00Z');
  const facts = (o: Partial<LogoutMessageFacts> = {}): LogoutMessageFacts => ({
    kind: 'request',
    id: '_r1',
    issueInstant: issued,
    destination: SLO,
    issuer: IDP,
    notOnOrAfter: null,
    nameId: 'alice@acme.test',
    sessionIndexes: [],
    inResponseTo: null,
    status: null,
    ...o,
  });
  const check = (f: LogoutMessageFacts, nowMs: number) =>
    checkLogoutMessage({
      facts: f,
      idpEntityId: IDP,
      sloUrl: SLO,
      now: new Date(issued.getTime() + nowMs),
      clockSkewMs: 60_000,
      maxAgeMs: 300_000,
    });

  it('accepts a fresh message and keeps its ID until it could no longer be accepted', () => {
    expect(check(facts(), 1000).acceptableUntil).toEqual(new Date(issued.getTime() + 360_000));
    const until = new Date(issued.getTime() + 120_000);
    expect(check(facts({ notOnOrAfter: until }), 1000).acceptableUntil).toEqual(
      new Date(until.getTime() + 60_000),
    );
  });

  it.each([
    ['another issuer', facts({ issuer: 'https://evil.test' }), 0, 'saml_logout_issuer_mismatch'],
    ['no issuer', facts({ issuer: null }), 0, 'saml_logout_issuer_mismatch'],
    [
      'another destination',
      facts({ destination: 'https://x.test/slo' }),
      0,
      'saml_logout_destination_mismatch',
    ],
    ['no destination', facts({ destination: null }), 0, 'saml_logout_destination_mismatch'],
    ['issued in the future', facts(), -120_000, 'saml_logout_expired'],
    ['too old', facts(), 400_000, 'saml_logout_expired'],
    [
      'past NotOnOrAfter',
      facts({ notOnOrAfter: new Date(issued.getTime() + 10_000) }),
      80_000,
      'saml_logout_expired',
    ],
  ])('refuses %s', (_name, f, nowMs, reason) => {
    expect(reasonOf(() => check(f, nowMs))).toBe(reason);
  });
});
