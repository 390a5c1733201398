import { challengeRecordName, emailDomain, normalizeDomain, splitEmailAddress } from './domain-name.js';

describe('normalizeDomain', () => {
  it.each([
    ['acme.com', 'acme.com'],
    ['  Acme.COM  ', 'acme.com'],
    ['acme.com.', 'acme.com'],
    ['login.acme.co.uk', 'login.acme.co.uk'],
    ['Bücher.example', 'xn--bcher-kva.example'],
    ['münchen.de', 'xn--mnchen-3ya.de'],
    ['acme.test', 'acme.test'],
    ['foo.github.io', 'foo.github.io'],
  ])('normalizes %j to %j', (input, expected) => {
    expect(normalizeDomain(input)).toBe(expected);
  });

  it.each([
    ['com', /public suffix/],
    ['co.uk', /public suffix/],
    ['github.io', /public suffix/],
    ['*.acme.com', /wildcards/],
    ['acme.*', /wildcards/],
    ['1.2.3.4', /IP address/],
    ['::1', /IP address/],
    ['[::1]', /IP address/],
    ['0x7f.1', /IP address/],
    ['1.2.3', /IP address/],
    ['', /empty/],
    ['   ', /empty/],
    ['localhost', /two labels/],
    ['a..b.com', /not a valid domain|invalid label/],
    ['-bad.com', /invalid label|not a valid/],
    ['under_score.com', /invalid label/],
    ['acme.com/path', /invalid characters/],
    ['user@acme.com', /invalid characters/],
    ['acme.com:443', /invalid characters/],
    ['ac me.com', /invalid characters/],
    ['foo.123', /not a valid domain|numeric/],
    [`${'a'.repeat(64)}.com`, /invalid label/],
    [`${'abcdefghi.'.repeat(26)}com`, /253/],
  ])('refuses %j', (input, message) => {
    expect(() => normalizeDomain(input)).toThrow(message);
  });

  it('names the challenge record under the domain', () => {
    expect(challengeRecordName('acme.com')).toBe('_gatehouse-challenge.acme.com');
  });
});

describe('emailDomain', () => {
  it.each([
    ['alice@acme.com', 'acme.com'],
    // Upper case: the domain compares with stored (lower-case) domains by plain equality.
    ['Alice@ACME.Com', 'acme.com'],
    // IDNA (UTS #46): the address's domain in the A-label form domains are stored in.
    ['bob@bücher.example', 'xn--bcher-kva.example'],
    ['bob@BÜCHER.example', 'xn--bcher-kva.example'],
    ['bob@xn--bcher-kva.example', 'xn--bcher-kva.example'],
    // RFC 5321 §4.1.2: a quoted local part may hold "@"; the domain follows the last one.
    ['"a@b"@acme.com', 'acme.com'],
    ['"evil.com@x"@acme.com', 'acme.com'],
  ])('reads the domain of %j as %j', (address, expected) => {
    expect(emailDomain(address)).toBe(expected);
  });

  it.each([
    ['no-at-sign'],
    [''],
    ['@acme.com'],
    ['alice@'],
    // domainToASCII would cut these to acme.com: not an address in acme.com.
    ['alice@acme.com/x'],
    ['alice@acme.com?x'],
    ['alice@acme.com#x'],
    ['alice@acme.com\\x'],
    ['alice@acme%2Ecom'],
    ['alice@acme.com x'],
    ['alice@acme.com:443'],
    ['alice@acme.com／x'],
  ])('answers null for %j', (address) => {
    expect(emailDomain(address)).toBeNull();
  });

  it('keeps the local part as written, the domain normalised', () => {
    expect(splitEmailAddress('"Jo@Home"@Bücher.example')).toEqual({
      localPart: '"Jo@Home"',
      domain: 'xn--bcher-kva.example',
    });
  });
});
