import type { CustomFetch } from 'openid-client';
import { targetUrl } from './address-policy.js';
import { FetchRefusedError } from './fetch-document.js';
import { OutboundFailure, pinnedRequest, type OutboundPolicy } from './pinned-request.js';

/**
 * Which fetch do the calls to URLs an operator, tenant admin or IdP named
 * use? (openid-client's calls at login — discovery, JWKS, token, userinfo —
 * webhooks, back-channel logout.) A fetch-shaped function under the outbound
 * rules (pinned-request.ts). It answers like the platform fetch: a Response
 * for any status (a redirect is handed back unfollowed), a
 * `TypeError('fetch failed')` for a network failure, a deadline or an answer
 * over the size cap — except that a target the address rule refuses becomes
 * the caller's refusal error, thrown before any connection is opened.
 */
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

export interface FetchClientPolicy extends OutboundPolicy {
  /** Size cap of an answer (512 KiB unless given). */
  maxBytes?: number;
}

const DEFAULT_MAX_BYTES = 512 * 1024;
// Fetch spec: a Response with one of these statuses has no body.
const NULL_BODY_STATUS = new Set([101, 204, 205, 304]);

/** The URL without its query string or fragment (they may carry a token). */
export function shownUrl(raw: string): string {
  try {
    const u = new URL(raw);
    return `${u.origin}${u.pathname}`;
  } catch {
    return '(not a URL)';
  }
}

/** The refusal message every caller shows: what was refused, and where (without the query). */
export function refusedCallMessage(message: string, url: string): string {
  return `outbound call refused: ${message} [${shownUrl(url)}]`;
}

const defaultRefusal: RefusalFactory = (message, url) =>
  new FetchRefusedError(refusedCallMessage(message, url));

export function guardedHttpFetch(
  policy: FetchClientPolicy,
  refused: RefusalFactory = defaultRefusal,
): GuardedFetch {
  return async (raw, init = {}) => {
    const url = targetUrl(raw, policy);
    if (typeof url === 'string') throw refused(url, raw);
    const body = bodyBuffer(init.body);
    let res;
    try {
      res = await pinnedRequest(
        url,
        {
          method: init.method ?? 'GET',
          headers: { ...init.headers },
          body,
          maxBytes: policy.maxBytes ?? DEFAULT_MAX_BYTES,
          signal: init.signal,
        },
        policy,
      );
    } catch (error) {
      if (!(error instanceof OutboundFailure)) throw error;
      if (error.kind === 'refused_address') throw refused(error.message, url.href);
      // The OutboundFailure says which rule ended the request; its cause is the socket's error, if any.
      throw new TypeError('fetch failed', { cause: error });
    }
    const headers = new Headers();
    for (const [name, value] of Object.entries(res.headers)) {
      if (value === undefined) continue;
      for (const v of Array.isArray(value) ? value : [value]) headers.append(name, v);
    }
    try {
      return new Response(NULL_BODY_STATUS.has(res.status) ? null : res.body, {
        status: res.status,
        statusText: res.statusMessage,
        headers,
      });
    } catch (error) {
      // A status the Response constructor refuses (outside 200–599).
      throw new TypeError('fetch failed', { cause: error });
    }
  };
}

function bodyBuffer(body: OutboundRequestInit['body']): Buffer | undefined {
  if (body === undefined || body === null) return undefined;
  if (typeof body === 'string') return Buffer.from(body);
  if (body instanceof URLSearchParams) return Buffer.from(body.toString());
  if (body instanceof ArrayBuffer) return Buffer.from(body);
  return Buffer.from(body.buffer, body.byteOffset, body.byteLength);
}

/**
 * openid-client's `customFetch` for the calls a login makes to a tenant's IdP:
 * a discovery document cannot point Gatehouse at 169.254.169.254 or an
 * internal service. `refused` builds the login's refusal (the caller's
 * reason code); a network failure stays a `TypeError('fetch failed')`, as
 * from the platform fetch.
 */
export function openidClientFetch(policy: FetchClientPolicy, refused: RefusalFactory): CustomFetch {
  const guarded = guardedHttpFetch(policy, refused);
  // async: a body it cannot send rejects, as the platform fetch's would, instead of throwing.
  return async (url, options) =>
    guarded(url, {
      method: options.method,
      headers: options.headers,
      body: streamless(options.body),
      signal: options.signal,
    });
}

function streamless(body: unknown): string | URLSearchParams | ArrayBuffer | Uint8Array | null {
  if (body === undefined || body === null) return null;
  if (
    typeof body === 'string' ||
    body instanceof URLSearchParams ||
    body instanceof ArrayBuffer ||
    body instanceof Uint8Array
  )
    return body;
  throw new TypeError('fetch failed', { cause: new Error('streamed request bodies are not supported') });
}

/**
 * How an outbox worker POSTs (webhooks, back-channel logout): the guarded
 * client when the address policy is given (main.ts always gives it), else an
 * injected or the platform fetch. Redirects are never followed, and each
 * attempt ends at `timeoutMs`.
 */
export function deliveryFetch(options: {
  fetch?: typeof fetch;
  outbound?: Omit<FetchClientPolicy, 'timeoutMs'>;
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
