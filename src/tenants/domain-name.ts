import { isIP } from 'node:net';
import { domainToASCII } from 'node:url';
import { parse } from 'tldts';
import { BadRequestError } from '../errors.js';

/** The DNS label under which a tenant publishes its verification token. */
export const CHALLENGE_LABEL = '_gatehouse-challenge';

const LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
/** Characters that make a URL or an email address out of a domain; domainToASCII would cut at them. */
const NOT_IN_A_DOMAIN = /[\s/\\?#@:[\]%,;"'<>|^`{}=+!$&()~]/u;

/**
 * A domain as a tenant claims it: trimmed, lower-case, IDNA (UTS #46) to ASCII,
 * one trailing dot dropped. Refuses wildcards, IP addresses, malformed labels
 * and public suffixes (`com`, `co.uk`, and private ones such as `github.io`):
 * claiming a suffix would claim every email address under it.
 */
export function normalizeDomain(input: string): string {
  let raw = input.trim();
  if (raw.endsWith('.')) raw = raw.slice(0, -1);
  if (raw === '') throw new BadRequestError('domain: must not be empty');
  if (raw.includes('*')) throw new BadRequestError(`domain: wildcards are not allowed ("${input.trim()}")`);
  if (isIP(raw) || /^\[.*\]$/.test(raw))
    throw new BadRequestError(`domain: an IP address is not a domain ("${raw}")`);
  if (NOT_IN_A_DOMAIN.test(raw))
    throw new BadRequestError(`domain: "${raw}" is not a domain name (invalid characters)`);

  const ascii = domainToASCII(raw);
  if (ascii === '') throw new BadRequestError(`domain: "${raw}" is not a valid domain name`);
  // The URL host parser reads numeric forms such as 1.2.3 or 0x7f.1 as IPv4.
  if (isIP(ascii)) throw new BadRequestError(`domain: an IP address is not a domain ("${raw}")`);
  if (ascii.length > 253) throw new BadRequestError('domain: longer than 253 characters');

  const labels = ascii.split('.');
  const bad = labels.find((l) => !LABEL.test(l));
  if (bad !== undefined)
    throw new BadRequestError(
      `domain: invalid label "${bad}" (letters, digits and inner hyphens, 1 to 63 characters)`,
    );
  if (/^\d+$/.test(labels[labels.length - 1] ?? ''))
    throw new BadRequestError(`domain: "${ascii}" ends in a numeric label`);

  const parsed = parse(ascii, { allowPrivateDomains: true });
  if (parsed.isIp) throw new BadRequestError(`domain: an IP address is not a domain ("${raw}")`);
  const listedSuffix = parsed.publicSuffix === ascii && (parsed.isIcann || parsed.isPrivate);
  if (labels.length < 2 && !listedSuffix)
    throw new BadRequestError(`domain: "${ascii}" needs at least two labels`);
  if (!parsed.domain || parsed.publicSuffix === ascii)
    throw new BadRequestError(
      `domain: "${ascii}" is a public suffix; claim a domain registered under it instead`,
    );
  return ascii;
}

/**
 * An email address split at its last `@`, the domain in the form domains are
 * stored in (lower-case ASCII, IDNA/UTS #46, as normalizeDomain writes them), so
 * comparing it with a verified domain is a plain `=`. The last `@` because a
 * quoted local part may itself hold one (RFC 5321 §4.1.2: `"a@b"@acme.com`) and a
 * domain never does. Null when there is no local part, no domain, or the domain
 * part holds a character no domain has: domainToASCII would read `acme.com/x`,
 * `acme.com?x` or `acme%2Ecom` as `acme.com`, and such an address must not
 * count as one in a verified domain.
 */
export function splitEmailAddress(address: string): { localPart: string; domain: string } | null {
  const at = address.lastIndexOf('@');
  if (at <= 0) return null;
  const raw = address.slice(at + 1);
  if (raw === '' || NOT_IN_A_DOMAIN.test(raw)) return null;
  const domain = domainToASCII(raw);
  if (domain === '') return null;
  return { localPart: address.slice(0, at), domain };
}

/** The domain of an email address, as splitEmailAddress reads it (null when it has none). */
export function emailDomain(address: string): string | null {
  return splitEmailAddress(address)?.domain ?? null;
}

/** Where the TXT record goes: `_gatehouse-challenge.<domain>`. */
export function challengeRecordName(domain: string): string {
  return `${CHALLENGE_LABEL}.${domain}`;
}
