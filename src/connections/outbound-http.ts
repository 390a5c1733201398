import { lookup } from 'node:dns/promises';
import http from 'node:http';
import https from 'node:https';
import type { LookupFunction } from 'node:net';
import { rootCertificates } from 'node:tls';
import ipaddr from 'ipaddr.js';
import { addressAllowed, FetchRefusedError } from './fetch-guard.js';

/**
 * Outbound HTTP to a URL an operator, tenant admin or IdP named (OIDC
 * endpoints, webhook URLs, back-channel logout URIs), under the address rule
 * of fetch-guard.ts: every address the host resolves to must be public unicast
 * or inside GATEHOUSE_OUTBOUND_ALLOWED_NETWORKS (anything under the
 * development setting `allowPrivate`, which also allows http), the socket is
 * opened to the address that was checked (a DNS answer that changes between
 * check and connect is never used), redirects are handed back unfollowed and
 * the answer is cut off at a size cap and a deadline.
 */
export interface OutboundHttpPolicy {
  allowPrivate: boolean;
  /** CIDR ranges allowed besides public addresses. */
  allowedNetworks: string[];
  timeoutMs: number;
  /** Extra trusted CAs (PEM), added to Node's bundled roots. */
  ca?: string | undefined;
  maxBytes?: number;
}

export interface OutboundRequestInit {
  method?: string;
  headers?: Record<string, string>;
  body?: string | URLSearchParams | ArrayBuffer | Uint8Array | null;
  signal?: AbortSignal | null;
}

/** A fetch-shaped function (the subset Gatehouse uses) that obeys the policy. */
export type GuardedFetch = (url: string, init?: OutboundRequestInit) => Promise<Response>;

/** Builds the error a refused target becomes (its message names host and address, never a query). */
export type RefusalFactory = (message: string, url: string) => Error;

const DEFAULT_MAX_BYTES = 512 * 1024;
const NULL_BODY_STATUS = new Set([101, 204, 205, 304]);

type Address = { address: string; family: number };

/** The URL without its query string or fragment (they may carry a token). */
export function shownUrl(raw: string): string {
  try {
    const u = new URL(raw);
    return `${u.origin}${u.pathname}`;
  } catch {
    return '(not a URL)';
  }
}

const defaultRefusal: RefusalFactory = (message, url) =>
  new FetchRefusedError(`outbound call refused: ${message} [${shownUrl(url)}]`);

/** Scheme, credentials and a host of the right form; the address rule comes after resolution. */
function parseTarget(raw: string, policy: Pick<OutboundHttpPolicy, 'allowPrivate'>): URL | string {
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

async function resolveHost(host: string): Promise<Address[]> {
  if (ipaddr.isValid(host)) return [{ address: host, family: ipaddr.parse(host).kind() === 'ipv6' ? 6 : 4 }];
  return lookup(host, { all: true, verbatim: true });
}

/**
 * Registration-time check of an operator URL (webhook_url,
 * backchannel_logout_uri, initiate_login_uri): the form, then — when the host
 * resolves now — the address rule. A name that does not resolve yet is
 * accepted (it is checked again at every delivery). Resolves to a problem
 * message, or null when the URL is acceptable.
 */
export async function outboundTargetProblem(
  raw: string,
  policy: Pick<OutboundHttpPolicy, 'allowPrivate' | 'allowedNetworks' | 'timeoutMs'>,
): Promise<string | null> {
  const url = parseTarget(raw, policy);
  if (typeof url === 'string') return url;
  const host = url.hostname.replace(/^\[|\]$/g, '');
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

export function guardedHttpFetch(
  policy: OutboundHttpPolicy,
  refused: RefusalFactory = defaultRefusal,
): GuardedFetch {
  const allowed = addressAllowed(policy);
  return async (raw, init = {}) => {
    const url = parseTarget(raw, policy);
    if (typeof url === 'string') throw refused(url, raw);
    const target = await resolveAllowed(url, allowed, refused);
    return send(url, init, target, policy);
  };
}

async function resolveAllowed(
  url: URL,
  allowed: (address: string) => boolean,
  refused: RefusalFactory,
): Promise<Address> {
  const host = url.hostname.replace(/^\[|\]$/g, '');
  let addresses: Address[];
  try {
    addresses = await resolveHost(host);
  } catch (cause) {
    throw new TypeError('fetch failed', { cause });
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

function bodyBuffer(body: OutboundRequestInit['body']): Buffer | undefined {
  if (body === undefined || body === null) return undefined;
  if (typeof body === 'string') return Buffer.from(body);
  if (body instanceof URLSearchParams) return Buffer.from(body.toString());
  if (body instanceof ArrayBuffer) return Buffer.from(body);
  return Buffer.from(body.buffer, body.byteOffset, body.byteLength);
}

function send(url: URL, init: OutboundRequestInit, target: Address, policy: OutboundHttpPolicy) {
  const maxBytes = policy.maxBytes ?? DEFAULT_MAX_BYTES;
  const body = bodyBuffer(init.body);
  // Connect to the address that was checked, whatever the resolver says now.
  const pinned: LookupFunction = (_host, opts, callback) => {
    if ((opts as { all?: boolean }).all) (callback as (e: null, a: Address[]) => void)(null, [target]);
    else callback(null, target.address, target.family);
  };
  const signal = AbortSignal.any([
    AbortSignal.timeout(policy.timeoutMs),
    ...(init.signal ? [init.signal] : []),
  ]);
  const headers = { ...init.headers, ...(body ? { 'content-length': String(body.length) } : {}) };
  return new Promise<Response>((resolve, reject) => {
    const fail = (cause: unknown) => {
      req.destroy();
      reject(new TypeError('fetch failed', { cause }));
    };
    const common = {
      method: init.method ?? 'GET',
      headers,
      lookup: pinned,
      // A fresh connection every time: no pooled socket to an earlier address.
      agent: false as const,
      signal,
    };
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

/**
 * How an outbox worker POSTs (webhooks, back-channel logout): the guarded
 * client when the address policy is given (main.ts always gives it), else an
 * injected or the platform fetch. Redirects are never followed, and each
 * attempt ends at `timeoutMs`.
 */
export function deliveryFetch(options: {
  fetch?: typeof fetch;
  outbound?: Omit<OutboundHttpPolicy, 'timeoutMs'>;
  timeoutMs: number;
}): GuardedFetch {
  const { outbound, timeoutMs } = options;
  if (!options.fetch && outbound) return guardedHttpFetch({ ...outbound, timeoutMs });
  const platform = options.fetch ?? globalThis.fetch;
  return (url, init = {}) =>
    platform(url, {
      method: init.method,
      headers: init.headers,
      body: platformBody(init.body),
      redirect: 'manual',
      signal: AbortSignal.timeout(timeoutMs),
    });
}

/** The platform fetch's body type: binary bodies as a fresh Uint8Array over an ArrayBuffer. */
function platformBody(
  body: OutboundRequestInit['body'],
): string | URLSearchParams | Uint8Array<ArrayBuffer> | undefined {
  if (body === undefined || body === null) return undefined;
  if (typeof body === 'string' || body instanceof URLSearchParams) return body;
  return new Uint8Array(body instanceof ArrayBuffer ? body.slice(0) : body);
}
