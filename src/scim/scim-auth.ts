import { sha256Base64url } from '../digest.js';
import type { Request, RequestHandler } from 'express';
import passport from 'passport';
import { Strategy as BearerStrategy } from 'passport-http-bearer';
import { isUuid, type Database } from '../db/database.js';
import { CHANNELS, type NotificationBus } from '../db/notification-bus.js';
import { ScimError } from './scim-context.js';
import { scimTokenId, verifyScimTokenHash } from './scim-token.js';
import { isLiveTenantStatus } from '../db/tenant-liveness.js';

/** Who is calling: a tenant's SCIM token. */
export interface ScimPrincipal {
  tenantId: string;
  tokenId: string;
}

declare module 'express-serve-static-core' {
  interface Request {
    /** Set by the SCIM bearer authentication. */
    scim?: ScimPrincipal;
  }
}

interface CacheEntry extends ScimPrincipal {
  expiresAt: number;
  lastUsedWrittenAt: number;
}

const LAST_USED_EVERY_MS = 60_000;

type VerifyWithRequest = (
  req: Request,
  token: string,
  done: (error: unknown, principal?: ScimPrincipal | false) => void,
) => void;

const digest = sha256Base64url;

/**
 * Verifies SCIM bearer tokens against the path's tenant (docs/architecture.md): the
 * token id is looked up inside withTenant(pathTenant), so another tenant's
 * token is simply not found there and fails exactly like a wrong one.
 *
 * A verified token is cached under a SHA-256 of the whole token, so argon2 runs
 * once per token per node, not per request. The cache is used only while this
 * node's LISTEN connection is up: revocation (CHANNELS.scimTokenRevoked,
 * NOTIFY from the revoking transaction) drops the entry on every node at
 * once, so does a change of its tenant's status (CHANNELS.tenantStatusChanged:
 * suspended or deleted), and a reconnection clears the cache, as
 * notifications may have been missed.
 */
export class ScimTokenVerifier {
  private readonly cache = new Map<string, CacheEntry>();
  /** Revoked ids seen on the bus: a verification in flight when one arrives must not cache it. */
  private readonly revoked = new Set<string>();
  private readonly revokedListeners = new Set<(tokenId: string) => void>();
  /**
   * Moves with every tenant status change heard: a verification that read the
   * tenant as active before the change committed must not cache its answer.
   */
  private tenantStatusEpoch = 0;
  /**
   * argon2 checks in flight, by token digest and stored hash: Okta and Entra
   * open about ten connections at once, so a node that has not cached a
   * bearer yet (after a start, or after its cache was cleared) would run ten
   * identical argon2 checks, each with its own memory (the scim-memory bench
   * saw the resident set double). Requests that arrive while one runs wait
   * for its answer instead; each still reads the token row itself.
   */
  private readonly checking = new Map<string, Promise<boolean>>();
  private hashChecks = 0;

  constructor(
    private readonly db: Database,
    private readonly options: { cacheTtlMs: number; notifications?: NotificationBus },
  ) {
    options.notifications?.on(CHANNELS.scimTokenRevoked, (tokenId) => this.dropRevoked(tokenId));
    options.notifications?.on(CHANNELS.tenantStatusChanged, (tenantId) => this.dropTenant(tenantId));
    options.notifications?.onReconnect(() => this.cache.clear());
  }

  /** Whether verified tokens are being cached (only while revocations can be heard). */
  get caching(): boolean {
    const bus = this.options.notifications;
    return (
      bus?.isListening(CHANNELS.scimTokenRevoked) === true && bus.isListening(CHANNELS.tenantStatusChanged)
    );
  }

  get cachedTokens(): number {
    return this.cache.size;
  }

  /** How many argon2 checks this verifier has run (tests and the benchmark watch it). */
  get argon2Checks(): number {
    return this.hashChecks;
  }

  /** Runs when this node learns a token was revoked (tests and the benchmark watch it). */
  onRevoked(listener: (tokenId: string) => void): () => void {
    this.revokedListeners.add(listener);
    return () => this.revokedListeners.delete(listener);
  }

  async verify(pathTenantId: string, token: string): Promise<ScimPrincipal | null> {
    const tokenId = scimTokenId(token);
    if (!tokenId || !isUuid(pathTenantId)) return null;
    const key = digest(token);
    const now = Date.now();
    const hit = this.cache.get(key);
    if (hit && this.caching && hit.expiresAt > now && !this.revoked.has(hit.tokenId)) {
      // idor check: a token verified for one tenant says nothing about another.
      if (hit.tenantId !== pathTenantId) return null;
      await this.touch(hit, now);
      return { tenantId: hit.tenantId, tokenId: hit.tokenId };
    }
    const epoch = this.tenantStatusEpoch;
    const row = await this.db.withTenant(pathTenantId, async (em) => {
      const rows = await em.query<{ token_hash: string; revoked_at: Date | null; status: string }[]>(
        `SELECT t.token_hash, t.revoked_at, tn.status
           FROM scim_tokens t JOIN tenants tn ON tn.id = t.tenant_id
          WHERE t.id = $1`,
        [tokenId],
      );
      return rows[0] ?? null;
    });
    if (!row || row.revoked_at || !isLiveTenantStatus(row.status)) return null;
    if (!(await this.hashMatches(key, row.token_hash, token))) return null;
    const entry: CacheEntry = {
      tenantId: pathTenantId,
      tokenId,
      expiresAt: now + this.options.cacheTtlMs,
      lastUsedWrittenAt: 0,
    };
    if (this.caching && !this.revoked.has(tokenId) && epoch === this.tenantStatusEpoch)
      this.cache.set(key, entry);
    await this.touch(entry, now);
    return { tenantId: pathTenantId, tokenId };
  }

  /** One argon2 check per (token, stored hash) at a time; concurrent askers share its answer. */
  private hashMatches(key: string, storedHash: string, token: string): Promise<boolean> {
    const flight = `${key}:${storedHash}`;
    let check = this.checking.get(flight);
    if (!check) {
      this.hashChecks++;
      check = verifyScimTokenHash(storedHash, token).finally(() => this.checking.delete(flight));
      this.checking.set(flight, check);
    }
    return check;
  }

  private dropRevoked(tokenId: string): void {
    this.revoked.add(tokenId);
    for (const [key, entry] of this.cache) if (entry.tokenId === tokenId) this.cache.delete(key);
    for (const listener of this.revokedListeners) listener(tokenId);
  }

  /** A suspended or deleted tenant's tokens go to the database (and fail there) from now on. */
  private dropTenant(tenantId: string): void {
    this.tenantStatusEpoch++;
    for (const [key, entry] of this.cache) if (entry.tenantId === tenantId) this.cache.delete(key);
  }

  /** last_used_at, at most once a minute per token per node. */
  private async touch(entry: CacheEntry, now: number): Promise<void> {
    if (now - entry.lastUsedWrittenAt < LAST_USED_EVERY_MS) return;
    entry.lastUsedWrittenAt = now;
    await this.db.withTenant(entry.tenantId, (em) =>
      em.query(
        `UPDATE scim_tokens SET last_used_at = now()
          WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')`,
        [entry.tokenId],
      ),
    );
  }
}

/**
 * Bearer authentication through passport (docs/architecture.md). Every failure is the
 * same 401 with `WWW-Authenticate` (RFC 6750 §3) and an RFC 7644 error body.
 */
export function scimAuthentication(verifier: ScimTokenVerifier): RequestHandler {
  const authenticator = new passport.Passport();
  authenticator.use(
    'scim-bearer',
    new BearerStrategy<VerifyWithRequest>({ passReqToCallback: true }, (req, token, done) => {
      const tenantId = typeof req.params.tenantId === 'string' ? req.params.tenantId : '';
      verifier.verify(tenantId, token).then(
        (principal) => done(null, principal ?? false),
        (error: unknown) => done(error),
      );
    }),
  );
  return (req, res, next) => {
    (
      authenticator.authenticate(
        'scim-bearer',
        { session: false },
        (error: unknown, principal: ScimPrincipal | false) => {
          if (error) return next(error);
          if (!principal) {
            res.setHeader('WWW-Authenticate', 'Bearer realm="gatehouse-scim", error="invalid_token"');
            return next(new ScimError(401, '', 'Missing or invalid bearer token'));
          }
          req.scim = principal;
          req.tenantId = principal.tenantId;
          next();
        },
      ) as RequestHandler
    )(req, res, next);
  };
}
