import { t } from '../../http/strings.js';
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { Request, Response } from 'express';
import type { EntityManager } from 'typeorm';
import type { Config } from '../../config/config.js';
import type { Database } from '../../db/database.js';
import { sha256Base64url } from '../../digest.js';
import { presentedBinding } from '../../http/browser-binding.js';
import { liveGrant, type NotLiveReason } from '../../sessions/live-grant.js';
import { createSession } from '../../sessions/sessions.service.js';
import { isForeignKeyViolation } from '../../db/pg-errors.js';
import { isLiveTenantStatus } from '../../db/tenant-liveness.js';
import { idpInitiatedLoginUri } from '../../apps/apps.service.js';
import { findConnectionForLogin } from '../../connections/connections.service.js';
import { findUser } from '../../directory/users.service.js';
import { tenantStatusOf } from '../../tenants/tenants.service.js';
import type { AuthorizationCompleter, LoginFailure, LoginResult } from '../../sso/login-handoff.js';
import { loginProtocolOf, type FailureReturn, type UnsolicitedLoginCompleter } from '../../sso/outcome.js';
import { inSpan } from '../../observability/spans.js';
import type { LoginMetrics } from '../../observability/signals.js';
import { authorizationBinding, ISSUED_BINDING } from './authorization-binding.js';
import type { AuthorizationRequest } from './authorization-request.entity.js';
import {
  attachSessionToLogin,
  failPendingLogin,
  findPendingLogin,
  readPendingLogin,
} from './authorization-requests.service.js';
import { authorizationResponseUrl } from './authorize.js';
import { sendErrorPage } from './error-page.js';

export interface CompleterDeps {
  config: Config;
  db: Database;
  /** Where completed and refused sign-ins are counted (gatehouse_logins_total). */
  metrics?: LoginMetrics;
}

/**
 * Why a login's new session is not live, as the reason code the app receives
 * (docs/sso.md). A deleted app gets no answer at all: the login is simply gone.
 */
const LOGIN_NOT_LIVE: Record<NotLiveReason, string> = {
  session_ended: 'login_not_found',
  person_not_active: 'user_not_active',
  tenant_not_active: 'tenant_not_active',
  app_deleted: 'login_not_found',
};

/** Thrown inside the tenant transaction to roll the new session back. */
class LoginRefused extends Error {
  constructor(readonly reason: string) {
    super(reason);
  }
}

/**
 * src/tokens' half of the login hand-off (src/sso/login-handoff.ts).
 *
 * complete(): checks the login answers what the app asked (organization,
 * connection), that the person is active, creates the session and attaches it
 * to the pending request, then sends the browser (303) to
 * /oauth/authorize/continue with a one-time token. That same-site GET carries
 * the SameSite=Lax binding cookie the IdP's cross-site POST could not, and
 * issues the code only when cookie and token both match (continueLogin).
 *
 * fail(): ends the request and returns the error to the app's redirect_uri
 * (RFC 6749 §4.1.2.1), in the browser that started it only; acceptsFailure()
 * tells sso whether there is still a request to return to.
 *
 * completeUnsolicited(): an IdP-initiated SAML login lands in the app the
 * connection names, by OIDC Core §4 third-party initiated login.
 */
export function createAuthorizationCompleter(
  deps: CompleterDeps,
): AuthorizationCompleter & UnsolicitedLoginCompleter & FailureReturn {
  const { config, db } = deps;

  /** RFC 6749 §4.1.2.1 + RFC 9207: the error, the reason code, the app's state and our iss. */
  async function redirectFailure(
    req: Request,
    res: Response,
    loginId: string,
    failure: LoginFailure,
  ): Promise<void> {
    const ended = await failPendingLogin(db, loginId, new Date());
    if (!ended) return loginGone(req, res, 'login_not_found');
    req.log.info(
      { reason: failure.reason, error: failure.error, login_id: loginId, tenant_id: req.tenantId },
      'sign-in failed',
    );
    res.redirect(
      303,
      authorizationResponseUrl(ended.redirectUri, config.baseUrl, {
        error: failure.error,
        // The reason code only (a closed set, docs/sso.md): the app can map it to its own page.
        error_description: failure.reason,
        state: ended.state,
      }),
    );
  }

  /**
   * A refused login goes back to the app only in the browser that asked for
   * it: the pending request's SameSite=Lax binding must be presented (or have
   * been set by this very /oauth/authorize request). Otherwise someone else's
   * pending request is being replayed at this browser (a link with a foreign
   * login id) — it is burnt and the person stays on our page, so nobody can
   * use a pending request to send another person to an app's redirect_uri.
   */
  async function fail(req: Request, res: Response, loginId: string, failure: LoginFailure): Promise<void> {
    const pending = await findPendingLogin(db, loginId);
    if (!pending || pending.authenticatedAt || pending.completedAt)
      return loginGone(req, res, 'login_not_found');
    const issued: unknown = res.locals[ISSUED_BINDING];
    const presented =
      typeof issued === 'string' ? issued : presentedBinding(req, authorizationBinding(config));
    if (!sameHash(pending.browserHash, presented)) {
      await failPendingLogin(db, loginId, new Date());
      req.log.warn(
        { reason: failure.reason, login_id: loginId, tenant_id: req.tenantId },
        'refused sign-in opened in another browser',
      );
      return sendErrorPage(req, res, {
        status: 400,
        reason: failure.reason,
        ...t.authorize.otherBrowser,
      });
    }
    return redirectFailure(req, res, loginId, failure);
  }

  /** Whether a refused login can still be answered to its app (sso then redirects through /sso/continue). */
  async function acceptsFailure(loginId: string): Promise<boolean> {
    const pending = await findPendingLogin(db, loginId);
    return (
      pending !== null &&
      pending.authenticatedAt === null &&
      pending.completedAt === null &&
      pending.expiresAt > new Date()
    );
  }

  /** The completion step, traced with its tenant (observability/spans.ts). */
  function complete(req: Request, res: Response, loginId: string, result: LoginResult): Promise<void> {
    // The tenant of the login, for the log lines below and the request's (already set by sso's flows).
    req.tenantId ??= result.tenantId;
    return inSpan('gatehouse.login.complete', { 'tenant.id': result.tenantId }, async (span) => {
      const outcome = await completeLogin(req, res, loginId, result);
      span.set({ 'gatehouse.outcome': outcome });
      deps.metrics?.loginEnded(loginProtocolOf(req), outcome === 'ok' ? 'success' : 'refused', outcome);
    });
  }

  /** Answers the browser; resolves `ok` or the reason code of the refusal. */
  async function completeLogin(
    req: Request,
    res: Response,
    loginId: string,
    result: LoginResult,
  ): Promise<string> {
    const now = new Date();
    const completionToken = randomBytes(32).toString('base64url');
    const completionHash = sha256Base64url(completionToken);
    try {
      // One transaction (issue 9; docs/architecture.md §4): the pending request and the
      // tenant are platform rows, read here rather than in transactions of their own.
      await db.withTenant(result.tenantId, async (em) => {
        const pending = await readPendingLogin(em, loginId);
        if (!pending || pending.authenticatedAt || pending.completedAt)
          throw new LoginRefused('login_not_found');
        if (pending.expiresAt <= now) throw new LoginRefused('login_expired');
        const mismatch = await requestMismatch(em, pending, result);
        // Checked at the ACS (no Lax cookie there); the person is authenticated, only not for this request.
        if (mismatch) throw new LoginRefused(mismatch);
        if (!(await findConnectionForLogin(em, result.connectionId)))
          throw new LoginRefused('connection_not_found');
        const session = await createSession(em, result.tenantId, {
          userId: result.userId,
          appId: pending.appId,
          connectionId: result.connectionId,
          authTime: result.authTime,
          ttlSeconds: config.tokens.sessionTtl,
        }).catch((error: unknown) => {
          // The person (or their tenant) was deleted while they were at the IdP: a refusal, not a 500.
          if (isForeignKeyViolation(error)) throw new LoginRefused('user_not_active');
          throw error;
        });
        await result.sessionCreated?.(em, session); // SAML Single Logout's row (issue 16)
        // The one "still true?" answer (sessions/live-grant.ts), asked of the session just made.
        const grant = await liveGrant(em, { sessionId: session.id, userId: result.userId, now });
        if (!grant.live) throw new LoginRefused(LOGIN_NOT_LIVE[grant.reason]);
        const attached = await attachSessionToLogin(em, loginId, session.id, completionHash, now);
        if (!attached) throw new LoginRefused('login_not_found');
      });
    } catch (error) {
      if (!(error instanceof LoginRefused)) throw error;
      if (error.reason === 'login_not_found' || error.reason === 'login_expired')
        loginGone(req, res, error.reason);
      else await redirectFailure(req, res, loginId, { error: 'access_denied', reason: error.reason });
      return error.reason;
    }
    const next = new URL(`${config.baseUrl}/oauth/authorize/continue`);
    next.searchParams.set('login', loginId);
    next.searchParams.set('token', completionToken);
    res.redirect(303, next.toString());
    return 'ok';
  }

  /**
   * OIDC Core §4: no app asked for this login, so none gets a code from it.
   * The browser goes (303) to the app's registered initiate_login_uri with
   * `iss` and `login_hint` (the asserted user's email); the app then starts a
   * normal code flow with its own state, nonce and PKCE (CSRF-safe), which
   * runs SP-initiated SSO to the same IdP, whose session answers it. No
   * session and no code are created here. The target is only ever the
   * registered URI (no target_link_uri: we have no safe one to give).
   * Resolves false (sso shows its page) when the connection names no live app
   * with an initiate_login_uri.
   */
  async function completeUnsolicited(req: Request, res: Response, result: LoginResult): Promise<boolean> {
    const target = await db.withTenant(result.tenantId, async (em) => {
      // idor check: RLS scopes the connection and the person to the tenant of the login.
      const connection = await findConnectionForLogin(em, result.connectionId);
      const appId = connection?.idpInitiatedAppId;
      if (!appId) return null;
      // apps is a platform table (no tenant rows): readable in any transaction.
      const uri = await idpInitiatedLoginUri(em, appId);
      if (!uri) return null;
      const person = await findUser(em, result.userId);
      return { appId, uri, email: person?.email ?? null };
    });
    if (!target) return false;
    deps.metrics?.loginEnded(loginProtocolOf(req), 'success', 'idp_initiated');
    const next = new URL(target.uri);
    next.searchParams.set('iss', config.baseUrl);
    if (target.email) next.searchParams.set('login_hint', target.email);
    req.log.info(
      { app_id: target.appId, connection_id: result.connectionId, tenant_id: result.tenantId },
      'IdP-initiated login sent to the app',
    );
    res.redirect(303, next.toString());
    return true;
  }

  return { complete, fail, completeUnsolicited, acceptsFailure };
}

/**
 * Defence in depth behind discovery: the person must belong to the tenant (and
 * connection) the app asked for, and that tenant must be active.
 */
async function requestMismatch(
  em: EntityManager,
  pending: AuthorizationRequest,
  result: LoginResult,
): Promise<string | null> {
  // tenants is a platform table (no row-level security): readable in the tenant's transaction.
  const tenant = await tenantStatusOf(em, result.tenantId);
  if (!tenant || !isLiveTenantStatus(tenant.status)) return 'tenant_not_active';
  if (pending.organization !== null && ![tenant.id, tenant.slug].includes(pending.organization.toLowerCase()))
    return 'organization_mismatch';
  if (pending.connectionId !== null && pending.connectionId !== result.connectionId)
    return 'connection_mismatch';
  return null;
}

function sameHash(a: string | null, b: string | null): boolean {
  if (a === null || b === null) return false;
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

function loginGone(req: Request, res: Response, reason: string): void {
  sendErrorPage(req, res, {
    status: 400,
    reason,
    ...t.authorize.expired,
  });
}
