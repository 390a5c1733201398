import { createServer, type Server } from 'node:http';
import * as client from 'openid-client';
import { freePort } from './deployment.js';

/**
 * How does the live-IdP suite play the main app? openid-client with PKCE,
 * state and nonce, as a real integration uses it, behind an HTTP server on
 * localhost that starts logins (`/start?connection=…`, and `/initiate`, its
 * OIDC Core §4 initiate_login_uri) and receives the callback, which Chromium
 * lands on; the test then makes the code exchange the app's callback would.
 * For single logout it also plays the app's side of OIDC: RP-initiated logout
 * (end_session_endpoint with id_token_hint), a page at its
 * post_logout_redirect_uri, and a back-channel logout receiver (OIDC
 * Back-Channel Logout 1.0 §2.5) that records every logout token it is sent.
 */
export class MainApp {
  private readonly pending = new Map<string, { pkceCodeVerifier: string; expectedNonce: string }>();
  /** Every `iss` the app's initiate_login_uri received. */
  readonly initiated: { iss: string | null; loginHint: string | null }[] = [];
  /** Set once the app is registered: discovery of Gatehouse, and its client id. */
  config: client.Configuration | undefined;
  clientId = '';
  /** The Gatehouse issuer the app trusts. */
  issuer = '';
  /** The tokens of the last code exchange. */
  tokens: client.TokenEndpointResponse | undefined;
  /** Every logout_token POSTed to the back-channel logout URI. */
  readonly logoutTokens: string[] = [];

  private constructor(
    readonly url: string,
    private readonly server: Server,
  ) {}

  static async start(): Promise<MainApp> {
    const port = await freePort();
    const server = createServer();
    const app = new MainApp(`http://localhost:${port}`, server);
    server.on('request', (req, res) => {
      if (req.method === 'POST' && req.url === '/backchannel-logout') {
        // OIDC Back-Channel Logout 1.0 §2.5: application/x-www-form-urlencoded `logout_token`.
        let body = '';
        req.on('data', (c: Buffer) => (body += c.toString()));
        req.on('end', () => {
          const token = new URLSearchParams(body).get('logout_token');
          if (token) app.logoutTokens.push(token);
          res.writeHead(token ? 200 : 400, { 'cache-control': 'no-store' }).end();
        });
        return;
      }
      void app.handle(new URL(req.url ?? '/', app.url)).then(
        (answer) => {
          if ('redirect' in answer) res.writeHead(302, { location: answer.redirect }).end();
          else res.writeHead(200, { 'content-type': 'text/html' }).end(answer.html);
        },
        (error: unknown) => res.writeHead(500).end(String(error)),
      );
    });
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    return app;
  }

  private configured(): client.Configuration {
    if (!this.config) throw new Error('the main app is not registered yet');
    return this.config;
  }

  get callback(): string {
    return `${this.url}/callback`;
  }
  get backchannelLogoutUri(): string {
    return `${this.url}/backchannel-logout`;
  }
  /** Where Gatehouse returns the browser after RP-initiated logout (registered with the app). */
  get postLogoutRedirectUri(): string {
    return `${this.url}/logged-out`;
  }

  /** RP-Initiated Logout 1.0 §2: the end_session_endpoint URL for the ID token the app holds. */
  logoutUrl(idToken: string, state: string): string {
    return client
      .buildEndSessionUrl(this.configured(), {
        id_token_hint: idToken,
        post_logout_redirect_uri: this.postLogoutRedirectUri,
        state,
      })
      .toString();
  }

  /** RFC 7662 introspection of a token, authenticated as the app. */
  async introspect(token: string): Promise<client.IntrospectionResponse> {
    return client.tokenIntrospection(this.configured(), token);
  }

  private async handle(url: URL): Promise<{ redirect: string } | { html: string }> {
    if (url.pathname === '/start')
      return { redirect: await this.authorize({ connection: url.searchParams.get('connection') ?? '' }) };
    if (url.pathname === '/initiate') {
      // OIDC Core §4: only the issuer the app trusts may start a login; login_hint is passed on.
      const iss = url.searchParams.get('iss');
      const loginHint = url.searchParams.get('login_hint');
      this.initiated.push({ iss, loginHint });
      if (iss !== this.issuer) return { html: '<p>unknown issuer</p>' };
      return { redirect: await this.authorize(loginHint ? { login_hint: loginHint } : {}) };
    }
    return { html: `<p id="callback">main app: ${url.pathname}</p>` };
  }

  private async authorize(params: Record<string, string>): Promise<string> {
    const config = this.configured();
    const pkceCodeVerifier = client.randomPKCECodeVerifier();
    const state = client.randomState();
    const expectedNonce = client.randomNonce();
    this.pending.set(state, { pkceCodeVerifier, expectedNonce });
    return client
      .buildAuthorizationUrl(config, {
        redirect_uri: this.callback,
        scope: 'openid email profile',
        code_challenge: await client.calculatePKCECodeChallenge(pkceCodeVerifier),
        code_challenge_method: 'S256',
        state,
        nonce: expectedNonce,
        ...params,
      })
      .toString();
  }

  /** The code exchange a real app makes at its callback; returns the verified ID token's claims. */
  async exchange(callbackUrl: string): Promise<client.IDToken> {
    const url = new URL(callbackUrl);
    const state = url.searchParams.get('state') ?? '';
    const checks = this.pending.get(state);
    if (!checks) throw new Error(`the app never started a login with state ${state}`);
    this.pending.delete(state);
    // A refusal, named, rather than openid-client's generic AuthorizationResponseError.
    if (url.searchParams.has('error'))
      throw new Error(
        `the app received ${url.searchParams.get('error')}: ${url.searchParams.get('error_description')}`,
      );
    const tokens = await client.authorizationCodeGrant(this.configured(), url, {
      ...checks,
      expectedState: state,
      idTokenExpected: true,
    });
    this.tokens = tokens;
    const claims = tokens.claims();
    if (!claims) throw new Error('no ID token');
    return claims;
  }

  async stop(): Promise<void> {
    await new Promise((resolve) => this.server.close(resolve));
  }
}
