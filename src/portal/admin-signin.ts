import { Router, type Request, type Response } from 'express';
import * as client from 'openid-client';
import { z } from 'zod';
import type { Config } from '../config/config.js';
import { open, seal } from '../config/secret-box.js';
import type { Database } from '../db/database.js';
import { browserTransportOf } from '../http/browser-binding.js';
import { sendPage } from '../http/pages.js';
import { allowHttpForms } from '../sso/outcome.js';
import { PortalOidcClient, portalCallbackUrl, portalSigninUrl } from './admin-signin-client.js';
import { sessionOf } from './forms.js';
import { html, type Html } from './html.js';
import { sendPortalPage } from './layout.js';
import {
  endPortalSession,
  startPortalSession,
  liveTenantAdmin,
  type PortalSessionDeps,
} from './portal-sessions.js';

/**
 * How does a tenant admin get into the portal? "Sign in with your company
 * account": the portal sends the browser through Gatehouse's own
 * /oauth/authorize (home realm discovery by the email as `login_hint`, then
 * the tenant's SAML or OIDC connection), redeems the code as a client would
 * (admin-signin-client.ts) and opens a `tenant_admin` portal session only for
 * a person whose roles now include `admin`, bound to the Gatehouse session the
 * sign-in created (portal-sessions.ts asks liveSession about it on every
 * request). State, nonce and the PKCE verifier ride in a sealed, httpOnly,
 * SameSite=Lax cookie (AES-GCM under the master key, bound to its purpose),
 * cleared at the callback.
 */

export interface AdminSigninDeps {
  config: Config;
  db: Database;
  masterKey: Buffer;
}

const COOKIE = 'gh_portal_signin';
const SEAL_CONTEXT = 'portal:admin-signin';
/** Matches how long /oauth/authorize keeps the login open (GATEHOUSE_LOGIN_TTL caps it further). */
const SIGNIN_SECONDS = 15 * 60;

const signinForm = z.object({
  email: z
    .string()
    .trim()
    .min(3)
    .max(320)
    .regex(/^[^\s@]+@[^\s@]+$/),
});
const sealedState = z.object({
  state: z.string(),
  nonce: z.string(),
  verifier: z.string(),
  exp: z.number(),
});
const idTokenIds = z.object({ sub: z.uuid(), tid: z.uuid(), sid: z.uuid() });

/** Reason codes shown on the refusal page (and in the log), never a library's message. */
export type SigninRefusal =
  | 'signin_expired'
  | 'state_mismatch'
  | 'nonce_mismatch'
  | 'code_rejected'
  | 'login_refused'
  | 'response_invalid'
  | 'not_tenant_admin';

const MESSAGES: Record<SigninRefusal, string> = {
  signin_expired:
    'This sign-in was not started in this browser, or it took too long. Start again from the sign-in page.',
  state_mismatch: 'This answer does not belong to the sign-in this browser started. Start again.',
  nonce_mismatch: 'The identity token does not belong to the sign-in this browser started. Start again.',
  code_rejected: 'The sign-in could not be completed: the code was refused. Start again.',
  login_refused: 'Your identity provider or Gatehouse refused the sign-in.',
  response_invalid: 'The answer to this sign-in, or its identity token, could not be verified. Start again.',
  not_tenant_admin:
    'You signed in, but your account is not an administrator of your organisation in Gatehouse. Ask an ' +
    'administrator to give you the admin role (through a group mapped to it).',
};

export function signinCookieName(baseUrl: string): string {
  return browserTransportOf(baseUrl) === 'https' ? `__Host-${COOKIE}` : COOKIE;
}

function cookieOptions(baseUrl: string) {
  return {
    httpOnly: true,
    secure: browserTransportOf(baseUrl) !== 'http',
    sameSite: 'lax' as const,
    path: '/',
  };
}

function readSigninCookie(req: Request, name: string): string | null {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq >= 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return null;
}

/** The state this browser sealed at the start, if it opens, parses and has not expired. */
function openSigninState(masterKey: Buffer, value: string | null, now: Date) {
  if (!value || value.length > 2000) return null;
  try {
    const parsed = sealedState.safeParse(JSON.parse(open(masterKey, value, SEAL_CONTEXT)));
    return parsed.success && parsed.data.exp > now.getTime() ? parsed.data : null;
  } catch {
    return null;
  }
}

/**
 * What a failed code grant means, from openid-client's typed errors: the OP's
 * error answer at the callback (RFC 6749 §4.1.2.1), its refusal at the token
 * endpoint (§5.2), or a check of ours on the answer (state, nonce, ID token).
 * null: not a refusal (a network failure or a bug), left to the error handler.
 */
export function refusalOf(error: unknown): SigninRefusal | null {
  if (error instanceof client.AuthorizationResponseError) return 'login_refused';
  if (error instanceof client.ResponseBodyError) return 'code_rejected';
  if (error instanceof client.ClientError) {
    // openid-client wraps oauth4webapi's error, whose message names the parameter or claim that differed.
    const message = `${error.message} ${error.cause instanceof Error ? error.cause.message : ''}`;
    if (message.includes('"state"')) return 'state_mismatch';
    if (message.includes('"nonce"')) return 'nonce_mismatch';
    return 'response_invalid';
  }
  return null;
}

function refusalPage(res: Response, reason: SigninRefusal, detail?: string): void {
  sendPortalPage(res, {
    status: reason === 'not_tenant_admin' ? 403 : 400,
    title: reason === 'not_tenant_admin' ? 'Not an administrator' : 'Sign-in did not complete',
    session: null,
    body: html`<div class="card error">
      <p>${MESSAGES[reason]}</p>
      <p class="muted">Reason: <code id="reason-code">${reason}</code>${detail ? html` (${detail})` : ''}</p>
      <p><a href="/portal/signin">Back to sign-in</a></p>
    </div>`,
  });
}

/** GET/POST /portal/signin and GET /portal/oidc/callback: mounted before the portal's session gate. */
export function adminSigninRoutes(deps: AdminSigninDeps, oidc = portalOidcClientFor(deps)): Router {
  const router = Router();
  const { baseUrl } = deps.config;
  const sessionDeps: PortalSessionDeps = { db: deps.db, baseUrl, masterKey: deps.masterKey };
  const cookieName = signinCookieName(baseUrl);

  // A sign-in page, framed like /login rather than a portal page: its form's answer redirects on to the
  // tenant's IdP, and Chrome applies form-action to that redirect, which the portal's 'self' would refuse.
  const signinPage = (res: Response, status: number, body: Html) =>
    sendPage(res, {
      status,
      title: 'Sign in with your company account',
      body: html`<h1>Sign in with your company account</h1>
        ${body}`.value,
      allowHttpForms: allowHttpForms(deps.config),
    });

  router.get('/portal/signin', (_req, res) => signinPage(res, 200, signinFormBody('')));

  router.post('/portal/signin', async (req, res) => {
    const parsed = signinForm.safeParse(req.body ?? {});
    if (!parsed.success) {
      const given = (req.body as { email?: unknown } | undefined)?.email;
      return void signinPage(
        res,
        400,
        html`<p class="error" role="alert">Enter your work email address.</p>
          ${signinFormBody(typeof given === 'string' ? given.slice(0, 320) : '')}`,
      );
    }
    const config = await oidc.configuration();
    const verifier = client.randomPKCECodeVerifier();
    const state = client.randomState();
    const nonce = client.randomNonce();
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: portalCallbackUrl(baseUrl),
      scope: 'openid email profile',
      response_type: 'code',
      code_challenge: await client.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state,
      nonce,
      // Home realm discovery at /oauth/authorize: the email's verified domain names the tenant and its IdP.
      login_hint: parsed.data.email,
    });
    const exp = Date.now() + SIGNIN_SECONDS * 1000;
    const sealed = seal(deps.masterKey, JSON.stringify({ state, nonce, verifier, exp }), SEAL_CONTEXT);
    res.cookie(cookieName, sealed, { ...cookieOptions(baseUrl), maxAge: SIGNIN_SECONDS * 1000 });
    res.redirect(303, url.toString());
  });

  router.get('/portal/oidc/callback', async (req, res) => {
    const now = new Date();
    const started = openSigninState(deps.masterKey, readSigninCookie(req, cookieName), now);
    // One answer per started sign-in: the cookie goes whatever happens next.
    res.clearCookie(cookieName, cookieOptions(baseUrl));
    if (!started) return void refusalPage(res, 'signin_expired');
    // openid-client takes redirect_uri from this URL: the registered callback, with the query as received.
    const callbackUrl = new URL(portalCallbackUrl(baseUrl));
    callbackUrl.search = new URL(req.originalUrl, 'http://callback.invalid').search;
    const config = await oidc.configuration();
    let claims;
    try {
      const tokens = await client.authorizationCodeGrant(config, callbackUrl, {
        pkceCodeVerifier: started.verifier,
        expectedState: started.state,
        expectedNonce: started.nonce,
        idTokenExpected: true,
      });
      claims = { ...tokens.claims(), idToken: tokens.id_token ?? '', refreshToken: tokens.refresh_token };
    } catch (error) {
      const reason = refusalOf(error);
      if (!reason) throw error;
      const detail =
        error instanceof client.AuthorizationResponseError || error instanceof client.ResponseBodyError
          ? (error.error_description ?? error.error).slice(0, 200)
          : undefined;
      return void refusalPage(res, reason, detail);
    }
    const ids = idTokenIds.safeParse(claims);
    if (!ids.success) return void refusalPage(res, 'response_invalid');
    const { sub, tid, sid } = ids.data;
    const session = { tenantId: tid, gatehouseSessionId: sid, userId: sub };
    // The roles now, through liveSession, not the token's `roles` claim.
    const live = await liveTenantAdmin(deps.db, session, now);
    if (!live) {
      // The Gatehouse session this sign-in opened serves nothing: ended as a client ends one, RFC 7009 §2.1.
      if (claims.refreshToken) {
        await client.tokenRevocation(config, claims.refreshToken).catch((err: unknown) => {
          req.log.warn({ err, request_id: req.requestId }, 'portal: could not revoke a refused sign-in');
        });
      }
      return void refusalPage(res, 'not_tenant_admin');
    }
    await startPortalSession(
      sessionDeps,
      res,
      { kind: 'tenant_admin', ...session, sessionExpiresAt: live.session.expiresAt, idToken: claims.idToken },
      now,
    );
    res.redirect(303, `/portal/t/${tid}`);
  });

  return router;
}

/**
 * POST /portal/logout for a tenant admin (after the session gate, before the generic sign-out): ends the
 * portal session and offers RP-Initiated Logout 1.0 at the OP, which ends the Gatehouse session too.
 */
export function tenantAdminLogoutRoute(deps: AdminSigninDeps, oidc = portalOidcClientFor(deps)): Router {
  const router = Router();
  const { baseUrl } = deps.config;
  router.post('/portal/logout', async (req, res, next) => {
    if (sessionOf(res).kind !== 'tenant_admin') return next();
    const idToken = await endPortalSession({ db: deps.db, baseUrl, masterKey: deps.masterKey }, req, res);
    const clientId = await oidc.clientId();
    sendPortalPage(res, {
      title: 'Signed out',
      session: null,
      body: html`<p>You are signed out of the portal.</p>
        ${
          idToken
            ? html`<form method="get" action="/oauth/logout" class="card">
                <input type="hidden" name="id_token_hint" value="${idToken}" />
                <input type="hidden" name="client_id" value="${clientId}" />
                <input type="hidden" name="post_logout_redirect_uri" value="${portalSigninUrl(baseUrl)}" />
                <p>Your Gatehouse sign-in is still open for other apps of your organisation.</p>
                <button type="submit">Also sign out of Gatehouse</button>
              </form>`
            : ''
        }
        <p><a href="/portal/signin">Sign in again</a></p>`,
    });
  });
  return router;
}

function signinFormBody(email: string): Html {
  return html`<p>Administrators of an organisation that signs in through Gatehouse manage its setup here.</p>
    <form method="post" action="/portal/signin">
      <label for="email">Work email</label>
      <input type="email" id="email" name="email" autocomplete="email" required value="${email}" />
      <button type="submit">Continue</button>
    </form>`;
}

/** One client per app (its config object): the sign-in and logout routes share its discovery cache. */
const clients = new WeakMap<Config, PortalOidcClient>();
export function portalOidcClientFor(deps: AdminSigninDeps): PortalOidcClient {
  let oidc = clients.get(deps.config);
  if (!oidc) {
    const { baseUrl, portal } = deps.config;
    oidc = new PortalOidcClient({ db: deps.db, baseUrl, opUrl: portal.opUrl });
    clients.set(deps.config, oidc);
  }
  return oidc;
}
