import { lookup } from 'node:dns/promises';
import http from 'node:http';
import https from 'node:https';
import type { LookupFunction } from 'node:net';
import { rootCertificates } from 'node:tls';
import ipaddr from 'ipaddr.js';
import type { CustomFetch, CustomFetchOptions } from 'openid-client';
import { addressAllowed, checkFetchUrl } from '../../connections/fetch-guard.js';
import { LoginRefusedError } from '../reasons.js';

/**
 * openid-client's `customFetch` for the calls a login makes to a tenant's IdP
 * (discovery, JWKS, token, userinfo), under the outbound fetch guard's rules
 * (src/connections/fetch-guard.ts): https only, every address the host resolves
 * to must be public unicast — or inside an operator-allowed network
 * (GATEHOUSE_OUTBOUND_ALLOWED_NETWORKS) — the connection goes to the address
 * that was checked (no DNS rebinding), redirects are handed back unfollowed,
 * and the answer is cut off at a size cap. A discovery document cannot point
 * Gatehouse at 169.254.169.254 or an internal service. `allowPrivate`
 * (GATEHOUSE_ALLOW_PRIVATE_METADATA_URLS, development only) lifts the address
 * rule and allows http.
 *
 * A refused address ends the login with `connection_misconfigured` before any
 * connection is opened; a network failure is a `TypeError('fetch failed')`,
 * as from the platform fetch (reason `oidc_provider_unavailable`).
 */
export interface OidcFetchPolicy {
  allowPrivate: boolean;
  /** CIDR ranges allowed besides public addresses. */
  allowedNetworks: string[];
  timeoutMs: number;
  /** Extra trusted CAs (PEM), added to Node's bundled roots. */
  ca?: string | undefined;
  maxBytes?: number;
}

const DEFAULT_MAX_BYTES = 512 * 1024;
const NULL_BODY_STATUS = new Set([101, 204, 205, 304]);

type Address = { address: string; family: number };

export function guardedOidcFetch(policy: OidcFetchPolicy): CustomFetch {
  const allowed = addressAllowed(policy);

  return async (raw, options) => {
    let url: URL;
    try {
      url = checkFetchUrl(raw, 'IdP endpoint', { allowPrivate: policy.allowPrivate });
    } catch (error) {
      throw refused(error instanceof Error ? error.message : 'IdP endpoint refused', raw);
    }
    const target = await resolveAllowed(url, allowed);
    return send(url, options, target, policy);
  };
}

function refused(message: string, url: string): LoginRefusedError {
  // The URL's origin and path only: a query string may carry a token.
  let shown: string;
  try {
    const u = new URL(url);
    shown = `${u.origin}${u.pathname}`;
  } catch {
    shown = '(not a URL)';
  }
  return new LoginRefusedError('connection_misconfigured', `outbound call refused: ${message} [${shown}]`);
}

async function resolveAllowed(url: URL, allowed: (address: string) => boolean): Promise<Address> {
  const host = url.hostname.replace(/^\[|\]$/g, '');
  let addresses: Address[];
  if (ipaddr.isValid(host)) {
    addresses = [{ address: host, family: ipaddr.parse(host).kind() === 'ipv6' ? 6 : 4 }];
  } else {
    try {
      addresses = await lookup(host, { all: true, verbatim: true });
    } catch (cause) {
      throw new TypeError('fetch failed', { cause });
    }
  }
  const first = addresses[0];
  if (!first) throw new TypeError('fetch failed', { cause: new Error(`${host} has no address`) });
  const blocked = addresses.find((a) => !allowed(a.address));
  if (blocked)
    throw refused(
      `${host} resolves to a private, loopback or link-local address (${blocked.address})`,
      url.href,
    );
  return first;
}

function bodyBuffer(body: CustomFetchOptions['body']): Buffer | undefined {
  if (body === undefined || body === null) return undefined;
  if (typeof body === 'string') return Buffer.from(body);
  if (body instanceof URLSearchParams) return Buffer.from(body.toString());
  if (body instanceof ArrayBuffer) return Buffer.from(body);
  if (body instanceof Uint8Array) return Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  throw new TypeError('fetch failed', { cause: new Error('streamed request bodies are not supported') });
}

function send(url: URL, options: CustomFetchOptions, target: Address, policy: OidcFetchPolicy) {
  const maxBytes = policy.maxBytes ?? DEFAULT_MAX_BYTES;
  const body = bodyBuffer(options.body);
  // Connect to the address that was checked, whatever the resolver says now.
  const pinned: LookupFunction = (_host, opts, callback) => {
    if ((opts as { all?: boolean }).all) (callback as (e: null, a: Address[]) => void)(null, [target]);
    else callback(null, target.address, target.family);
  };
  const signals = [AbortSignal.timeout(policy.timeoutMs), ...(options.signal ? [options.signal] : [])];
  const signal = AbortSignal.any(signals);
  const headers = { ...options.headers, ...(body ? { 'content-length': String(body.length) } : {}) };
  return new Promise<Response>((resolve, reject) => {
    const fail = (cause: unknown) => {
      req.destroy();
      reject(new TypeError('fetch failed', { cause }));
    };
    const common = { method: options.method, headers, lookup: pinned, agent: false as const, signal };
    const req =
      url.protocol === 'https:'
        ? https.request(url, { ...common, ca: policy.ca ? [...rootCertificates, policy.ca] : undefined })
        : http.request(url, common);
    req.on('error', fail);
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > maxBytes) {
          res.destroy();
          fail(new Error(`the answer is larger than ${maxBytes} bytes`));
          return;
        }
        chunks.push(chunk);
      });
      res.on('error', fail);
      res.on('end', () => {
        if (size > maxBytes) return;
        const responseHeaders = new Headers();
        for (const [name, value] of Object.entries(res.headers)) {
          if (value === undefined) continue;
          for (const v of Array.isArray(value) ? value : [value]) responseHeaders.append(name, v);
        }
        const status = res.statusCode ?? 502;
        try {
          resolve(
            new Response(NULL_BODY_STATUS.has(status) ? null : Buffer.concat(chunks), {
              status,
              statusText: res.statusMessage ?? '',
              headers: responseHeaders,
            }),
          );
        } catch (error) {
          reject(new TypeError('fetch failed', { cause: error }));
        }
      });
    });
    req.end(body);
  });
}
