import { Router } from 'express';
import type { Config } from '../config/config.js';
import type { Database } from '../db/database.js';
import type { LoginFlow } from '../sso/login-handoff.js';
import { apiRouter } from './api.router.js';
import { browserRouter } from './authorize/browser.router.js';
import { discoveryRouter } from './openid-configuration.router.js';
import type { SigningKeyStore } from './keys/key-store.js';

export interface OAuthProviderDeps {
  config: Config;
  db: Database;
  keys: SigningKeyStore;
  loginFlow?: LoginFlow;
}

/**
 * Gatehouse as the main app's OpenID Provider (docs/architecture.md): discovery and
 * JWKS, the browser endpoints (authorize, continue, logout: errors are pages)
 * and the server endpoints (token, introspect, revoke, userinfo: errors are
 * RFC 6749 JSON). Mounted at the root of the app.
 */
export function oauthProviderRouter(deps: OAuthProviderDeps): Router {
  const router = Router();
  router.use(discoveryRouter(deps.config, deps.keys));
  router.use(browserRouter(deps));
  router.use(apiRouter(deps));
  return router;
}
