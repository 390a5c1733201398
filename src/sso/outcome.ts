import type { Request, Response } from 'express';
import type { Config } from '../config/config.js';
import type { Secrets } from '../config/secrets.js';
import type { Database } from '../db/database.js';
import { bindBrowser, browserTransportOf, type BrowserBinding } from '../http/browser-binding.js';
import { sendPage } from '../http/pages.js';
import { recordLoginFailure, type TraceSink } from './complete-login.js';
import type { LoginTraceRecorder } from './login-trace-steps.js';
import { sealFailureHandoff } from './failure-link.js';
import type { AuthorizationCompleter, LoginResult } from './login-handoff.js';
import { errorPage, noApplicationPage, noApplicationTitle } from './pages.js';
import { LoginRefusedError, loginFailureOf, type ReasonCode } from './reasons.js';
import { isDatabaseUnavailable } from '../db/pg-errors.js';
import { setRetryAfter } from '../http/error-handler.js';
import type { LoginMetrics, LoginProtocol } from '../observability/signals.js';

/**
 * An IdP-initiated (unsolicited) SAML login has no pending authorization of
 * the main app. A completer that can land such logins (in the app's
 * initiate_login_uri) implements completeUnsolicited; otherwise, or when it
 * declines, the person is told to start from their application.
 */
export type UnsolicitedLoginCompleter = Required<Pick<AuthorizationCompleter, 'completeUnsolicited'>>;

/**
 * A completer that can tell whether the app's pending login is still open.
 * Then a refusal goes back to the app (RFC 6749 §4.1.2.1 error); without it,
 * or for an unknown, finished or expired login, the person stays on our page.
 */
export interface FailureReturn {
  acceptsFailure(loginId: string): Promise<boolean>;
}

export interface SsoDeps {
  config: Config;
  db: Database;
  secrets: Secrets;
  completer: AuthorizationCompleter & Partial<UnsolicitedLoginCompleter> & Partial<FailureReturn>;
  /** Where sign-ins that end here are counted (src/http/metrics.ts gatehouse_logins_total). */
  metrics?: LoginMetrics;
}

/** The protocol of the request a sign-in ends in: its IdP answer's path; `none` before one was chosen. */
export function loginProtocolOf(req: Request): LoginProtocol {
  const path = req.originalUrl;
  if (path.startsWith('/saml/')) return 'saml';
  if (path.startsWith('/oidc/')) return 'oidc';
  return 'none';
}

export function isSecure(config: Config): boolean {
  return config.baseUrl.startsWith('https://');
}

export function allowHttpForms(config: Config): boolean {
  return !isSecure(config) || config.outboundFetch.allowPrivate;
}

/**
 * The SSO browser binding, stored hashed with the pending AuthnRequest or OIDC
 * state. The IdP returns with a cross-site POST (SAML) or a top-level GET
 * (OIDC), so the cookie is SameSite=None (Secure; __Host- over https).
 */
export function bindingOptions(config: Config): BrowserBinding {
  return {
    name: 'gatehouse_sso',
    sameSite: 'none',
    transport: browserTransportOf(config.baseUrl),
    ttlSeconds: config.tokens.loginTtl,
  };
}

/**
 * After the IdP round trip: hand the person to the app's pending login. The
 * completer (src/tokens) creates the session and moves the browser on with a
 * same-site GET, where its own SameSite=Lax binding cookie is checked.
 */
export async function finishLogin(
  deps: SsoDeps,
  req: Request,
  res: Response,
  loginId: string | null,
  result: LoginResult,
): Promise<void> {
  if (loginId === null) {
    if (deps.completer.completeUnsolicited && (await deps.completer.completeUnsolicited(req, res, result)))
      return;
    deps.metrics?.loginEnded(loginProtocolOf(req), 'success', 'no_application');
    sendPage(res, {
      status: 200,
      title: noApplicationTitle,
      body: noApplicationPage({ requestId: req.requestId }),
      allowHttpForms: allowHttpForms(deps.config),
    });
    return;
  }
  await deps.completer.complete(req, res, loginId, result);
}

export interface RefusalContext {
  tenantId?: string;
  connectionId?: string;
  /** The app's pending login, when known: the page then offers the way back to the app. */
  loginId?: string | null;
  /** Offer "use another email" (discovery failures). */
  retry?: boolean;
  /** Issue 15: the steps the login got through, stored as its trace with the refusal. */
  trace?: LoginTraceRecorder;
}

/** Where a login's trace is stored, with the deployment's settings. */
export function traceSink(deps: SsoDeps, recorder: LoginTraceRecorder): TraceSink {
  return {
    recorder,
    retentionMs: deps.config.loginTraces.retentionSeconds * 1000,
    masterKey: deps.secrets.masterKey,
  };
}

/** The reason behind any thrown value; unknown errors are logged and become server_error. */
export function reasonOf(req: Request, error: unknown): ReasonCode {
  if (error instanceof LoginRefusedError) {
    req.log.info(
      { reason: error.reason, detail: error.detail, request_id: req.requestId, tenant_id: req.tenantId },
      'sign-in refused',
    );
    return error.reason;
  }
  if (isDatabaseUnavailable(error)) {
    req.log.warn(
      { request_id: req.requestId, tenant_id: req.tenantId },
      'sign-in: database unavailable; answered 503',
    );
    return 'temporarily_unavailable';
  }
  req.log.error({ err: error, request_id: req.requestId, tenant_id: req.tenantId }, 'sign-in failed');
  return 'server_error';
}

/**
 * Ends a refused sign-in: the audit event (when the tenant is known), then
 * back to the app when the refusal belongs to a pending login of the app
 * (its redirect_uri was validated when the login was stored), else a page
 * with the reason code and the request id as support reference.
 *
 * The way back is a 303 to the same-site GET /sso/continue with the failure
 * sealed under the master key and bound to this browser's SSO cookie; there
 * the completer answers the app only if the browser also presents the
 * binding of the app's pending request (tokens/authorize/completer.ts fail). A third
 * party who plants its own login id in someone's browser gets a page, not a
 * redirect, and cannot forge the reason.
 */
export async function refuseLogin(
  deps: SsoDeps,
  req: Request,
  res: Response,
  error: unknown,
  ctx: RefusalContext = {},
): Promise<void> {
  // The tenant the connection named, when the flow had not set it yet: on the log lines below and the request's.
  if (ctx.tenantId && !req.tenantId) req.tenantId = ctx.tenantId;
  const reason = reasonOf(req, error);
  deps.metrics?.loginEnded(loginProtocolOf(req), 'refused', reason);
  let tenantName: string | null = null;
  if (ctx.tenantId && ctx.connectionId) {
    try {
      ({ tenantName } = await recordLoginFailure(deps.db, ctx.tenantId, ctx.connectionId, reason, {
        requestId: req.requestId,
        sourceIp: req.ip,
        loginId: ctx.loginId,
        trace: ctx.trace ? traceSink(deps, ctx.trace) : undefined,
      }));
    } catch (auditError) {
      req.log.error(
        { err: auditError, request_id: req.requestId, tenant_id: req.tenantId },
        'could not audit a refused sign-in',
      );
    }
  }
  if (res.headersSent) return;
  const loginId = ctx.loginId ?? null;
  const canTell = typeof deps.completer.acceptsFailure === 'function';
  const pendingOpen = loginId !== null && canTell && (await loginStillOpen(deps, req, loginId));
  const returnUrl =
    loginId !== null && (pendingOpen || !canTell) ? failureHandoffUrl(deps, req, res, loginId, reason) : null;
  if (pendingOpen && returnUrl && !res.headersSent) {
    res.redirect(303, returnUrl);
    return;
  }
  const page = errorPage({
    baseUrl: deps.config.baseUrl,
    reason,
    requestId: req.requestId,
    retryLoginId: ctx.retry && loginId ? loginId : undefined,
    returnUrl: returnUrl ?? undefined,
    // The tenant the refused login belongs to, named on the page (read with the failure's audit).
    tenantName: tenantName ?? undefined,
  });
  if (res.headersSent) return;
  if (page.status === 503) setRetryAfter(res);
  sendPage(res, {
    status: page.status,
    title: page.title,
    body: page.body,
    allowHttpForms: allowHttpForms(deps.config),
  });
}

async function loginStillOpen(deps: SsoDeps, req: Request, loginId: string): Promise<boolean> {
  try {
    return (await deps.completer.acceptsFailure?.(loginId)) ?? false;
  } catch (error) {
    req.log.error({ err: error, request_id: req.requestId }, 'could not look up the pending login');
    return false;
  }
}

/** /sso/continue with the failure sealed for this browser and this login (handoff.ts). */
function failureHandoffUrl(
  deps: SsoDeps,
  req: Request,
  res: Response,
  loginId: string,
  reason: ReasonCode,
): string {
  const binding = bindBrowser(req, res, bindingOptions(deps.config));
  const sealed = sealFailureHandoff(deps.secrets.masterKey, {
    loginId,
    binding,
    expiresAt: Date.now() + deps.config.tokens.loginTtl * 1000,
    // The support reference travels with the failure: a portal test sign-in shows its trace.
    failure: { ...loginFailureOf(reason), supportRef: req.requestId },
  });
  return `${deps.config.baseUrl}/sso/continue?handoff=${encodeURIComponent(sealed)}`;
}
