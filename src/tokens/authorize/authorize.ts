import { t } from '../../http/strings.js';
import { isUuid } from '../../db/database.js';
import type { App } from '../../apps/app.entity.js';
import type { OAuthErrorCode } from '../oauth-errors.js';
import { oauthStringProblem } from '../oauth-limits.js';
import { redirectUriMatches } from '../../apps/redirect-uri.js';

/**
 * Validation of an /oauth/authorize request (RFC 6749 §4.1.1, RFC 7636, OIDC
 * Core §3.1.2.1), as a pure function of the query and the app it names.
 *
 * Order matters (RFC 6749 §4.1.2.1): until client_id and redirect_uri are
 * known good, nothing is redirected — the browser gets an error page. After
 * that, errors go back to the redirect_uri with `state`.
 */
export const SUPPORTED_SCOPES = ['openid', 'email', 'profile', 'offline_access'] as const;

export interface ValidAuthorizationRequest {
  appId: string;
  redirectUri: string;
  scope: string;
  state: string | null;
  nonce: string | null;
  codeChallenge: string | null;
  codeChallengeMethod: 'S256' | null;
  loginHint: string | null;
  organization: string | null;
  connectionId: string | null;
}

export type AuthorizeOutcome =
  | { kind: 'page'; reason: string; message: string }
  | {
      kind: 'redirect_error';
      redirectUri: string;
      state: string | null;
      error: OAuthErrorCode;
      description: string;
    }
  | { kind: 'valid'; request: ValidAuthorizationRequest };

type Query = Record<string, unknown>;

/** RFC 7636 §4.2: BASE64URL(SHA256(verifier)) is 43 characters. */
const S256_CHALLENGE = /^[A-Za-z0-9_-]{43}$/;

/** The client_id of a request, when it is given once. */
export function requestedClientId(query: Query): string | null {
  const value = query.client_id;
  return typeof value === 'string' && value.length > 0 ? value : null;
}

export function validateAuthorizationRequest(query: Query, app: App | null): AuthorizeOutcome {
  const page = (reason: string, message: string): AuthorizeOutcome => ({ kind: 'page', reason, message });
  const clientId = requestedClientId(query);
  if (!clientId || !isUuid(clientId)) return page('invalid_client', t.authorize.invalidClient);
  if (!app) return page('unknown_client', t.authorize.unknownClient);
  const redirectUri = query.redirect_uri;
  if (typeof redirectUri !== 'string' || redirectUri.length === 0)
    return page('redirect_uri_missing', t.authorize.redirectUriMissing);
  // Exact string match against the registered list before anything is redirected.
  if (!redirectUriMatches(app.redirectUris, redirectUri))
    return page('redirect_uri_mismatch', t.authorize.redirectUriMismatch);

  const state = typeof query.state === 'string' ? query.state : null;
  const fail = (error: OAuthErrorCode, description: string): AuthorizeOutcome => ({
    kind: 'redirect_error',
    redirectUri,
    // An unusable state is not echoed (the app would not recognise it anyway).
    state: state !== null && oauthStringProblem('state', state) === null ? state : null,
    error,
    description,
  });

  // RFC 6749 §3.1: parameters must not be repeated.
  const repeated = Object.entries(query).find(([, v]) => Array.isArray(v));
  if (repeated) return fail('invalid_request', `${repeated[0]} is given more than once`);
  // Bounds on every value (oauth-limits.ts) before any is read, stored or looked up.
  for (const [name, value] of Object.entries(query)) {
    const problem = typeof value === 'string' ? oauthStringProblem(name, value) : 'not a string';
    if (problem)
      return fail('invalid_request', problem === 'not a string' ? `${name} is malformed` : problem);
  }
  const text = (name: string): string | null => {
    const value = query[name];
    return typeof value === 'string' && value.length > 0 ? value : null;
  };

  if (text('request') !== null) return fail('request_not_supported', 'Request objects are not supported');
  if (text('request_uri') !== null) return fail('request_uri_not_supported', 'request_uri is not supported');
  const responseType = text('response_type');
  if (responseType === null) return fail('invalid_request', 'response_type is required');
  if (responseType !== 'code')
    return fail('unsupported_response_type', 'Only response_type=code is supported');
  const responseMode = text('response_mode');
  if (responseMode !== null && responseMode !== 'query')
    return fail('invalid_request', 'Only response_mode=query is supported');

  const scopes = (text('scope') ?? '').split(' ').filter(Boolean);
  if (!scopes.includes('openid')) return fail('invalid_scope', 'scope must include openid');
  const unknown = scopes.filter((s) => !(SUPPORTED_SCOPES as readonly string[]).includes(s));
  if (unknown.length > 0) return fail('invalid_scope', `Unsupported scope: ${unknown.join(' ')}`);

  const challenge = text('code_challenge');
  const method = text('code_challenge_method');
  if (method !== null && method !== 'S256')
    return fail('invalid_request', 'Only code_challenge_method=S256 is supported');
  if (challenge !== null && method === null)
    return fail('invalid_request', 'code_challenge_method=S256 is required with code_challenge');
  if (method !== null && challenge === null) return fail('invalid_request', 'code_challenge is missing');
  if (challenge !== null && !S256_CHALLENGE.test(challenge))
    return fail('invalid_request', 'code_challenge is not a base64url SHA-256 value');
  if (challenge === null && app.clientType === 'public')
    return fail('invalid_request', 'PKCE with S256 is required for public clients');

  // Gatehouse keeps no browser session of its own: every request meets the IdP.
  const prompt = (text('prompt') ?? '').split(' ');
  if (prompt.includes('none'))
    return fail('login_required', 'The person must sign in at their identity provider');

  const nonce = text('nonce');
  const loginHint = text('login_hint');
  const organization = text('organization');
  const connectionId = text('connection');
  if (connectionId !== null && !isUuid(connectionId))
    return fail('invalid_request', 'connection must be a connection id');

  return {
    kind: 'valid',
    request: {
      appId: app.id,
      redirectUri,
      scope: [...new Set(scopes)].join(' '),
      state,
      nonce,
      codeChallenge: challenge,
      codeChallengeMethod: challenge === null ? null : 'S256',
      loginHint: loginHint?.trim() ?? null,
      organization,
      connectionId: connectionId?.toLowerCase() ?? null,
    },
  };
}

/** The authorization response (success or error) at the app's redirect_uri, with RFC 9207 `iss`. */
export function authorizationResponseUrl(
  redirectUri: string,
  issuer: string,
  params: Record<string, string | null>,
): string {
  const url = new URL(redirectUri);
  for (const [name, value] of Object.entries(params)) {
    if (value !== null) url.searchParams.set(name, value);
  }
  url.searchParams.set('iss', issuer);
  return url.toString();
}
