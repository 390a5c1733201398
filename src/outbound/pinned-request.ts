import { readFileSync } from 'node:fs';
import http, { type IncomingHttpHeaders } from 'node:http';
import https from 'node:https';
import type { LookupFunction } from 'node:net';
import { rootCertificates } from 'node:tls';
import {
  addressAllowed,
  hostOf,
  resolveHost,
  type AddressPolicy,
  type ResolvedAddress,
} from './address-policy.js';

/**
 * How does one server-side HTTP request go out? (docs/architecture.md,
 * `outbound`.) Resolve the host, check every address against the policy
 * (address-policy.ts), open a fresh socket to the address that was checked —
 * never to what the resolver answers a moment later (DNS rebinding) — and cut
 * the exchange off at one deadline (resolving, connecting and reading) and a
 * size cap. Redirects are never followed here; each use decides what a 3xx
 * means. The only implementation of these rules: metadata and discovery
 * documents (fetch-document.ts), openid-client's calls at login, webhooks and
 * back-channel logout (fetch-client.ts) are built on it.
 */
export interface OutboundPolicy extends AddressPolicy {
  timeoutMs: number;
  /** Extra trusted CAs (PEM), added to Node's bundled roots. */
  ca?: string | undefined;
}

/** config.outboundFetch as a policy; reads the extra CA file once (at wiring), so a bad path fails at start. */
export function outboundPolicy(config: {
  allowPrivate: boolean;
  allowedNetworks: string[];
  timeoutMs: number;
  caFile?: string | undefined;
}): OutboundPolicy {
  return {
    allowPrivate: config.allowPrivate,
    allowedNetworks: config.allowedNetworks,
    timeoutMs: config.timeoutMs,
    ca: config.caFile ? readFileSync(config.caFile, 'utf8') : undefined,
  };
}

/**
 * Why a request did not produce an answer. `refused_address`: the host
 * resolves to an address the policy refuses (nothing was connected to).
 */
export type OutboundFailureKind =
  'unresolvable' | 'no_address' | 'refused_address' | 'timeout' | 'network' | 'too_large' | 'cut_off';

export class OutboundFailure extends Error {
  constructor(
    readonly kind: OutboundFailureKind,
    message: string,
    readonly detail: { host?: string; address?: string; cause?: unknown } = {},
  ) {
    super(message, { cause: detail.cause });
    this.name = 'OutboundFailure';
  }
}

export interface PinnedRequest {
  method: string;
  headers: Record<string, string>;
  body?: Buffer | undefined;
  maxBytes: number;
  /** The caller's own cancellation (openid-client passes one), besides the policy's deadline. */
  signal?: AbortSignal | null | undefined;
  /** Looks at status and headers before the body is read; an error returned ends the request with it. */
  checkHead?: (status: number, headers: IncomingHttpHeaders) => Error | undefined;
}

export interface PinnedResponse {
  status: number;
  statusMessage: string;
  headers: IncomingHttpHeaders;
  body: Buffer<ArrayBuffer>;
}

/** One request to `url` under `policy`; the URL's form is checked by the caller (address-policy.ts `targetUrl`). */
export async function pinnedRequest(
  url: URL,
  request: PinnedRequest,
  policy: OutboundPolicy,
): Promise<PinnedResponse> {
  const deadline = new AbortController();
  const timer = setTimeout(() => deadline.abort(), policy.timeoutMs);
  const signal = request.signal ? AbortSignal.any([deadline.signal, request.signal]) : deadline.signal;
  // Whatever failed once the deadline passed, the answer is "no answer in time".
  const failure = (kind: OutboundFailureKind, message: string, detail?: OutboundFailure['detail']) =>
    deadline.signal.aborted
      ? new OutboundFailure('timeout', `no answer within ${policy.timeoutMs} ms`, { cause: detail?.cause })
      : new OutboundFailure(kind, message, detail);
  try {
    const target = await resolveChecked(url, policy, signal, failure);
    return await send(url, request, policy, target, signal, failure);
  } finally {
    clearTimeout(timer);
  }
}

type Failure = (kind: OutboundFailureKind, message: string, detail?: OutboundFailure['detail']) => Error;

async function resolveChecked(
  url: URL,
  policy: OutboundPolicy,
  signal: AbortSignal,
  failure: Failure,
): Promise<ResolvedAddress> {
  const host = hostOf(url);
  const aborted = new Promise<never>((_, reject) => {
    const stop = () => reject(failure('network', 'aborted', { cause: signal.reason }));
    if (signal.aborted) stop();
    else signal.addEventListener('abort', stop, { once: true });
  });
  aborted.catch(() => undefined);
  const addresses = await Promise.race([resolveHost(host), aborted]).catch((error: unknown) => {
    if (error instanceof OutboundFailure) throw error;
    throw failure('unresolvable', `the host ${host} could not be resolved`, { host, cause: error });
  });
  const first = addresses[0];
  if (!first) throw failure('no_address', `the host ${host} has no address`, { host });
  const allowed = addressAllowed(policy);
  const blocked = addresses.find((a) => !allowed(a.address));
  if (blocked) {
    throw failure(
      'refused_address',
      `${host} resolves to a private, loopback or link-local address (${blocked.address})`,
      { host, address: blocked.address },
    );
  }
  return first;
}

function send(
  url: URL,
  request: PinnedRequest,
  policy: OutboundPolicy,
  target: ResolvedAddress,
  signal: AbortSignal,
  failure: Failure,
): Promise<PinnedResponse> {
  const { maxBytes, body } = request;
  // Connect to the address that was checked, whatever the resolver says now.
  const pinned: LookupFunction = (_host, opts, callback) => {
    if ((opts as { all?: boolean }).all)
      (callback as (e: null, a: ResolvedAddress[]) => void)(null, [target]);
    else callback(null, target.address, target.family);
  };
  const headers = { ...request.headers, ...(body ? { 'content-length': String(body.length) } : {}) };
  return new Promise<PinnedResponse>((resolve, reject) => {
    const fail = (error: Error) => {
      req.destroy();
      reject(error);
    };
    const tooLarge = () => failure('too_large', `the answer is larger than ${maxBytes} bytes`);
    const common = {
      method: request.method,
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
    req.on('error', (error) => fail(failure('network', error.message, { cause: error })));
    req.on('response', (res) => {
      const status = res.statusCode ?? 502;
      const refused = request.checkHead?.(status, res.headers);
      if (refused) {
        res.resume();
        return fail(refused);
      }
      if (Number(res.headers['content-length'] ?? 0) > maxBytes) {
        res.resume();
        return fail(tooLarge());
      }
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > maxBytes) {
          res.destroy();
          return fail(tooLarge());
        }
        chunks.push(chunk);
      });
      res.on('error', (error) => fail(failure('cut_off', 'the answer was cut off', { cause: error })));
      res.on('end', () => {
        if (size > maxBytes) return;
        resolve({
          status,
          statusMessage: res.statusMessage ?? '',
          headers: res.headers,
          body: Buffer.concat(chunks),
        });
      });
    });
    req.end(body);
  });
}
