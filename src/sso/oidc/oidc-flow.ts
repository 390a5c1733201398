import type { Request, Response } from 'express';
import * as client from 'openid-client';
import { Strategy, type VerifyFunctionWithRequest } from 'openid-client/passport';
import { Passport } from 'passport';
import { resolveProfileAttributes } from '../../connections/attribute-mapping.js';
import { Connection } from '../../connections/connection.entity.js';
import { findConnectionForLogin } from '../../connections/connections.service.js';
import { currentClientKey } from '../../connections/client-keys.js';
import { resolveTenantByConnection } from '../../db/resolvers.js';
import { bindBrowser, presentedBinding } from '../../http/browser-binding.js';
import { openidClientFetch, refusedCallMessage } from '../../outbound/fetch-client.js';
import { outboundPolicy } from '../../outbound/pinned-request.js';
import { completeLogin } from '../complete-login.js';
import { isTestLoginFor, traceKindOf } from '../login-trace-kind.js';
import { LoginTraceRecorder, STAGES } from '../login-trace-steps.js';
import { bindingOptions, finishLogin, refuseLogin, traceSink, type SsoDeps } from '../outcome.js';
import { LoginRefusedError, refuse } from '../reasons.js';
import { runStrategy } from '../run-strategy.js';
import { OidcConfigurations } from './oidc-config.js';
import { reasonOfOidcError } from './oidc-errors.js';
import { consumeOidcState, saveOidcState, type OidcPending } from './oidc-state.js';

const STRATEGY = 'oidc';
/** Where openid-client's Strategy reads the authorization request's state; we fill it from Postgres. */
const SESSION_KEY = 'gatehouse_oidc';
const DISCOVERY_CACHE_MS = 5 * 60 * 1000;
/** An ID token with an unknown `kid` refetches the IdP's JWKS at once, at most once per this long. */
const JWKS_REFETCH_COOLDOWN_MS = 10 * 1000;

/** The callback never starts an authorization request: a bare GET on it is refused before this runs. */
class CallbackStrategy extends Strategy {
  override shouldInitiateAuthRequest(): boolean {
    return false;
  }
}

interface OidcLogin {
  claims: Record<string, unknown>;
  userinfo: Record<string, unknown>;
}

export function oidcCallbackUrl(baseUrl: string, connectionId: string): string {
  return `${baseUrl}/oidc/${connectionId}/callback`;
}

/**
 * OpenID Connect at a tenant's IdP with openid-client 6: authorization code
 * + PKCE (S256) + state + nonce. The start builds the authorization URL with
 * openid-client's helpers once state, nonce and verifier are stored (so the
 * IdP can never answer before they are); the callback runs openid-client's
 * passport Strategy (`session: false`), which checks state, the RFC 9207
 * `iss`, exchanges the code with the verifier and validates the ID token
 * (pinned algorithms, signature, iss, aud, azp, exp, nonce).
 */
export class OidcFlow {
  private readonly configs: OidcConfigurations;

  constructor(private readonly deps: SsoDeps) {
    this.configs = new OidcConfigurations({
      masterKey: deps.secrets.masterKey,
      allowInsecureRequests: deps.config.outboundFetch.allowPrivate,
      clockSkewSeconds: deps.config.sso.clockSkewSeconds,
      timeoutMs: deps.config.outboundFetch.timeoutMs,
      cacheTtlMs: DISCOVERY_CACHE_MS,
      jwksRefetchCooldownMs: JWKS_REFETCH_COOLDOWN_MS,
      // private_key_jwt (issue 16): the connection's current key, read when discovery is (re)built.
      loadClientKey: (c) =>
        deps.db.withTenant(c.tenantId, (em) => currentClientKey(em, deps.secrets.masterKey, c.id)),
      // A refused address ends the login with connection_misconfigured before any connection is
      // opened; a network failure stays TypeError('fetch failed') (oidc_provider_unavailable).
      fetch: openidClientFetch(
        outboundPolicy(deps.config.outboundFetch),
        (message, url) => new LoginRefusedError('connection_misconfigured', refusedCallMessage(message, url)),
      ),
    });
  }

  async start(
    req: Request,
    res: Response,
    connection: Connection,
    loginId: string,
    loginHint: string | null,
  ): Promise<void> {
    const config = await this.configs.forConnection(connection);
    const browserHash = bindBrowser(req, res, bindingOptions(this.deps.config));
    const state = client.randomState();
    const nonce = client.randomNonce();
    const codeVerifier = client.randomPKCECodeVerifier();
    await saveOidcState(
      this.deps.db,
      this.deps.secrets.masterKey,
      {
        tenantId: connection.tenantId,
        connectionId: connection.id,
        loginId,
        browserHash,
        state,
        nonce,
        codeVerifier,
      },
      this.deps.config.tokens.loginTtl * 1000,
      new Date(),
    );
    const parameters: Record<string, string> = {
      response_type: 'code',
      redirect_uri: oidcCallbackUrl(this.deps.config.baseUrl, connection.id),
      scope: connection.oidcScopes.join(' '),
      state,
      nonce,
      code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
      code_challenge_method: 'S256',
    };
    if (loginHint) parameters.login_hint = loginHint;
    res.redirect(302, client.buildAuthorizationUrl(config, parameters).href);
  }

  /** GET /oidc/{connectionId}/callback */
  async callback(req: Request, res: Response, connectionId: string): Promise<void> {
    const tenantId = await resolveTenantByConnection(this.deps.db, connectionId);
    if (!tenantId)
      return refuseLogin(this.deps, req, res, new LoginRefusedError('connection_unknown', connectionId));
    req.tenantId = tenantId;
    const connection = await this.deps.db.withTenant(tenantId, (em) =>
      findConnectionForLogin(em, connectionId, { type: 'oidc' }),
    );
    if (!connection)
      return refuseLogin(this.deps, req, res, new LoginRefusedError('connection_unknown', connectionId));

    let pending: OidcPending | null = null;
    // Issue 15: the login's trace, stored with its outcome (src/sso/login-trace-*.ts).
    const trace = new LoginTraceRecorder('oidc');
    try {
      const state = typeof req.query.state === 'string' ? req.query.state : null;
      if (!state) refuse('oidc_state_invalid', 'no state');
      pending = await consumeOidcState(this.deps.db, this.deps.secrets.masterKey, {
        tenantId,
        connectionId,
        state,
        browserHash: presentedBinding(req, bindingOptions(this.deps.config)),
        now: new Date(),
      });
      if (!pending) refuse('oidc_state_invalid', 'unknown, used, expired or another browser');
      trace.pass(...STAGES.oidcState.completes);
      trace.kind = traceKindOf(this.deps.secrets.masterKey, pending.loginId);
      // An inactive connection answers only a portal test sign-in bound to it (issue 15).
      if (
        connection.status !== 'active' &&
        !isTestLoginFor(this.deps.secrets.masterKey, pending.loginId, tenantId, connectionId)
      )
        refuse('connection_unknown', `connection is ${connection.status}`);
      // Only the error code is kept: error_description is the IdP's (or an attacker's) free text.
      if (typeof req.query.error === 'string')
        refuse('oidc_idp_error', `error=${req.query.error.slice(0, 64)}`);
      if (typeof req.query.code !== 'string') refuse('oidc_idp_error', 'no code');

      const started = pending;
      const skewSeconds = this.deps.config.sso.clockSkewSeconds;
      const login = await trace.checkAsync(STAGES.oidcToken, async () => {
        const answer = await this.exchange(req, res, connection, started);
        checkIssuedAt(answer.claims, new Date(), skewSeconds);
        return answer;
      });
      const attributes = { ...login.userinfo, ...login.claims };
      const subject =
        typeof login.claims.sub === 'string' ? login.claims.sub : refuse('oidc_id_token_invalid', 'no sub');
      const resolved = resolveProfileAttributes(connection.attributeMapping, attributes);
      trace.profile = {
        subject,
        email: resolved.email,
        given_name: resolved.givenName,
        family_name: resolved.familyName,
        display_name: resolved.displayName,
        groups: resolved.groups,
        attribute_names: Object.keys(attributes).slice(0, 100),
      };
      const emailAssertedByIdp = emailUsable({
        email: resolved.email,
        emailVerified: attributes.email_verified,
        trustEmailUnverified: connection.oidcTrustEmailUnverified,
      });
      const result = await completeLogin(
        this.deps.db,
        connection,
        { connectionId: connection.id, subject, emailAssertedByIdp, ...resolved },
        authTimeOf(login.claims, skewSeconds),
        { requestId: req.requestId, sourceIp: req.ip, trace: traceSink(this.deps, trace) },
      );
      await finishLogin(this.deps, req, res, pending.loginId, result);
    } catch (error) {
      await refuseLogin(this.deps, req, res, error, {
        tenantId,
        connectionId,
        loginId: pending?.loginId ?? null,
        trace,
      });
    }
  }

  /** The code exchange and ID token validation, through openid-client's passport Strategy. */
  private async exchange(
    req: Request,
    res: Response,
    connection: Connection,
    pending: OidcPending,
  ): Promise<OidcLogin> {
    const config = await this.configs.forConnection(connection);
    const verify: VerifyFunctionWithRequest = (_req, tokens, verified) => {
      const claims = tokens.claims();
      if (!claims) {
        verified(new LoginRefusedError('oidc_id_token_invalid', 'no ID token'));
        return;
      }
      const needsUserinfo = claims.email === undefined && Boolean(config.serverMetadata().userinfo_endpoint);
      const userinfo = needsUserinfo
        ? client.fetchUserInfo(config, tokens.access_token, claims.sub)
        : Promise.resolve({});
      userinfo.then(
        (info) => {
          verified(null, { claims: { ...claims }, userinfo: { ...info } } satisfies OidcLogin);
        },
        (error: unknown) => {
          verified(error);
        },
      );
    };
    const authenticator = new Passport();
    authenticator.use(
      STRATEGY,
      new CallbackStrategy(
        {
          config,
          name: STRATEGY,
          sessionKey: SESSION_KEY,
          callbackURL: oidcCallbackUrl(this.deps.config.baseUrl, connection.id),
          passReqToCallback: true,
        },
        verify,
      ),
    );
    // No server-side session store: the Strategy's "session" is this request's, filled from the state row.
    (req as unknown as { session: Record<string, unknown> }).session = {
      [SESSION_KEY]: { code_verifier: pending.codeVerifier, nonce: pending.nonce, state: pending.state },
    };
    const outcome = await runStrategy(authenticator, STRATEGY, req, res).finally(() =>
      this.configs.keepJwks(config),
    );
    if (outcome.kind === 'success') return outcome.user as OidcLogin;
    if (outcome.kind === 'error') throw reasonOfOidcError(outcome.error);
    if (outcome.kind === 'fail') throw new LoginRefusedError('oidc_idp_error', 'access_denied');
    throw new Error('the OIDC callback answered the request itself');
  }
}

/** auth_time when the IdP gives a sensible one, else now. */
function authTimeOf(claims: Record<string, unknown>, skewSeconds: number): Date {
  const now = Date.now();
  const authTime = claims.auth_time;
  if (typeof authTime === 'number' && authTime * 1000 <= now + skewSeconds * 1000)
    return new Date(authTime * 1000);
  return new Date(now);
}

/**
 * OIDC Core §3.1.3.7 leaves `iat` to the client: an ID token dated later than
 * now plus the accepted skew was minted for later use (or by a broken clock)
 * and is refused. openid-client only checks that `iat` is a number.
 */
export function checkIssuedAt(claims: Record<string, unknown>, now: Date, skewSeconds: number): void {
  const iat = claims.iat;
  if (typeof iat !== 'number' || !Number.isFinite(iat)) refuse('oidc_id_token_invalid', 'no iat');
  const latest = Math.floor(now.getTime() / 1000) + skewSeconds;
  if (iat > latest) refuse('oidc_id_token_issued_in_future', `iat ${iat} is after ${latest}`);
}

/**
 * O-13: an IdP-asserted email finds or creates an account only when the IdP
 * says it verified it (`email_verified` true), or when the tenant's admin
 * chose to trust this IdP's emails (`trust_email_unverified`, e.g. Entra ID,
 * which sends no email_verified). The string "true" counts as true: some IdPs
 * (Cognito, several SAML-to-OIDC bridges) serialise the claim as a string, and
 * it is as much a statement of the signed token as the boolean. Anything else
 * ("false", missing, 1) is not verified, and the login is refused rather than
 * quietly carried on without the email.
 */
export function emailUsable(input: {
  email: string | null;
  emailVerified: unknown;
  trustEmailUnverified: boolean;
}): boolean {
  if (input.email === null) return false;
  if (input.emailVerified === true || input.emailVerified === 'true') return true;
  if (input.trustEmailUnverified) return true;
  return refuse(
    'oidc_email_unverified',
    `email_verified is ${JSON.stringify(input.emailVerified) ?? 'absent'}`,
  );
}
