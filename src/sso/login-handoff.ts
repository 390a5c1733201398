import type { Request, Response } from 'express';
import type { EntityManager } from 'typeorm';

/**
 * The seam between the OpenID Provider side (src/tokens: the main app's
 * /oauth/authorize) and the IdP side (src/sso: discovery, SAML, OIDC,
 * completeLogin). tokens validates the app's request, stores it as a pending
 * login bound to the browser, and calls LoginFlow.start; sso runs discovery and
 * the IdP round trip, provisions the person, and calls
 * AuthorizationCompleter.complete (or fail), which answers the app's redirect_uri.
 */
export interface PendingLogin {
  /** Id of the stored authorization request; opaque to sso. */
  loginId: string;
  appId: string;
  /** `login_hint` (an email), when the app gave one. */
  loginHint: string | null;
  /** `organization`: tenant id or slug. */
  organization: string | null;
  /** `connection`: a connection id. */
  connectionId: string | null;
}

/** A person authenticated at their IdP and provisioned in their tenant. */
export interface LoginResult {
  tenantId: string;
  userId: string;
  connectionId: string;
  authTime: Date;
  /**
   * Run by the completer in the transaction that creates the login's session
   * (SAML: the NameID and SessionIndex Single Logout needs; sso/saml/single-logout.service.ts).
   */
  sessionCreated?: (em: EntityManager, session: { id: string; expiresAt: Date }) => Promise<void>;
}

/** A login that ended without a person: the reason travels to the app as an OAuth error. */
export interface LoginFailure {
  /** RFC 6749 §4.1.2.1 error code, e.g. access_denied. */
  error: 'access_denied' | 'login_required' | 'server_error' | 'temporarily_unavailable';
  /** Gatehouse reason code, e.g. saml_audience_mismatch. */
  reason: string;
  /** The refused request's id (the error page's support reference; its login trace's support_ref). */
  supportRef?: string;
}

/** A Gatehouse session just ended by the app's RP-initiated logout (tokens/status/logout.service.ts). */
export interface EndedSession {
  tenantId: string;
  sessionId: string;
  /** Where the browser goes when the IdP has answered: a validated post_logout_redirect_uri, or null (our page). */
  returnUrl: string | null;
}

/** Implemented by src/sso. */
export interface LoginFlow {
  start(req: Request, res: Response, pending: PendingLogin): Promise<void>;
  /**
   * After RP-initiated logout ended the session: when a SAML login made it and
   * the IdP has a Single Logout URL, sends the browser there with a signed
   * LogoutRequest and resolves true; false leaves the answer to the caller.
   */
  endAtIdp?(req: Request, res: Response, ended: EndedSession): Promise<boolean>;
}

/** Implemented by src/tokens. */
export interface AuthorizationCompleter {
  complete(req: Request, res: Response, loginId: string, result: LoginResult): Promise<void>;
  fail(req: Request, res: Response, loginId: string, failure: LoginFailure): Promise<void>;
  /**
   * An IdP-initiated (unsolicited) SAML login, validated and provisioned, that
   * no app asked for. Resolves true when it answered the browser (e.g. sent it
   * to the app's initiate_login_uri, OIDC Core §4); false leaves the answer to
   * sso (a page asking the person to start from their application).
   */
  completeUnsolicited?(req: Request, res: Response, result: LoginResult): Promise<boolean>;
}
