import { AuthorizationResponseError, ResponseBodyError } from 'openid-client';
import { LoginRefusedError, type ReasonCode } from '../reasons.js';

interface ErrorFacts {
  codes: string[];
  messages: string[];
  claims: string[];
  names: string[];
}

/** Codes, messages and claim names along an error's cause chain (openid-client wraps oauth4webapi's). */
function factsOf(error: unknown): ErrorFacts {
  const facts: ErrorFacts = { codes: [], messages: [], claims: [], names: [] };
  let current: unknown = error;
  for (let depth = 0; depth < 6 && current && typeof current === 'object'; depth++) {
    const e = current as {
      code?: unknown;
      message?: unknown;
      name?: unknown;
      claim?: unknown;
      cause?: unknown;
    };
    if (typeof e.code === 'string') facts.codes.push(e.code);
    if (typeof e.message === 'string') facts.messages.push(e.message);
    if (typeof e.name === 'string') facts.names.push(e.name);
    if (typeof e.claim === 'string') facts.claims.push(e.claim);
    current = e.cause;
  }
  return facts;
}

function reasonFor(error: unknown): ReasonCode {
  if (error instanceof AuthorizationResponseError) return 'oidc_idp_error';
  if (error instanceof ResponseBodyError) return 'oidc_token_exchange_failed';
  const { codes, messages, claims, names } = factsOf(error);
  const said = (pattern: RegExp) => messages.some((m) => pattern.test(m));
  if (codes.includes('OAUTH_JWT_CLAIM_COMPARISON_FAILED')) {
    if (claims.includes('nonce')) return 'oidc_nonce_mismatch';
    if (claims.includes('iss')) return 'oidc_issuer_mismatch';
    if (claims.includes('aud') || claims.includes('azp')) return 'oidc_audience_mismatch';
    return 'oidc_id_token_invalid';
  }
  if (codes.includes('OAUTH_JWT_TIMESTAMP_CHECK_FAILED'))
    return claims.includes('exp') || said(/expired|"exp"/)
      ? 'oidc_id_token_expired'
      : 'oidc_id_token_invalid';
  // Missing claims are reported by name: 'JWT "nonce" (nonce) claim missing'.
  if (said(/"nonce"/)) return 'oidc_nonce_mismatch';
  if (said(/"aud"|"azp"/)) return 'oidc_audience_mismatch';
  if (said(/"exp"/)) return 'oidc_id_token_expired';
  // RFC 9207: the authorization response's iss parameter names another issuer.
  if (said(/"iss"/)) return 'oidc_issuer_mismatch';
  if (said(/"alg"|algorithm|unsupported JWS/i) || names.includes('UnsupportedOperationError'))
    return 'oidc_id_token_algorithm';
  if (said(/fetch failed|ECONNREFUSED|timed out|aborted/i)) return 'oidc_provider_unavailable';
  if (codes.includes('OAUTH_RESPONSE_IS_NOT_CONFORM') || codes.includes('OAUTH_RESPONSE_IS_NOT_JSON'))
    return 'oidc_token_exchange_failed';
  return 'oidc_id_token_invalid';
}

/** A refusal of ours (e.g. the outbound guard's, thrown from customFetch) along openid-client's cause chain. */
export function loginRefusalIn(error: unknown): LoginRefusedError | null {
  let current: unknown = error;
  for (let depth = 0; depth < 6 && current && typeof current === 'object'; depth++) {
    if (current instanceof LoginRefusedError) return current;
    current = (current as { cause?: unknown }).cause;
  }
  return null;
}

/** openid-client's errors, as reason codes (the library's message goes to the log only). */
export function reasonOfOidcError(error: unknown): LoginRefusedError {
  const ours = loginRefusalIn(error);
  if (ours) return ours;
  const message = error instanceof Error ? error.message : String(error);
  return new LoginRefusedError(reasonFor(error), `openid-client: ${message}`, { cause: error });
}
