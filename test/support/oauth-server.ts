import express, { type Express, type Request, type Response } from 'express';
import type { Config } from '../../src/config/config.js';
import type { Secrets } from '../../src/config/secrets.js';
import { createLogger } from '../../src/http/logger.js';
import { requestId } from '../../src/http/request-context.js';
import { pinoHttp } from 'pino-http';
import type {
  AuthorizationCompleter,
  LoginFlow,
  LoginResult,
  PendingLogin,
} from '../../src/sso/login-handoff.js';
import { createSigningKeyStore, type SigningKeyStore } from '../../src/tokens/keys/key-store.js';
import type { TestDatabase } from './database.js';
import { listenOnLoopback, startGatehouseNode } from './gatehouse-node.js';

/**
 * Gatehouse listening on a loopback port, as the main app's OpenID Provider,
 * with GATEHOUSE_BASE_URL = that address (openid-client needs a real issuer).
 *
 * The IdP side is played by DirectLoginFlow: OUR OWN internal seam
 * (src/sso/login-handoff.ts), not a protocol peer. It authenticates people
 * provisioned by the test directly, so the OpenID Provider can be tested on its
 * own; the end-to-end tests with real SAML/OIDC IdPs live in test/sso.
 */
export interface Person {
  tenantId: string;
  userId: string;
  connectionId: string;
}

export class DirectLoginFlow implements LoginFlow {
  readonly people = new Map<string, Person>();
  /** Logins started while `defer` was set: completed later by the test. */
  readonly deferred: PendingLogin[] = [];
  defer = false;
  completer!: AuthorizationCompleter;

  async start(req: Request, res: Response, pending: PendingLogin): Promise<void> {
    if (this.defer) {
      this.deferred.push(pending);
      res.status(200).type('text').send(`waiting for the IdP: ${pending.loginId}`);
      return;
    }
    const person = pending.loginHint ? this.people.get(pending.loginHint.toLowerCase()) : undefined;
    if (!person) {
      await this.completer.fail(req, res, pending.loginId, {
        error: 'access_denied',
        reason: 'test_unknown_person',
      });
      return;
    }
    const result: LoginResult = { ...person, authTime: new Date() };
    await this.completer.complete(req, res, pending.loginId, result);
  }
}

export interface OAuthServer {
  /** GATEHOUSE_BASE_URL (the issuer). */
  baseUrl: string;
  /** Where this node listens: the base URL, except for a second node sharing another's. */
  url: string;
  app: Express;
  config: Config;
  secrets: Secrets;
  keys: SigningKeyStore;
  flow: DirectLoginFlow;
  logs: () => string;
  close(): Promise<void>;
}

export async function startOAuthServer(
  t: TestDatabase,
  env: Record<string, string> = {},
  shared: { secrets?: Secrets; flow?: DirectLoginFlow } = {},
): Promise<OAuthServer> {
  const flow = shared.flow ?? new DirectLoginFlow();
  const node = await startGatehouseNode(t, {
    env,
    secrets: shared.secrets,
    deps: (config, secrets) => ({
      signingKeys: createSigningKeyStore(config, t.db, secrets.masterKey),
      createLoginFlow: (completer: AuthorizationCompleter) => {
        flow.completer = completer;
        return flow;
      },
    }),
  });
  const { address: url, app, config, secrets, deps, logs, close } = node;
  return { baseUrl: config.baseUrl, url, app, config, secrets, keys: deps.signingKeys, flow, logs, close };
}

/** Registers an app through the admin API, as an operator would. */
export async function registerApp(
  gh: OAuthServer,
  input: {
    name?: string;
    redirect_uris: string[];
    client_type?: 'confidential' | 'public';
    post_logout_redirect_uris?: string[];
    token_signing_alg?: 'ES256' | 'EdDSA' | 'RS256';
  },
): Promise<{ clientId: string; clientSecret: string | undefined }> {
  const res = await fetch(`${gh.baseUrl}/admin/v1/apps`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${gh.secrets.adminToken}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ name: 'Main app', ...input }),
  });
  if (res.status !== 201) throw new Error(`app registration failed: ${res.status} ${await res.text()}`);
  const body = (await res.json()) as { client_id: string; client_secret?: string };
  return { clientId: body.client_id, clientSecret: body.client_secret };
}

/** A tiny HTTP server for a test's own routes (an IdP's return leg, as src/sso would run it). */
export async function startSideServer(
  handler: (req: Request, res: Response) => void | Promise<void>,
): Promise<{ url: string; close(): Promise<void> }> {
  const side = express();
  // The request context every Gatehouse route has (request id, logger).
  side.use(requestId);
  side.use(pinoHttp({ logger: createLogger('silent') }));
  side.use((req, res, next) => {
    Promise.resolve(handler(req, res)).catch(next);
  });
  const server = await listenOnLoopback();
  server.serve(side);
  return { url: server.url, close: server.close };
}
