import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as jose from 'jose';
import Provider from 'oidc-provider';

/**
 * OpenID Providers on loopback, as a tenant's IdP in tests.
 *
 * - startOidcProvider: a real one (`oidc-provider`), with a scripted person at
 *   its login prompt: the test says who signs in, the interaction pages
 *   answer at once (no UI).
 * - startRogueProvider: an attacker's (or a broken) IdP, a few lines of
 *   node:http serving discovery, JWKS, an authorization endpoint that answers
 *   at once and a token endpoint whose ID token the test crafts with jose.
 */

export interface OidcPerson {
  sub: string;
  claims: Record<string, unknown>;
}

export interface OidcProviderPeer {
  issuer: string;
  clientId: string;
  clientSecret: string;
  /** Who signs in at the next authorization request. */
  signInAs(person: OidcPerson): void;
  /** The client_assertion of each successful token request, as the OP received it (issue 16). */
  clientAssertions: string[];
  close(): Promise<void>;
}

async function listen(
  handler: http.RequestListener,
): Promise<{ server: http.Server; url: string; setHandler: (h: http.RequestListener) => void }> {
  let current = handler;
  const server = http.createServer((req, res) => current(req, res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    server,
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    setHandler: (h) => {
      current = h;
    },
  };
}

function closer(server: http.Server): () => Promise<void> {
  return () =>
    new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
}

export async function startOidcProvider(options: {
  redirectUris: string[];
  /** Put scope claims in the ID token (true) or only at userinfo (oidc-provider's default, false). */
  claimsInIdToken?: boolean;
  /** More claims per scope, e.g. `{ openid: ['sub', 'iat'] }` so a person's claims can set the ID token's iat. */
  scopeClaims?: Record<string, string[]>;
  /** More client metadata, e.g. `token_endpoint_auth_method: 'private_key_jwt'` and a `jwks_uri` (issue 16). */
  client?: Record<string, unknown>;
}): Promise<OidcProviderPeer> {
  const { server, url: issuer, setHandler } = await listen((_req, res) => res.end());
  const clientId = `gatehouse-${randomBytes(4).toString('hex')}`;
  const clientSecret = randomBytes(24).toString('base64url');
  const people = new Map<string, OidcPerson>();
  let next: OidcPerson | null = null;
  const { privateKey } = await jose.generateKeyPair('RS256', { extractable: true });
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: clientId,
        client_secret: clientSecret,
        redirect_uris: options.redirectUris,
        token_endpoint_auth_method: 'client_secret_basic',
        ...options.client,
      },
    ],
    jwks: { keys: [{ ...(await jose.exportJWK(privateKey)), kid: 'op-key-1', use: 'sig', alg: 'RS256' }] },
    cookies: { keys: [randomBytes(16).toString('hex')] },
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name', 'given_name', 'family_name'],
      groups: ['groups'],
      ...options.scopeClaims,
    },
    scopes: ['openid', 'email', 'profile', 'groups'],
    conformIdTokenClaims: !options.claimsInIdToken,
    features: { devInteractions: { enabled: false } },
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    findAccount: (_ctx, sub) => {
      const person = people.get(sub);
      return person ? { accountId: sub, claims: () => ({ sub, ...person.claims }) } : undefined;
    },
  });
  const clientAssertions: string[] = [];
  provider.on('grant.success', (ctx: { oidc: { params?: { client_assertion?: unknown } } }) => {
    const assertion = ctx.oidc.params?.client_assertion;
    if (typeof assertion === 'string') clientAssertions.push(assertion);
  });
  const callback = provider.callback();
  setHandler((req, res) => {
    if (!req.url?.startsWith('/interaction/')) {
      void callback(req, res);
      return;
    }
    void (async () => {
      const details = await provider.interactionDetails(req, res);
      if (details.prompt.name === 'login') {
        if (!next) throw new Error('no person set to sign in');
        people.set(next.sub, next);
        await provider.interactionFinished(
          req,
          res,
          { login: { accountId: next.sub } },
          { mergeWithLastSubmission: false },
        );
        return;
      }
      const grant = new provider.Grant({ accountId: details.session?.accountId ?? '', clientId });
      grant.addOIDCScope(typeof details.params.scope === 'string' ? details.params.scope : 'openid');
      await provider.interactionFinished(
        req,
        res,
        { consent: { grantId: await grant.save() } },
        { mergeWithLastSubmission: true },
      );
    })().catch((error: unknown) => {
      res.writeHead(500).end(String(error));
    });
  });
  return {
    issuer,
    clientId,
    clientSecret,
    signInAs: (person) => {
      next = person;
    },
    clientAssertions,
    close: closer(server),
  };
}

/** What the rogue token endpoint is asked to mint an ID token for. */
export interface RogueContext {
  issuer: string;
  clientId: string;
  nonce: string;
  /** The rogue IdP's genuine signing key (published in its JWKS). */
  key: jose.CryptoKey;
  publicJwk: jose.JWK;
}

export interface RogueProvider {
  issuer: string;
  clientId: string;
  clientSecret: string;
  /** How the next ID token is made (default: a valid one for `sub`). */
  idToken: (ctx: RogueContext) => Promise<string>;
  /** Extra or replaced parameters of the next authorization response (e.g. a wrong `iss`). */
  authorizationResponse: Record<string, string | null>;
  validIdToken(ctx: RogueContext, claims?: Record<string, unknown>): Promise<string>;
  close(): Promise<void>;
}

export async function startRogueProvider(): Promise<RogueProvider> {
  const { server, url: issuer, setHandler } = await listen((_req, res) => res.end());
  const { privateKey, publicKey } = await jose.generateKeyPair('RS256', { extractable: true });
  const publicJwk = { ...(await jose.exportJWK(publicKey)), kid: 'rogue-1', alg: 'RS256', use: 'sig' };
  const codes = new Map<string, { nonce: string }>();
  const peer: RogueProvider = {
    issuer,
    clientId: 'gatehouse',
    clientSecret: randomBytes(16).toString('hex'),
    authorizationResponse: {},
    validIdToken: (ctx, claims = {}) => {
      const now = Math.floor(Date.now() / 1000);
      const payload = {
        iss: ctx.issuer,
        aud: ctx.clientId,
        sub: 'rogue-sub-1',
        iat: now,
        exp: now + 300,
        email: 'rick@rogue.test',
        email_verified: true,
        nonce: ctx.nonce,
        ...claims,
      };
      return new jose.SignJWT(payload).setProtectedHeader({ alg: 'RS256', kid: 'rogue-1' }).sign(ctx.key);
    },
    idToken: (ctx) => peer.validIdToken(ctx),
    close: closer(server),
  };
  const json = (res: http.ServerResponse, status: number, body: unknown): void => {
    res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  };
  setHandler((req, res) => {
    const url = new URL(req.url ?? '/', issuer);
    if (url.pathname === '/.well-known/openid-configuration') {
      return json(res, 200, {
        issuer,
        authorization_endpoint: `${issuer}/authorize`,
        token_endpoint: `${issuer}/token`,
        jwks_uri: `${issuer}/jwks`,
        response_types_supported: ['code'],
        subject_types_supported: ['public'],
        id_token_signing_alg_values_supported: ['RS256', 'HS256', 'none'],
        token_endpoint_auth_methods_supported: ['client_secret_basic'],
        code_challenge_methods_supported: ['S256'],
        authorization_response_iss_parameter_supported: true,
      });
    }
    if (url.pathname === '/jwks') return json(res, 200, { keys: [publicJwk] });
    if (url.pathname === '/authorize') {
      const code = randomBytes(16).toString('hex');
      codes.set(code, { nonce: url.searchParams.get('nonce') ?? '' });
      const back = new URL(url.searchParams.get('redirect_uri') ?? '');
      const params: Record<string, string | null> = {
        code,
        state: url.searchParams.get('state'),
        iss: issuer,
        ...peer.authorizationResponse,
      };
      for (const [k, v] of Object.entries(params)) if (v !== null) back.searchParams.set(k, v);
      res.writeHead(302, { location: back.toString() }).end();
      return;
    }
    if (url.pathname === '/token' && req.method === 'POST') {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        const code = new URLSearchParams(body).get('code') ?? '';
        const entry = codes.get(code);
        codes.delete(code);
        if (!entry) return json(res, 400, { error: 'invalid_grant' });
        peer
          .idToken({ issuer, clientId: peer.clientId, nonce: entry.nonce, key: privateKey, publicJwk })
          .then((idToken) =>
            json(res, 200, {
              access_token: randomBytes(16).toString('hex'),
              token_type: 'Bearer',
              expires_in: 300,
              id_token: idToken,
            }),
          )
          .catch((error: unknown) => json(res, 500, { error: String(error) }));
      });
      return;
    }
    res.writeHead(404).end();
  });
  return peer;
}
