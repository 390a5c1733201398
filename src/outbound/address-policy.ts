import { lookup } from 'node:dns/promises';
import ipaddr from 'ipaddr.js';

/**
 * Which addresses may Gatehouse call? (docs/architecture.md, `outbound`.)
 * Every server-side request names a URL an admin, an operator or an IdP chose,
 * so it must not turn Gatehouse into an SSRF proxy: https only, and every
 * address the host resolves to must be public unicast (no loopback, private,
 * link-local — 169.254.169.254 is a cloud metadata service — unique-local,
 * CGNAT, …) or inside a network the operator allowed
 * (GATEHOUSE_OUTBOUND_ALLOWED_NETWORKS, e.g. an on-premises IdP).
 * `allowPrivate` (development setting GATEHOUSE_ALLOW_PRIVATE_METADATA_URLS)
 * lifts the address rule and allows http.
 */
export interface AddressPolicy {
  allowPrivate: boolean;
  /** CIDR ranges allowed besides public addresses (GATEHOUSE_OUTBOUND_ALLOWED_NETWORKS). */
  allowedNetworks: string[];
}

export interface ResolvedAddress {
  address: string;
  family: number;
}

/** ::ffff:10.0.0.1 is 10.0.0.1. */
function unmapped(address: string): ipaddr.IPv4 | ipaddr.IPv6 {
  const parsed = ipaddr.parse(address);
  if (parsed.kind() === 'ipv6' && (parsed as ipaddr.IPv6).isIPv4MappedAddress()) {
    return (parsed as ipaddr.IPv6).toIPv4Address();
  }
  return parsed;
}

/** Whether an address may be called without the development setting or an allowed network. */
export function isPublicAddress(address: string): boolean {
  if (!ipaddr.isValid(address)) return false;
  return unmapped(address).range() === 'unicast';
}

/** The address rule of one policy: public unicast, or inside an allowed network, or anything under the development setting. */
export function addressAllowed(policy: AddressPolicy): (address: string) => boolean {
  const networks = policy.allowedNetworks.map((cidr) => ipaddr.parseCIDR(cidr));
  return (address) => {
    if (policy.allowPrivate || isPublicAddress(address)) return true;
    if (!ipaddr.isValid(address)) return false;
    const parsed = unmapped(address);
    return networks.some(([range, bits]) => range.kind() === parsed.kind() && parsed.match(range, bits));
  };
}

/**
 * The URL's form, before anything is resolved: absolute, https (http only
 * under the development setting), no credentials. The URL, or what is wrong
 * with it (callers phrase the refusal for their surface).
 */
export function targetUrl(raw: string, policy: Pick<AddressPolicy, 'allowPrivate'>): URL | string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return 'not an absolute URL';
  }
  const httpAllowed = policy.allowPrivate && url.protocol === 'http:';
  if (url.protocol !== 'https:' && !httpAllowed) return 'must be an https:// URL';
  if (url.username || url.password) return 'must not carry credentials';
  return url;
}

/** The host as the resolver and ipaddr.js take it (an IPv6 literal without brackets). */
export function hostOf(url: URL): string {
  return url.hostname.replace(/^\[|\]$/g, '');
}

/** Every address of a host; an IP literal is its own answer (no lookup). */
export async function resolveHost(host: string): Promise<ResolvedAddress[]> {
  if (ipaddr.isValid(host)) return [{ address: host, family: ipaddr.parse(host).kind() === 'ipv6' ? 6 : 4 }];
  return lookup(host, { all: true, verbatim: true });
}

/**
 * Registration-time check of an operator URL (webhook_url,
 * backchannel_logout_uri, initiate_login_uri): the form, then — when the host
 * resolves now — the address rule. A name that does not resolve yet (or not
 * within `timeoutMs`) is accepted: it is checked again at every request.
 * Resolves to a problem message, or null when the URL is acceptable.
 */
export async function outboundTargetProblem(
  raw: string,
  policy: AddressPolicy & { timeoutMs: number },
): Promise<string | null> {
  const url = targetUrl(raw, policy);
  if (typeof url === 'string') return url;
  const host = hostOf(url);
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<null>((resolve) => {
    timer = setTimeout(() => resolve(null), policy.timeoutMs);
  });
  const addresses = await Promise.race([resolveHost(host).catch(() => null), deadline]).finally(() =>
    clearTimeout(timer),
  );
  const allowed = addressAllowed(policy);
  const blocked = addresses?.find((a) => !allowed(a.address));
  return blocked
    ? `${host} resolves to a private, loopback, link-local or metadata address (${blocked.address})`
    : null;
}
