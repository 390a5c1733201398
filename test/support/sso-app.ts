import { createHash, randomBytes } from 'node:crypto';
import type { Express, Request, Response } from 'express';
import type { Config } from '../../src/config/config.js';
import type { Secrets } from '../../src/config/secrets.js';
import type { AuthorizationCompleter, LoginFailure, LoginResult } from '../../src/sso/login-handoff.js';
import type { UnsolicitedLoginCompleter } from '../../src/sso/sso.js';
import type { TestDatabase } from './database.js';
import { startGatehouseNode } from './gatehouse-node.js';

/**
 * Stands in for the OpenID Provider side (src/tokens) where a test looks at
 * the IdP side alone: it records what the sign-in handed over and answers
 * with a plain page. The full journey through src/tokens is in
 * test/sso/main-app-journey.test.ts.
 */
export class RecordingCompleter implements AuthorizationCompleter, UnsolicitedLoginCompleter {
  readonly completed: { loginId: string | null; result: LoginResult }[] = [];
  readonly failed: { loginId: string; failure: LoginFailure }[] = [];

  async complete(_req: Request, res: Response, loginId: string, result: LoginResult): Promise<void> {
    this.completed.push({ loginId, result });
    res.status(200).type('text').send(`completed ${loginId}`);
  }

  async fail(_req: Request, res: Response, loginId: string, failure: LoginFailure): Promise<void> {
    this.failed.push({ loginId, failure });
    res.status(200).type('text').send(`failed ${loginId} ${failure.reason}`);
  }

  async completeUnsolicited(_req: Request, res: Response, result: LoginResult): Promise<boolean> {
    this.completed.push({ loginId: null, result });
    res.status(200).type('text').send('completed unsolicited');
    return true;
  }
}

export interface SsoServer {
  /** GATEHOUSE_BASE_URL: the public address (several nodes may share one). */
  baseUrl: string;
  /** Where this node listens. */
  address: string;
  app: Express;
  config: Config;
  secrets: Secrets;
  logs: () => string;
  close(): Promise<void>;
}

/**
 * Gatehouse on a loopback port (GATEHOUSE_BASE_URL = that address, so ACS
 * and callback URLs are real), with dev settings that let the IdPs in tests
 * live on http://127.0.0.1.
 */
export async function startSsoServer(
  t: TestDatabase,
  options: {
    env?: Record<string, string>;
    completer?: AuthorizationCompleter & Partial<UnsolicitedLoginCompleter>;
    secrets?: Secrets;
  } = {},
): Promise<SsoServer> {
  const { address, app, config, secrets, logs, close } = await startGatehouseNode(t, {
    env: { GATEHOUSE_ALLOW_PRIVATE_METADATA_URLS: 'true', ...options.env },
    secrets: options.secrets,
    deps: () => ({ authorizationCompleter: options.completer }),
  });
  return { baseUrl: config.baseUrl, address, app, config, secrets, logs, close };
}

/** Registers the main app through the admin API (as an operator would); returns its client credentials. */
export async function registerMainApp(
  gh: SsoServer,
  redirectUri: string,
): Promise<{ clientId: string; clientSecret: string }> {
  const res = await fetch(`${gh.address}/admin/v1/apps`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${gh.secrets.adminToken}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ name: 'Main app', redirect_uris: [redirectUri] }),
  });
  if (res.status !== 201) throw new Error(`app registration failed: ${res.status} ${await res.text()}`);
  const body = (await res.json()) as { client_id: string; client_secret: string };
  return { clientId: body.client_id, clientSecret: body.client_secret };
}

/** A /oauth/authorize URL as the main app builds it (PKCE S256), with the discovery hints given. */
export function authorizeUrl(
  gh: SsoServer,
  clientId: string,
  redirectUri: string,
  hints: Record<string, string>,
): string {
  const url = new URL(`${gh.baseUrl}/oauth/authorize`);
  url.search = new URLSearchParams({
    response_type: 'code',
    client_id: clientId,
    redirect_uri: redirectUri,
    scope: 'openid email profile',
    state: randomBytes(8).toString('hex'),
    code_challenge: createHash('sha256').update(randomBytes(32).toString('base64url')).digest('base64url'),
    code_challenge_method: 'S256',
    ...hints,
  }).toString();
  return url.toString();
}
