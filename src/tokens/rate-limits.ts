import { t } from '../http/strings.js';
import type { Request, RequestHandler } from 'express';
import { ipKeyGenerator, rateLimit } from 'express-rate-limit';
import type { Config } from '../config/config.js';
import { isUuid, type Database } from '../db/database.js';
import { sharedLimiterOptions } from '../http/rate-limit-store.js';
import { sendErrorPage } from './authorize/error-page.js';

/**
 * Limits on guessing, counted for all nodes together (src/http/rate-limit-store.ts):
 *
 * - client secrets at /oauth/token, /oauth/introspect and /oauth/revoke: only
 *   failed client authentications count (the 401 `invalid_client` answers),
 *   per source address and per client_id, so neither many secrets against one
 *   app nor one address against many apps gets far (client-auth-limits.ts:
 *   counted in the round trip that reads the app, issue 13);
 * - home realm discovery at /login (which email domains have SSO, which
 *   organizations exist): every request counts, per source address.
 *
 * Past a limit the answer is 429 with Retry-After. At the OAuth endpoints the
 * body is RFC 6749 `{"error":"temporarily_unavailable"}`: the registered code
 * for "cannot handle the request now, try later" (§4.1.2.1), which OAuth
 * libraries surface as a retryable error. `slow_down` (RFC 8628 §3.5) was not
 * chosen: it tells a device-flow client to add 5 s to its polling interval and
 * means nothing to an authorization-code client.
 */
const MINUTE_MS = 60_000;

/** The client_id a request names (Basic user name or body client_id), if it looks like one. */
export function presentedClientId(req: Request): string | null {
  const header = req.headers.authorization;
  let id: string | undefined;
  if (header && /^basic /i.test(header)) {
    const decoded = Buffer.from(header.slice(6).trim(), 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon > 0) {
      try {
        id = decodeURIComponent(decoded.slice(0, colon).replace(/\+/g, ' '));
      } catch {
        id = undefined;
      }
    }
  } else {
    const value = (req.body as Record<string, unknown> | undefined)?.client_id;
    id = typeof value === 'string' ? value : undefined;
  }
  // Only ids that could be an app: random ones would only fill the store.
  return id && isUuid(id) ? id.toLowerCase() : null;
}

const addressKey = (req: Request) => ipKeyGenerator(req.ip ?? 'unknown');

interface DiscoveryLimiter {
  /** For /login: past the limit a page with a reason code. */
  middleware: RequestHandler;
  /** Counts one probe of this address; true when it is over the limit. */
  consume(req: Request): Promise<boolean>;
}

/** One limiter per configuration (i.e. per node's app), shared by /login and /oauth/authorize. */
const discoveryLimiters = new WeakMap<Config, DiscoveryLimiter>();

function discoveryLimiterOf(config: Config, db: Database): DiscoveryLimiter {
  const existing = discoveryLimiters.get(config);
  if (existing) return existing;
  const shared = sharedLimiterOptions(config, db, 'login-discovery');
  const { store } = shared;
  const limit = config.rateLimits.loginDiscoveryPerAddress;
  const middleware = rateLimit({
    ...shared,
    windowMs: MINUTE_MS,
    limit,
    keyGenerator: addressKey,
    store,
    standardHeaders: 'draft-7',
    legacyHeaders: false,
    handler: (req, res) => {
      sendErrorPage(req, res, {
        status: 429,
        reason: 'rate_limited',
        ...t.authorize.rateLimited,
      });
    },
  });
  const limiter: DiscoveryLimiter = {
    middleware,
    // The store was initialised (window) by rateLimit above; the key is the one it uses.
    consume: async (req) => {
      try {
        return (await store.increment(addressKey(req))).totalHits > limit;
      } catch (err) {
        // Fail open, as passOnStoreError does for the middleware (src/http/rate-limit-store.ts).
        shared.logger.warn(err, 'rate limit not counted: the store failed; request allowed');
        return false;
      }
    },
  };
  discoveryLimiters.set(config, limiter);
  return limiter;
}

/**
 * Home realm discovery probes (which email domains have SSO, which
 * organizations exist) per source address. /login uses this middleware;
 * /oauth/authorize with a login_hint (discovery of the app-supplied email)
 * counts against the same counter through discoveryProbeLimited, so the
 * authorize endpoint is no way around it.
 */
export function loginDiscoveryLimiter(config: Config, db: Database): RequestHandler {
  return discoveryLimiterOf(config, db).middleware;
}

/** Counts a discovery probe made through /oauth/authorize; true when this address is over the limit. */
export function discoveryProbeLimited(config: Config, db: Database, req: Request): Promise<boolean> {
  return discoveryLimiterOf(config, db).consume(req);
}
