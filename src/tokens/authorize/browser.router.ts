import { t } from '../../http/strings.js';
import { Router, type ErrorRequestHandler, type Request, type Response } from 'express';
import type { Config } from '../../config/config.js';
import type { Database } from '../../db/database.js';
import { bindBrowser, presentedBinding } from '../../http/browser-binding.js';
import type { LoginFlow } from '../../sso/login-handoff.js';
import { authorizationBinding, ISSUED_BINDING } from './authorization-binding.js';
import { continueLogin, storePendingLogin, type ContinueFailure } from './authorization-requests.service.js';
import { authorizationResponseUrl, requestedClientId, validateAuthorizationRequest } from './authorize.js';
import { findClient } from '../grants/client-auth.js';
import { sendErrorPage, sendInfoPage } from './error-page.js';
import { endSession } from '../status/logout.service.js';
import { discoveryProbeLimited } from '../rate-limits.js';
import type { SigningKeyStore } from '../keys/key-store.js';
import { isDatabaseUnavailable } from '../../db/pg-errors.js';
import { setRetryAfter } from '../../http/error-handler.js';

export interface BrowserRouterDeps {
  config: Config;
  db: Database;
  keys: SigningKeyStore;
  /** The IdP side (src/sso). Without it, valid requests are answered temporarily_unavailable. */
  loginFlow?: LoginFlow;
}

const CONTINUE_PAGES: Record<ContinueFailure, { title: string; message: string }> = t.authorize.continue;

const single = (value: unknown): string | null => (typeof value === 'string' && value ? value : null);

/** The browser-facing endpoints: /oauth/authorize (+ continue) and end_session. Errors are pages. */
export function browserRouter(deps: BrowserRouterDeps): Router {
  const { config, db } = deps;
  const binding = authorizationBinding(config);
  const router = Router();

  const authorize = async (req: Request, res: Response) => {
    // OIDC Core §3.1.2.1: GET and POST (form) are both supported.
    const params = (req.method === 'POST' ? req.body : req.query) as Record<string, unknown>;
    const clientId = requestedClientId(params);
    const app = clientId ? await findClient(db, clientId) : null;
    const outcome = validateAuthorizationRequest(params, app);
    if (outcome.kind === 'page') {
      return sendErrorPage(req, res, {
        status: 400,
        reason: outcome.reason,
        title: t.authorize.requestNotAccepted,
        message: outcome.message,
      });
    }
    if (outcome.kind === 'redirect_error') {
      const { redirectUri, error, description, state } = outcome;
      return res.redirect(
        303,
        authorizationResponseUrl(redirectUri, config.baseUrl, {
          error,
          error_description: description,
          state,
        }),
      );
    }
    const { request } = outcome;
    if (!deps.loginFlow) {
      return res.redirect(
        303,
        authorizationResponseUrl(request.redirectUri, config.baseUrl, {
          error: 'temporarily_unavailable',
          error_description: 'Sign-in is not available',
          state: request.state,
        }),
      );
    }
    // Discovery of the app's login_hint answers which domains have SSO: the /login limiter's budget.
    if (request.loginHint !== null && (await discoveryProbeLimited(config, db, req))) {
      req.log.warn({ request_id: req.requestId }, 'home realm discovery rate limit reached');
      return res.set('Retry-After', '60').redirect(
        303,
        authorizationResponseUrl(request.redirectUri, config.baseUrl, {
          error: 'temporarily_unavailable',
          error_description: 'rate_limited',
          state: request.state,
        }),
      );
    }
    const browserHash = bindBrowser(req, res, binding);
    res.locals[ISSUED_BINDING] = browserHash;
    const pending = await storePendingLogin(db, request, browserHash, new Date(), config.tokens.loginTtl);
    await deps.loginFlow.start(req, res, {
      loginId: pending.id,
      appId: pending.appId,
      loginHint: pending.loginHint,
      organization: pending.organization,
      connectionId: pending.connectionId,
    });
  };
  router.get('/oauth/authorize', authorize);
  router.post('/oauth/authorize', authorize);

  router.get('/oauth/authorize/continue', async (req, res) => {
    const outcome = await continueLogin(db, {
      loginId: single(req.query.login) ?? '',
      completionToken: single(req.query.token) ?? '',
      browserHash: presentedBinding(req, binding),
      now: new Date(),
      codeTtlSeconds: config.tokens.authorizationCodeTtl,
    });
    if (!outcome.ok) {
      return sendErrorPage(req, res, {
        status: 400,
        reason: outcome.reason,
        ...CONTINUE_PAGES[outcome.reason],
      });
    }
    res.redirect(
      303,
      authorizationResponseUrl(outcome.request.redirectUri, config.baseUrl, {
        code: outcome.code,
        state: outcome.request.state,
      }),
    );
  });

  const logout = async (req: Request, res: Response) => {
    const params = (req.method === 'POST' ? req.body : req.query) as Record<string, unknown>;
    const outcome = await endSession(
      deps,
      {
        idTokenHint: single(params.id_token_hint),
        postLogoutRedirectUri: single(params.post_logout_redirect_uri),
        state: single(params.state),
        clientId: single(params.client_id),
      },
      { requestId: req.requestId, sourceIp: req.ip },
    );
    // Issue 16: a session a SAML login made also ends at the IdP (signed LogoutRequest), which comes back here after.
    if (outcome.kind !== 'error' && outcome.ended && deps.loginFlow?.endAtIdp) {
      const returnUrl = outcome.kind === 'redirect' ? outcome.url : null;
      if (await deps.loginFlow.endAtIdp(req, res, { ...outcome.ended, returnUrl })) return;
    }
    if (outcome.kind === 'redirect') return res.redirect(303, outcome.url);
    if (outcome.kind === 'signed_out') return sendInfoPage(res);
    sendErrorPage(req, res, {
      status: 400,
      reason: outcome.reason,
      title: outcome.sessionEnded ? t.authorize.logout.endedTitle : t.authorize.logout.notCompletedTitle,
      message: outcome.message,
    });
  };
  router.get('/oauth/logout', logout);
  router.post('/oauth/logout', logout);

  // Scoped to these paths: errors of other routes are not this surface's to answer.
  router.use(['/oauth/authorize', '/oauth/logout'], pageErrors);
  return router;
}

/** Anything unexpected in a browser flow: a page with a reason code, never a stack trace. */
const pageErrors: ErrorRequestHandler = (error: unknown, req, res, _next) => {
  if (isDatabaseUnavailable(error)) {
    req.log.warn({ request_id: req.requestId }, 'sign-in: database unavailable; answered 503');
    if (res.headersSent) return;
    setRetryAfter(res);
    return sendErrorPage(req, res, {
      status: 503,
      reason: 'temporarily_unavailable',
      ...t.authorize.unavailable,
    });
  }
  req.log.error({ err: error, request_id: req.requestId }, 'sign-in request failed');
  if (res.headersSent) return;
  sendErrorPage(req, res, {
    status: 500,
    reason: 'server_error',
    ...t.authorize.failed,
  });
};
