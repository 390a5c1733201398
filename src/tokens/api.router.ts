import { Router, type ErrorRequestHandler, type Request, type Response } from 'express';
import type { Config } from '../config/config.js';
import type { Database } from '../db/database.js';
import { isDatabaseUnavailable } from '../db/pg-errors.js';
import { fromBodyParserError, setRetryAfter, UNAVAILABLE_MESSAGE } from '../http/error-handler.js';
import { liveSession } from './live-session.js';
import { verifyAccessToken } from './status/access-token.js';
import { authenticateClient, readClientCredentials } from './grants/client-auth.js';
import { allowAnyOrigin } from './cors.js';
import { exchangeAuthorizationCode, exchangeRefreshToken } from './grants/grants.service.js';
import { OAuthError } from './oauth-errors.js';
import { oauthStringProblem } from './oauth-limits.js';
import { ClientAuthLimits } from './client-auth-limits.js';
import type { SigningKeyStore } from './keys/key-store.js';
import { personClaims } from './grants/token-claims.js';
import { introspectToken, revokeToken } from './status/token-status.service.js';

export interface ApiRouterDeps {
  config: Config;
  db: Database;
  keys: SigningKeyStore;
}

const PATHS = ['/oauth/token', '/oauth/introspect', '/oauth/revoke', '/oauth/userinfo'];

/** A form parameter given at most once (RFC 6749 §3.2). */
function param(req: Request, name: string, required: true): string;
function param(req: Request, name: string, required?: false): string | null;
function param(req: Request, name: string, required = false): string | null {
  const value = (req.body as Record<string, unknown> | undefined)?.[name];
  if (Array.isArray(value)) throw new OAuthError('invalid_request', `${name} is given more than once`);
  if (typeof value === 'string' && value.length > 0) {
    const problem = oauthStringProblem(name, value);
    if (problem) throw new OAuthError('invalid_request', problem);
    return value;
  }
  if (required) throw new OAuthError('invalid_request', `${name} is required`);
  return null;
}

function requireForm(req: Request): void {
  if (!req.is('application/x-www-form-urlencoded'))
    throw new OAuthError('invalid_request', 'The body must be application/x-www-form-urlencoded');
}

/** The OAuth endpoints apps call from their servers. Errors are RFC 6749 `{ error, error_description }`. */
export function apiRouter(deps: ApiRouterDeps): Router {
  const { config, db, keys } = deps;
  const grantDeps = { config, db, signer: keys };
  const statusDeps = { config, db, keys };
  const router = Router();
  router.options(['/oauth/token', '/oauth/userinfo', '/oauth/revoke'], allowAnyOrigin);
  // Failed client authentications, per address and per client_id: checked in the trip that reads the
  // app, a failure counted before its 401 is sent (client-auth-limits.ts).
  const limits = new ClientAuthLimits(config, db);
  const authenticate = async (req: Request, now: Date) => {
    try {
      return await authenticateClient(db, readClientCredentials(req), now, (read) =>
        limits.checkWith(req, read),
      );
    } catch (error) {
      if (error instanceof OAuthError && error.error === 'invalid_client') await limits.failed(req);
      throw error;
    }
  };

  router.post('/oauth/token', allowAnyOrigin, async (req, res) => {
    requireForm(req);
    const now = new Date();
    const grantType = param(req, 'grant_type', true);
    const app = await authenticate(req, now);
    let response;
    if (grantType === 'authorization_code') {
      response = await exchangeAuthorizationCode(
        grantDeps,
        app,
        {
          code: param(req, 'code', true),
          redirectUri: param(req, 'redirect_uri', true),
          codeVerifier: param(req, 'code_verifier'),
        },
        now,
      );
    } else if (grantType === 'refresh_token') {
      response = await exchangeRefreshToken(
        grantDeps,
        app,
        { refreshToken: param(req, 'refresh_token', true), scope: param(req, 'scope') },
        now,
      );
    } else {
      throw new OAuthError('unsupported_grant_type', `grant_type ${grantType} is not supported`);
    }
    res.set({ 'Cache-Control': 'no-store', Pragma: 'no-cache' }).json(response);
  });

  router.post('/oauth/introspect', async (req, res) => {
    requireForm(req);
    const now = new Date();
    const app = await authenticate(req, now);
    if (app.clientType !== 'confidential')
      throw new OAuthError('unauthorized_client', 'Only confidential clients may introspect tokens');
    const result = await introspectToken(statusDeps, app, param(req, 'token', true), now);
    res.set({ 'Cache-Control': 'no-store', Pragma: 'no-cache' }).json(result);
  });

  router.post('/oauth/revoke', allowAnyOrigin, async (req, res) => {
    requireForm(req);
    const now = new Date();
    const app = await authenticate(req, now);
    await revokeToken(statusDeps, app, param(req, 'token', true), now, {
      requestId: req.requestId,
      sourceIp: req.ip,
    });
    // RFC 7009 §2.2: 200 whether or not the token was valid.
    res.status(200).set('Cache-Control', 'no-store').end();
  });

  const userinfo = async (req: Request, res: Response) => {
    const match = /^Bearer ([A-Za-z0-9\-._~+/]+=*)$/i.exec(req.headers.authorization ?? '');
    if (!match?.[1])
      throw new OAuthError('invalid_token', 'A bearer access token is required', { challenge: 'Bearer' });
    const now = new Date();
    const claims = await verifyAccessToken(keys, config.baseUrl, match[1], now).catch((error: unknown) => {
      throw error instanceof OAuthError
        ? new OAuthError(error.error, error.description, { detail: error.detail, challenge: 'Bearer' })
        : error;
    });
    const live = await liveSession(db, claims, now);
    if (!live) throw new OAuthError('invalid_token', 'The session has ended', { challenge: 'Bearer' });
    res.set('Cache-Control', 'no-store').json({
      sub: live.user.id,
      ...personClaims(live.user, live.tenantId, live.roles),
      sid: live.session.id,
    });
  };
  router.get('/oauth/userinfo', allowAnyOrigin, userinfo);
  router.post('/oauth/userinfo', allowAnyOrigin, userinfo);

  router.use(PATHS, oauthErrors);
  return router;
}

/** RFC 6749 §5.2 bodies; unknown errors become server_error, logged with the request id. */
const oauthErrors: ErrorRequestHandler = (error: unknown, req, res, _next) => {
  let oauth: OAuthError;
  if (error instanceof OAuthError) {
    oauth = error;
    req.log.info({ error: oauth.error, detail: oauth.detail, request_id: req.requestId }, oauth.description);
  } else if (fromBodyParserError(error)) {
    oauth = new OAuthError('invalid_request', 'The request body could not be read');
  } else if (isDatabaseUnavailable(error)) {
    // RFC 6749 §4.1.2.1's code for "cannot handle the request now", with a 503 and Retry-After.
    req.log.warn({ request_id: req.requestId }, 'oauth: database unavailable; answered 503');
    oauth = new OAuthError('temporarily_unavailable', UNAVAILABLE_MESSAGE, { status: 503 });
    setRetryAfter(res);
  } else {
    req.log.error({ err: error, request_id: req.requestId }, 'oauth request failed');
    oauth = new OAuthError('server_error', 'Internal server error', { status: 500 });
  }
  if (res.headersSent) return;
  if (oauth.challenge === 'Basic') res.set('WWW-Authenticate', 'Basic realm="gatehouse"');
  if (oauth.challenge === 'Bearer')
    res.set('WWW-Authenticate', `Bearer realm="gatehouse", error="${oauth.error}"`);
  res.status(oauth.status).set({ 'Cache-Control': 'no-store', Pragma: 'no-cache' }).json(oauth.toJSON());
};
