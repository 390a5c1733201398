import { Resolver } from 'node:dns/promises';
import { DomainError } from '../errors.js';

/** What a TXT lookup found: the records' texts, or why there are none. */
export type TxtLookup =
  | { kind: 'found'; values: string[] }
  | { kind: 'none'; reason: 'no_such_name' | 'no_txt_record' }
  | { kind: 'failed'; code: string };

export interface TxtResolver {
  lookupTxt(name: string): Promise<TxtLookup>;
}

const NONE: Record<string, 'no_such_name' | 'no_txt_record'> = {
  ENOTFOUND: 'no_such_name',
  ENODATA: 'no_txt_record',
};

/**
 * TXT lookups through node:dns with the configured servers (GATEHOUSE_DNS_SERVERS,
 * `ip[:port]`), or the system's when none is set, and a timeout per try.
 */
export function createTxtResolver(options: { servers: string[]; timeoutMs: number }): TxtResolver {
  const resolver = new Resolver({ timeout: options.timeoutMs, tries: 2 });
  if (options.servers.length > 0) resolver.setServers(options.servers);
  return {
    async lookupTxt(name) {
      try {
        const records = await resolver.resolveTxt(name);
        // RFC 7208 §3.3 convention: a record's character-strings are one text, joined without spaces.
        return { kind: 'found', values: records.map((chunks) => chunks.join('')) };
      } catch (error) {
        const code = (error as { code?: unknown } | null)?.code;
        const reason = typeof code === 'string' ? NONE[code] : undefined;
        if (reason) return { kind: 'none', reason };
        return { kind: 'failed', code: typeof code === 'string' ? code : 'EUNKNOWN' };
      }
    },
  };
}

/** Resolver-side trouble: nothing is known about the domain, so the caller may retry. */
const TRANSIENT = new Set(['ETIMEOUT', 'ECONNREFUSED', 'ECONNRESET', 'ECANCELLED', 'EUNKNOWN']);

const quoted = (values: string[]) =>
  values
    .slice(0, 5)
    .map((v) => JSON.stringify(v.length > 100 ? `${v.slice(0, 100)}…` : v))
    .join(', ') + (values.length > 5 ? `, and ${values.length - 5} more` : '');

/**
 * Looks for `expected` among the TXT records at `recordName`. When it is not
 * there, throws one of four answers an operator acts on differently:
 * - `dns_record_not_found` (400): the name or its TXT record does not exist — publish it;
 * - `dns_record_mismatch` (400): TXT records exist but none is the challenge — fix the value;
 * - `dns_unavailable` (503): the resolver timed out or could not be reached — nothing was
 *   learnt about the domain, retry (or check GATEHOUSE_DNS_SERVERS);
 * - `dns_lookup_failed` (400): the resolver answered with an error (SERVFAIL, REFUSED).
 */
export async function checkChallengeRecord(
  resolver: TxtResolver,
  recordName: string,
  expected: string,
): Promise<void> {
  const found = await resolver.lookupTxt(recordName);
  if (found.kind === 'found' && found.values.some((v) => v.trim() === expected)) return;
  if (found.kind === 'failed') {
    if (TRANSIENT.has(found.code))
      throw new DomainError(
        'dns_unavailable',
        `DNS lookup of ${recordName} failed (${found.code}): the DNS server did not answer; try again`,
      );
    throw new DomainError(
      'dns_lookup_failed',
      `DNS lookup of ${recordName} failed (${found.code}); the domain is not verified`,
    );
  }
  if (found.kind === 'none' || found.values.length === 0)
    throw new DomainError(
      'dns_record_not_found',
      found.kind === 'none' && found.reason === 'no_such_name'
        ? `No TXT record found: ${recordName} does not exist; the domain is not verified`
        : `No TXT record found at ${recordName}; the domain is not verified`,
    );
  throw new DomainError(
    'dns_record_mismatch',
    `The TXT record at ${recordName} does not match the challenge: found ${quoted(found.values)}; the domain is not verified`,
  );
}
