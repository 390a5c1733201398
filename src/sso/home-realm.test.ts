import { normalizeEmail } from './home-realm.js';

describe('normalizeEmail', () => {
  it.each([
    ['  Alice@ACME.test ', 'alice@acme.test'],
    ['bob@bücher.example', 'bob@xn--bcher-kva.example'],
    ['a+tag@sub.acme.test', 'a+tag@sub.acme.test'],
  ])('normalizes %j to %j', (input, expected) => {
    expect(normalizeEmail(input)).toBe(expected);
  });

  it.each([
    ['no-at-sign'],
    ['@acme.test'],
    ['a@localhost'],
    ['a b@acme.test'],
    ['"><script>@x.test'],
    [`${'a'.repeat(250)}@x.test`],
    // Not an address in acme.test, though domainToASCII reads the part after "@" as acme.test.
    ['a@acme.test/x'],
    ['a@acme.test?x'],
  ])('refuses %j', (input) => {
    expect(normalizeEmail(input)).toBeNull();
  });
});
