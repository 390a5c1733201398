import type { Config } from '../../config/config.js';
import { browserTransportOf, type BrowserBinding } from '../../http/browser-binding.js';

/**
 * Binds a pending authorization to the browser that made it. SameSite=Lax is
 * not sent on the IdP's cross-site POST to the ACS, so the check happens one
 * step later, on a same-site GET: /oauth/authorize/continue for a completed
 * login, /sso/continue for a refused one (completer.ts).
 */
export function authorizationBinding(config: Config): BrowserBinding {
  return {
    name: 'gatehouse_authz',
    sameSite: 'lax',
    transport: browserTransportOf(config.baseUrl),
    ttlSeconds: config.tokens.loginTtl,
  };
}

/**
 * Where /oauth/authorize leaves the hash of the binding it just set: a login
 * refused within that same request (e.g. discovery of the app's login_hint)
 * has no cookie to present yet. Per response (res.locals), never shared.
 */
export const ISSUED_BINDING = 'gatehouseAuthorizationBinding';
