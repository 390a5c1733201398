import { lookup } from 'node:dns/promises';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { LookupFunction } from 'node:net';
import { rootCertificates } from 'node:tls';
import ipaddr from 'ipaddr.js';
import { BadRequestError } from '../errors.js';

/**
 * Fetches a document an admin pointed us at (IdP metadata URL, OIDC discovery)
 * without turning Gatehouse into an SSRF proxy: HTTPS only, every address the
 * host resolves to must be public unicast (no loopback, private, link-local —
 * 169.254.169.254 is a cloud metadata service — unique-local, CGNAT, …), the
 * connection goes to the address that was checked (no DNS rebinding between
 * check and connect), redirects are not followed, and the answer is cut off at
 * a size cap and a deadline. `allowPrivate` (development setting
 * GATEHOUSE_ALLOW_PRIVATE_METADATA_URLS) lifts the address rule and allows http.
 */
export interface OutboundFetchOptions {
  allowPrivate: boolean;
  /** CIDR ranges allowed besides public addresses (GATEHOUSE_OUTBOUND_ALLOWED_NETWORKS). */
  allowedNetworks: string[];
  timeoutMs: number;
  /** Extra trusted CAs (PEM), added to Node's bundled roots. */
  ca?: string;
}

export interface FetchRequest {
  /** Names the input in error messages, e.g. `metadata_url`. */
  what: string;
  accept: string;
  maxBytes: number;
}

export interface FetchedDocument {
  body: string;
  contentType: string | null;
}

export class FetchRefusedError extends BadRequestError {}

/** Reads the configured extra CA file once (at router construction), so a bad path fails at start. */
export function outboundFetchOptions(config: {
  allowPrivate: boolean;
  allowedNetworks: string[];
  timeoutMs: number;
  caFile?: string | undefined;
}): OutboundFetchOptions {
  return {
    allowPrivate: config.allowPrivate,
    allowedNetworks: config.allowedNetworks,
    timeoutMs: config.timeoutMs,
    ca: config.caFile ? readFileSync(config.caFile, 'utf8') : undefined,
  };
}

/** Whether an address may be fetched from without the development setting. */
export function isPublicAddress(address: string): boolean {
  if (!ipaddr.isValid(address)) return false;
  let parsed = ipaddr.parse(address);
  // ::ffff:10.0.0.1 is 10.0.0.1.
  if (parsed.kind() === 'ipv6' && (parsed as ipaddr.IPv6).isIPv4MappedAddress()) {
    parsed = (parsed as ipaddr.IPv6).toIPv4Address();
  }
  return parsed.range() === 'unicast';
}

/**
 * The address rule of one fetch policy: public unicast, or inside an allowed
 * network, or anything at all under the development setting.
 */
export function addressAllowed(policy: {
  allowPrivate: boolean;
  allowedNetworks: string[];
}): (address: string) => boolean {
  const networks = policy.allowedNetworks.map((cidr) => ipaddr.parseCIDR(cidr));
  return (address) => {
    if (policy.allowPrivate || isPublicAddress(address)) return true;
    if (!ipaddr.isValid(address)) return false;
    let parsed = ipaddr.parse(address);
    if (parsed.kind() === 'ipv6' && (parsed as ipaddr.IPv6).isIPv4MappedAddress())
      parsed = (parsed as ipaddr.IPv6).toIPv4Address();
    return networks.some(([range, bits]) => range.kind() === parsed.kind() && parsed.match(range, bits));
  };
}

/** Checks the URL's form before anything is resolved. */
export function checkFetchUrl(raw: string, what: string, options: { allowPrivate: boolean }): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new FetchRefusedError(`${what}: not an absolute URL`);
  }
  const httpAllowed = options.allowPrivate && url.protocol === 'http:';
  if (url.protocol !== 'https:' && !httpAllowed)
    throw new FetchRefusedError(`${what}: must be an https:// URL`);
  if (url.username || url.password) throw new FetchRefusedError(`${what}: must not carry credentials`);
  return url;
}

async function resolveChecked(
  url: URL,
  what: string,
  allowed: (address: string) => boolean,
  deadline: Promise<never>,
) {
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const addresses = ipaddr.isValid(host)
    ? [{ address: host, family: ipaddr.parse(host).kind() === 'ipv6' ? 6 : 4 }]
    : await Promise.race([lookup(host, { all: true, verbatim: true }), deadline]).catch((error: unknown) => {
        if (error instanceof FetchRefusedError) throw error;
        throw new FetchRefusedError(`${what}: the host ${host} could not be resolved`, { cause: error });
      });
  if (addresses.length === 0) throw new FetchRefusedError(`${what}: the host ${host} has no address`);
  const blocked = addresses.find((a) => !allowed(a.address));
  if (blocked) {
    throw new FetchRefusedError(
      `${what}: ${host} resolves to a private, loopback or link-local address (${blocked.address}); refused`,
    );
  }
  return addresses[0]!;
}

/** GET with the rules above; the body as UTF-8 text. */
export async function guardedFetch(
  raw: string,
  request: FetchRequest,
  options: OutboundFetchOptions,
): Promise<FetchedDocument> {
  const { what } = request;
  const url = checkFetchUrl(raw, what, options);
  // One deadline for resolving, connecting and reading; it aborts the socket too.
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), options.timeoutMs);
  const deadline = new Promise<never>((_, reject) => {
    controller.signal.addEventListener(
      'abort',
      () => reject(new FetchRefusedError(`${what}: no answer within ${options.timeoutMs} ms`)),
      { once: true },
    );
  });
  deadline.catch(() => undefined);
  try {
    const target = await resolveChecked(url, what, addressAllowed(options), deadline);
    // Connect to the address that was checked, whatever the resolver says now.
    const pinned: LookupFunction = (_host, opts, callback) => {
      if ((opts as { all?: boolean }).all) {
        (callback as (e: null, a: { address: string; family: number }[]) => void)(null, [target]);
      } else {
        callback(null, target.address, target.family);
      }
    };
    return await fetchPinned(url, request, options, pinned, controller.signal);
  } finally {
    clearTimeout(timer);
  }
}

function fetchPinned(
  url: URL,
  request: FetchRequest,
  options: OutboundFetchOptions,
  pinned: LookupFunction,
  signal: AbortSignal,
): Promise<FetchedDocument> {
  const { what, maxBytes } = request;
  return new Promise((resolve, reject) => {
    const fail = (message: string, cause?: unknown) => {
      req.destroy();
      const why = signal.aborted ? `no answer within ${options.timeoutMs} ms` : message;
      reject(new FetchRefusedError(`${what}: ${why}`, { cause }));
    };
    const common = {
      method: 'GET',
      headers: { accept: request.accept, 'user-agent': 'Gatehouse' },
      lookup: pinned,
      // A fresh connection every time: no pooled socket to an earlier address.
      agent: false as const,
      signal,
    };
    const req =
      url.protocol === 'https:'
        ? https.request(url, { ...common, ca: options.ca ? [...rootCertificates, options.ca] : undefined })
        : http.request(url, common);
    req.on('error', (error) => fail(`could not be fetched (${describeNetworkError(error)})`, error));
    req.on('response', (res) => {
      const status = res.statusCode ?? 0;
      if (status >= 300 && status < 400) {
        res.resume();
        return fail(`answered a redirect (HTTP ${status}); redirects are not followed, give the final URL`);
      }
      if (status !== 200) {
        res.resume();
        return fail(`answered HTTP ${status}`);
      }
      const declared = Number(res.headers['content-length'] ?? 0);
      if (declared > maxBytes) {
        res.resume();
        return fail(`the document is larger than ${maxBytes} bytes`);
      }
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > maxBytes) {
          res.destroy();
          return fail(`the document is larger than ${maxBytes} bytes`);
        }
        chunks.push(chunk);
      });
      res.on('error', (error) => fail('the answer was cut off', error));
      res.on('end', () => {
        if (size > maxBytes) return;
        resolve({
          body: Buffer.concat(chunks).toString('utf8'),
          contentType: res.headers['content-type'] ?? null,
        });
      });
    });
    req.end();
  });
}

function describeNetworkError(error: Error): string {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'ECONNREFUSED') return 'connection refused';
  if (code && /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS/.test(code))
    return 'the TLS certificate is not trusted';
  return code ?? error.message;
}
