/**
 * OAuth 2.0 errors (RFC 6749 §5.2, §4.1.2.1; RFC 6750 §3.1; OIDC Core §3.1.2.6).
 * Thrown by the token-side services and written as `{ error, error_description }`
 * by the OAuth routes; the description is safe to show to the client.
 */
export type OAuthErrorCode =
  | 'invalid_request'
  | 'invalid_client'
  | 'invalid_grant'
  | 'unauthorized_client'
  | 'unsupported_grant_type'
  | 'unsupported_response_type'
  | 'invalid_scope'
  | 'access_denied'
  | 'login_required'
  | 'request_not_supported'
  | 'request_uri_not_supported'
  | 'invalid_token'
  | 'server_error'
  | 'temporarily_unavailable';

export interface OAuthErrorOptions {
  /** HTTP status when answered directly (not by redirect). */
  status?: number;
  /** Internal explanation: logged, never sent. */
  detail?: string;
  /** The WWW-Authenticate scheme to challenge with (Basic after failed Basic auth, Bearer at userinfo). */
  challenge?: 'Basic' | 'Bearer';
}

export class OAuthError extends Error {
  readonly status: number;
  readonly detail: string | undefined;
  readonly challenge: 'Basic' | 'Bearer' | undefined;

  constructor(
    readonly error: OAuthErrorCode,
    readonly description: string,
    options: OAuthErrorOptions = {},
  ) {
    super(description);
    this.name = 'OAuthError';
    this.status = options.status ?? (error === 'invalid_client' || error === 'invalid_token' ? 401 : 400);
    this.detail = options.detail;
    this.challenge = options.challenge;
  }

  toJSON(): { error: OAuthErrorCode; error_description: string } {
    return { error: this.error, error_description: this.description };
  }
}
