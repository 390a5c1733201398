import { readFileSync } from 'node:fs';
import { parseIdpMetadata } from '../../src/connections/saml-metadata.js';

const fixture = (name: string) => readFileSync(`fixtures/saml/metadata/${name}`, 'utf8');
const parse = (xml: string) =>
  parseIdpMetadata(xml, { now: new Date('2026-01-01T00:00:00Z'), allowHttp: false });

describe('IdP metadata attacks', () => {
  it.each([
    ['metadata.xxe.xml', /DOCTYPE or ENTITY declaration is not allowed/],
    ['metadata.billion-laughs.xml', /DOCTYPE or ENTITY declaration is not allowed/],
    ['metadata.oversize.xml', /larger than 256 KiB/],
    ['metadata.no-signing-cert.xml', /no signing certificate/],
    ['metadata.not-metadata.xml', /not a SAML 2.0 metadata document/],
  ])('refuses %s, naming the problem', (file, message) => {
    expect(() => parse(fixture(file))).toThrow(message);
  });

  it('refuses a DOCTYPE however it is spelt, even without entities', () => {
    const okta = fixture('okta.xml');
    for (const doctype of ['<!DOCTYPE x>', '<!doctype x>', '<!DocType x [ ]>']) {
      const xml = okta.replace('?>', `?>${doctype}`);
      expect(() => parse(xml)).toThrow(/DOCTYPE or ENTITY/);
    }
  });

  it('never reads a local file through an external entity', () => {
    // The refusal happens before parsing: no part of /etc/passwd can show up in an error either.
    let message = '';
    try {
      parse(fixture('metadata.xxe.xml'));
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).not.toMatch(/root:/);
    expect(message).toMatch(/^metadata: /);
  });

  it.each([
    ['too deep', `<md:Extensions>${'<d>'.repeat(20_000)}${'</d>'.repeat(20_000)}</md:Extensions>`],
    ['too many elements', `<md:Extensions>${'<d/>'.repeat(25_000)}</md:Extensions>`],
  ])('refuses metadata that is %s, under the size cap, before any DOM is built', (label, extensions) => {
    const okta = fixture('okta.xml');
    const xml = okta.replace(/(<md:IDPSSODescriptor)/, `${extensions}$1`);
    expect(xml).not.toBe(okta);
    expect(Buffer.byteLength(xml)).toBeLessThan(256 * 1024);
    expect(() => parse(xml)).toThrow(new RegExp(`metadata: the document is ${label}`));
  });
});
