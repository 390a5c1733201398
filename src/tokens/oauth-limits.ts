/**
 * Upper bounds on every string the OAuth endpoints read and may store or look
 * up (authorization_requests, codes, refresh tokens): over a bound, or with a
 * control character (PostgreSQL text cannot hold NUL; RFC 6749 Appendix A
 * allows none in state, nonce, scope or tokens), the request is refused with
 * RFC 6749 `invalid_request` before anything is written — never a 500 from a
 * database limit.
 */
export const OAUTH_STRING_LIMITS = {
  // /oauth/authorize (stored with the pending request)
  state: 1024,
  nonce: 1024,
  login_hint: 320, // RFC 5321 §4.5.3.1: 64 + 1 + 255
  organization: 128,
  scope: 1024,
  redirect_uri: 2048, // the admin API's bound on registered URIs
  code_challenge: 128,
  code_challenge_method: 16,
  response_type: 64,
  response_mode: 32,
  prompt: 128,
  connection: 64,
  client_id: 64,
  // /oauth/token, /introspect, /revoke
  grant_type: 64,
  code: 512,
  code_verifier: 128, // RFC 7636 §4.1: 43–128 characters
  refresh_token: 512,
  token: 8192, // an access token (a JWT) at introspection
  token_type_hint: 64,
  client_secret: 256,
} as const;

/** Any other parameter: not stored, but not read past this either. */
export const OAUTH_DEFAULT_LIMIT = 2048;

// eslint-disable-next-line no-control-regex -- the point is to find them
const CONTROL = /[\u0000-\u001f\u007f]/;

export function oauthStringLimit(name: string): number {
  return Object.hasOwn(OAUTH_STRING_LIMITS, name)
    ? OAUTH_STRING_LIMITS[name as keyof typeof OAUTH_STRING_LIMITS]
    : OAUTH_DEFAULT_LIMIT;
}

/** Why a parameter value is refused, or null when it is within bounds. */
export function oauthStringProblem(name: string, value: string): string | null {
  if (value.length > oauthStringLimit(name)) return `${name} is too long`;
  if (CONTROL.test(value)) return `${name} contains a control character`;
  return null;
}
