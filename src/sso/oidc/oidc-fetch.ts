import type { CustomFetch } from 'openid-client';
import { guardedHttpFetch, shownUrl, type OutboundHttpPolicy } from '../../connections/outbound-http.js';
import { LoginRefusedError } from '../reasons.js';

/**
 * openid-client's `customFetch` for the calls a login makes to a tenant's IdP
 * (discovery, JWKS, token, userinfo), under the outbound rules of
 * src/connections/outbound-http.ts: https only, every address the host
 * resolves to must be public unicast — or inside an operator-allowed network
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
export type OidcFetchPolicy = OutboundHttpPolicy;

export function guardedOidcFetch(policy: OidcFetchPolicy): CustomFetch {
  const guarded = guardedHttpFetch(
    policy,
    (message, url) =>
      new LoginRefusedError(
        'connection_misconfigured',
        `outbound call refused: ${message} [${shownUrl(url)}]`,
      ),
  );
  return (url, options) =>
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
