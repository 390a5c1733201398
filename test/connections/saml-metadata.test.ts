import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import {
  BINDING_POST,
  BINDING_REDIRECT,
  parseCertificate,
  parseIdpMetadata,
} from '../../src/connections/saml-metadata.js';

const fixture = (name: string) => readFileSync(`fixtures/saml/metadata/${name}`, 'utf8');
const NOW = new Date('2026-01-01T00:00:00Z');
const parse = (xml: string, allowHttp = false) => parseIdpMetadata(xml, { now: NOW, allowHttp });

/** The X509Certificate bodies of an IDPSSODescriptor, straight from the text (independent of the parser). */
function idpCertificateBodies(xml: string): string[] {
  const idp = xml.slice(xml.search(/<(md:)?IDPSSODescriptor/));
  return [...idp.matchAll(/<(?:\w+:)?X509Certificate>([^<]+)</g)].map((m) => m[1]!.replace(/\s+/g, ''));
}

describe('IdP metadata import', () => {
  it.each([
    {
      file: 'okta.xml',
      entityId: 'http://www.okta.com/exk1fcia6d6EMsf331d8',
      ssoUrl: 'https://acme.okta.com/app/acme_gatehouse_1/exk1fcia6d6EMsf331d8/sso/saml',
      certificates: 1,
    },
    {
      file: 'entra.xml',
      entityId: 'https://sts.windows.net/72f988bf-86f1-41af-91ab-2d7cd011db47/',
      ssoUrl: 'https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/saml2',
      certificates: 2,
    },
    {
      file: 'google.xml',
      entityId: 'https://accounts.google.com/o/saml2?idpid=C03abc123',
      ssoUrl: 'https://accounts.google.com/o/saml2/idp?idpid=C03abc123',
      certificates: 1,
    },
  ])('reads entity id, redirect SSO URL and every signing certificate of $file', (expected) => {
    const xml = fixture(expected.file);
    const metadata = parse(xml);
    expect(metadata.entityId).toBe(expected.entityId);
    expect(metadata.ssoUrl).toBe(expected.ssoUrl);
    expect(metadata.ssoBinding).toBe(BINDING_REDIRECT);
    expect(metadata.warnings).toEqual([]);
    expect(metadata.certificates).toHaveLength(expected.certificates);
    const bodies = idpCertificateBodies(xml);
    metadata.certificates.forEach((cert, i) => {
      const x509 = new X509Certificate(Buffer.from(bodies[i]!, 'base64'));
      expect(cert.fingerprintSha256).toBe(x509.fingerprint256);
      expect(cert.pem).toBe(x509.toString());
      expect(cert.notAfter).toBe('2045-01-01T00:00:00.000Z');
      expect(cert.notBefore).toBe('2025-01-01T00:00:00.000Z');
    });
  });

  it('ignores keys outside the IDPSSODescriptor (Entra WS-Federation role)', () => {
    const xml = fixture('entra.xml');
    const wsFedBody = [...xml.matchAll(/x:X509Certificate>([^<]+)</g)][0]![1]!;
    const wsFed = new X509Certificate(Buffer.from(wsFedBody, 'base64')).fingerprint256;
    expect(parse(xml).certificates.map((c) => c.fingerprintSha256)).not.toContain(wsFed);
  });

  it('falls back to HTTP-POST when there is no HTTP-Redirect SSO service', () => {
    const xml = fixture('okta.xml').replace(/<md:SingleSignOnService Binding="[^"]+Redirect"[^>]*\/>/, '');
    expect(parse(xml).ssoBinding).toBe(BINDING_POST);
  });

  it('accepts an expired certificate with a warning', () => {
    const metadata = parse(fixture('metadata.expired-cert.xml'));
    expect(metadata.certificates).toHaveLength(1);
    expect(metadata.certificates[0]!.notAfter).toBe('2021-01-01T00:00:00.000Z');
    expect(metadata.warnings).toEqual([expect.stringMatching(/expired on 2021-01-01/)]);
  });

  it('picks the one IdP out of an EntitiesDescriptor', () => {
    const inner = fixture('okta.xml').replace(/^<\?xml[^>]*\?>/, '');
    const xml = `<md:EntitiesDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata">${inner}</md:EntitiesDescriptor>`;
    expect(parse(xml).entityId).toBe('http://www.okta.com/exk1fcia6d6EMsf331d8');
  });

  it('refuses an EntitiesDescriptor with several IdPs', () => {
    const inner = fixture('okta.xml').replace(/^<\?xml[^>]*\?>/, '');
    const xml = `<md:EntitiesDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata">${inner}${inner}</md:EntitiesDescriptor>`;
    expect(() => parse(xml)).toThrow(/describes 2 identity providers/);
  });

  it('refuses an http SSO URL unless the development setting allows it', () => {
    const xml = fixture('google.xml').replace(
      'https://accounts.google.com/o/saml2/idp',
      'http://localhost/idp',
    );
    expect(() => parse(xml)).toThrow(/SingleSignOnService Location must be https/);
    expect(parse(xml, true).ssoUrl).toMatch(/^http:\/\/localhost\/idp/);
  });

  it('refuses SP metadata (no IDPSSODescriptor)', () => {
    const xml = `<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="https://sp.example.com"><md:SPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol"><md:AssertionConsumerService Binding="${BINDING_POST}" Location="https://sp.example.com/acs" index="0"/></md:SPSSODescriptor></md:EntityDescriptor>`;
    expect(() => parse(xml)).toThrow(/exactly one IDPSSODescriptor/);
  });

  it('ignores look-alike elements in another namespace', () => {
    const xml = fixture('okta.xml').replace(
      /urn:oasis:names:tc:SAML:2.0:metadata/,
      'urn:example:not-metadata',
    );
    expect(() => parse(xml)).toThrow(/not a SAML 2.0 metadata document/);
  });

  it('refuses a certificate that is not X.509', () => {
    const xml = fixture('okta.xml').replace(/X509Certificate>[^<]+</, 'X509Certificate>bm90IGEgY2VydA==<');
    expect(() => parse(xml)).toThrow(/not a valid X\.509 certificate/);
  });

  it('refuses XML that is not well-formed', () => {
    expect(() =>
      parse('<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata"><a></b>'),
    ).toThrow(/not well-formed XML/);
    expect(() => parse('just text')).toThrow(/not well-formed XML/);
  });

  it('parses PEM certificates given directly', () => {
    const body = idpCertificateBodies(fixture('okta.xml'))[0]!;
    const pem = `-----BEGIN CERTIFICATE-----\n${body.match(/.{1,64}/g)!.join('\n')}\n-----END CERTIFICATE-----\n`;
    expect(parseCertificate(pem, 'certificates[0]').fingerprintSha256).toBe(
      parse(fixture('okta.xml')).certificates[0]!.fingerprintSha256,
    );
  });
});
