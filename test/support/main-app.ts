import * as client from 'openid-client';
import type { TestBrowser } from './browser.js';
import type { OAuthServer } from './oauth-server.js';

/**
 * The main app, played by openid-client 6 exactly as a real integration uses
 * it: discovery, PKCE, state and nonce, code exchange, refresh. Gatehouse runs
 * on http://127.0.0.1 in tests, hence allowInsecureRequests.
 */
export const CALLBACK = 'http://localhost:3000/callback';

export type ClientAuthMethod = 'basic' | 'post' | 'none';

export async function mainAppClient(
  gh: OAuthServer,
  clientId: string,
  clientSecret: string | undefined,
  method: ClientAuthMethod = 'basic',
): Promise<client.Configuration> {
  const auth =
    method === 'none'
      ? client.None()
      : method === 'post'
        ? client.ClientSecretPost(clientSecret)
        : client.ClientSecretBasic(clientSecret);
  return client.discovery(new URL(gh.baseUrl), clientId, undefined, auth, {
    execute: [client.allowInsecureRequests],
  });
}

export interface AuthorizationAttempt {
  verifier: string;
  state: string;
  nonce: string;
  /** The app's callback URL Gatehouse redirected to, or null when a page answered. */
  callback: string | null;
  status: number;
  body: string;
}

/** Sends the browser through /oauth/authorize until Gatehouse redirects back to the app. */
export async function authorize(
  config: client.Configuration,
  browser: TestBrowser,
  params: Record<string, string>,
  redirectUri = CALLBACK,
): Promise<AuthorizationAttempt> {
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: redirectUri,
    scope: 'openid email profile',
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
    nonce,
    ...params,
  });
  const visit = await browser.visit(url.toString(), redirectUri);
  return { verifier, state, nonce, callback: visit.redirectedTo, status: visit.status, body: visit.body };
}

/** The whole sign-in: authorize, then the code exchange with every check openid-client makes. */
export async function signIn(
  config: client.Configuration,
  browser: TestBrowser,
  loginHint: string,
  params: Record<string, string> = {},
) {
  const attempt = await authorize(config, browser, { login_hint: loginHint, ...params });
  if (!attempt.callback) throw new Error(`no redirect to the app: ${attempt.status} ${attempt.body}`);
  const tokens = await client.authorizationCodeGrant(config, new URL(attempt.callback), {
    pkceCodeVerifier: attempt.verifier,
    expectedState: attempt.state,
    expectedNonce: attempt.nonce,
    idTokenExpected: true,
  });
  return { tokens, attempt };
}

/** A raw form POST to a Gatehouse endpoint (for requests openid-client would refuse to make). */
export async function postForm(
  gh: OAuthServer,
  path: string,
  form: Record<string, string | string[]>,
  basic?: { id: string; secret: string },
): Promise<{ status: number; body: Record<string, unknown>; headers: Headers }> {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(form)) for (const one of [v].flat()) params.append(k, one);
  const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' };
  if (basic)
    headers.authorization = `Basic ${Buffer.from(
      `${encodeURIComponent(basic.id)}:${encodeURIComponent(basic.secret)}`,
    ).toString('base64')}`;
  const res = await fetch(`${gh.url}${path}`, { method: 'POST', headers, body: params.toString() });
  const text = await res.text();
  return {
    status: res.status,
    body: text ? (JSON.parse(text) as Record<string, unknown>) : {},
    headers: res.headers,
  };
}

/** The `code` of a callback URL. */
export function codeOf(callback: string | null): string {
  const code = callback ? new URL(callback).searchParams.get('code') : null;
  if (!code) throw new Error(`no code in ${callback}`);
  return code;
}
