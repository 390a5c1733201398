import { randomUUID, timingSafeEqual } from 'node:crypto';
import type { EntityManager } from 'typeorm';
import type { Database } from '../../db/database.js';
import { isUuid } from '../../db/database.js';
import { sha256Base64url } from '../../digest.js';
import { findActiveSession } from '../../sessions/sessions.service.js';
import { AuthorizationCode } from '../grants/authorization-code.entity.js';
import { AuthorizationRequest } from './authorization-request.entity.js';
import type { ValidAuthorizationRequest } from './authorize.js';
import { CODE_PREFIX, mintSessionToken } from '../grants/opaque-tokens.js';
import { revokeSessionAudited } from '../session-revocation.js';

/**
 * The life of a pending authorization (platform table authorization_requests):
 * stored → authenticated (the login produced a session; sso called complete)
 * → completed (the same browser came back and a code was issued) or failed.
 * Every transition is one conditional UPDATE, so it happens at most once.
 */

export async function storePendingLogin(
  db: Database,
  request: ValidAuthorizationRequest,
  browserHash: string,
  now: Date,
  ttlSeconds: number,
): Promise<AuthorizationRequest> {
  return db.withPlatform(async (em) => {
    // Housekeeping in small batches: requests a day past their expiry are of no use.
    await em.query(
      `DELETE FROM authorization_requests WHERE id IN (
         SELECT id FROM authorization_requests WHERE expires_at < $1::timestamptz - interval '1 day' LIMIT 100)`,
      [now],
    );
    const row = em.create(AuthorizationRequest, {
      ...request,
      id: randomUUID(),
      browserHash,
      sessionId: null,
      completionHash: null,
      createdAt: now,
      expiresAt: new Date(now.getTime() + ttlSeconds * 1000),
      authenticatedAt: null,
      completedAt: null,
    });
    await em.insert(AuthorizationRequest, row);
    return row;
  });
}

export async function findPendingLogin(db: Database, loginId: string): Promise<AuthorizationRequest | null> {
  if (!isUuid(loginId)) return null;
  return db.withPlatform((em) => readPendingLogin(em, loginId));
}

/**
 * findPendingLogin in the caller's transaction (a platform table: readable in
 * a tenant's transaction too), so the completer reads the request in the
 * transaction that creates the session (issue 9).
 */
export async function readPendingLogin(
  em: EntityManager,
  loginId: string,
): Promise<AuthorizationRequest | null> {
  if (!isUuid(loginId)) return null;
  return em.findOneBy(AuthorizationRequest, { id: loginId });
}

/**
 * Records the session a login produced, in the caller's tenant transaction (the
 * one that created the session): false when the request is gone, expired, or
 * already finished, and then the caller rolls the session back.
 */
export async function attachSessionToLogin(
  em: EntityManager,
  loginId: string,
  sessionId: string,
  completionHash: string,
  now: Date,
): Promise<boolean> {
  const rows = await em.query<[Record<string, unknown>[], number]>(
    `UPDATE authorization_requests SET session_id = $2, completion_hash = $3, authenticated_at = $4
      WHERE id = $1 AND authenticated_at IS NULL AND completed_at IS NULL AND expires_at > $4
      RETURNING id`,
    [loginId, sessionId, completionHash, now],
  );
  return rows[0].length > 0;
}

/** Every column of the request, named as the entity's properties, for an UPDATE … RETURNING. */
function requestColumns(em: EntityManager): string {
  return em.connection
    .getMetadata(AuthorizationRequest)
    .columns.map((c) => `"${c.databaseName}" AS "${c.propertyName}"`)
    .join(', ');
}

/** Ends a pending request that no login will complete; null when it was already finished. */
export async function failPendingLogin(
  db: Database,
  loginId: string,
  now: Date,
): Promise<AuthorizationRequest | null> {
  if (!isUuid(loginId)) return null;
  return db.withPlatform(async (em) => {
    const rows = await em.query<[{ id: string }[], number]>(
      `UPDATE authorization_requests SET completed_at = $2
        WHERE id = $1 AND authenticated_at IS NULL AND completed_at IS NULL RETURNING id`,
      [loginId, now],
    );
    return rows[0].length > 0 ? em.findOneBy(AuthorizationRequest, { id: loginId }) : null;
  });
}

export type ContinueOutcome =
  { ok: true; request: AuthorizationRequest; code: string } | { ok: false; reason: ContinueFailure };

export type ContinueFailure =
  | 'login_not_found'
  | 'login_not_finished'
  | 'login_already_used'
  | 'login_expired'
  | 'browser_mismatch'
  | 'session_ended';

function sameHash(a: string | null, b: string | null): boolean {
  if (a === null || b === null) return false;
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** Thrown inside continueLogin's transaction to undo the claim. */
class ClaimUndone extends Error {
  constructor(readonly reason: ContinueFailure) {
    super(reason);
  }
}

/**
 * The browser that completed the login comes back with the one-time token
 * from complete() and the cookie from /oauth/authorize: only when both match
 * is the code issued. Otherwise the request is burnt and its session revoked,
 * so a login finished in a victim's browser never yields a code anywhere.
 *
 * One transaction (issue 9; docs/architecture.md §4): the claim is the one
 * read of the request (UPDATE … RETURNING, matching the one-time token's
 * hash), then the session names the tenant (db/resolvers.ts) for the code.
 */
export async function continueLogin(
  db: Database,
  input: {
    loginId: string;
    completionToken: string;
    browserHash: string | null;
    now: Date;
    codeTtlSeconds: number;
  },
): Promise<ContinueOutcome> {
  const { now } = input;
  if (!isUuid(input.loginId)) return { ok: false, reason: 'login_not_found' };
  const completionHash = sha256Base64url(input.completionToken);
  try {
    return await db.withResolvedTenant(async (em, enterTenant): Promise<ContinueOutcome> => {
      // Without the one-time token this is not the browser that completed the login:
      // the claim fails and the request is left alone (the right browser may still come).
      const claimed = await em.query<[Record<string, unknown>[], number]>(
        `UPDATE authorization_requests SET completed_at = $2
          WHERE id = $1 AND completed_at IS NULL AND authenticated_at IS NOT NULL
            AND session_id IS NOT NULL AND completion_hash = $3
          RETURNING ${requestColumns(em)}`,
        [input.loginId, now, completionHash],
      );
      const row = claimed[0][0];
      if (!row) return { ok: false, reason: await whyNotClaimed(em, input.loginId) };
      const pending = em.create(AuthorizationRequest, row);
      const sessionId = pending.sessionId ?? '';
      const tenantId = await enterTenant('session', sessionId);
      if (!tenantId) throw new ClaimUndone('login_not_found');
      // The completing browser is not the one that started: burn it (login CSRF / forwarded link).
      const refusal: ContinueFailure | null = !sameHash(pending.browserHash, input.browserHash)
        ? 'browser_mismatch'
        : pending.expiresAt <= now
          ? 'login_expired'
          : null;
      if (refusal) {
        await revokeSessionAudited(em, tenantId, sessionId, refusal);
        return { ok: false, reason: refusal };
      }
      if (!(await findActiveSession(em, sessionId, now))) return { ok: false, reason: 'session_ended' };
      const { token, hash } = mintSessionToken(CODE_PREFIX, sessionId);
      await em.insert(AuthorizationCode, {
        tenantId,
        id: randomUUID(),
        sessionId,
        appId: pending.appId,
        codeHash: hash,
        redirectUri: pending.redirectUri,
        scope: pending.scope,
        nonce: pending.nonce,
        codeChallenge: pending.codeChallenge,
        codeChallengeMethod: pending.codeChallengeMethod,
        createdAt: now,
        expiresAt: new Date(now.getTime() + input.codeTtlSeconds * 1000),
        usedAt: null,
      });
      return { ok: true, request: pending, code: token };
    });
  } catch (error) {
    if (error instanceof ClaimUndone) return { ok: false, reason: error.reason };
    throw error;
  }
}

/** Why a continue claimed nothing (the refusal path only reads the request again). */
async function whyNotClaimed(em: EntityManager, loginId: string): Promise<ContinueFailure> {
  const pending = await readPendingLogin(em, loginId);
  if (!pending) return 'login_not_found';
  if (pending.completedAt) return 'login_already_used';
  if (!pending.sessionId || !pending.authenticatedAt) return 'login_not_finished';
  return 'browser_mismatch';
}
