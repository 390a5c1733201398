import { randomUUID } from 'node:crypto';
import type { EntityManager } from 'typeorm';
import { fanOutRevocation, type RevokeOptions } from './session-events.js';
import { Session } from './session.entity.js';

/**
 * Sessions back every token given to the main app. These functions take the
 * caller's tenant-scoped entity manager (from withTenant), so a session is
 * created or revoked in the same transaction as the change that causes it.
 */

export interface NewSession {
  userId: string;
  appId: string | null;
  connectionId: string | null;
  authTime: Date;
  ttlSeconds: number;
}

export async function createSession(
  em: EntityManager,
  tenantId: string,
  input: NewSession,
): Promise<Session> {
  const now = new Date();
  const session = em.create(Session, {
    tenantId,
    id: randomUUID(),
    userId: input.userId,
    appId: input.appId,
    connectionId: input.connectionId,
    authTime: input.authTime,
    createdAt: now,
    expiresAt: new Date(now.getTime() + input.ttlSeconds * 1000),
    revokedAt: null,
    revokedReason: null,
  });
  await em.insert(Session, session);
  return session;
}

/** The session when it is neither revoked nor expired at `now`, else null. */
export async function findActiveSession(
  em: EntityManager,
  sessionId: string,
  now: Date,
): Promise<Session | null> {
  const session = await em.findOneBy(Session, { id: sessionId });
  if (!session || session.revokedAt || session.expiresAt <= now) return null;
  return session;
}

type RevokedRows = [{ tenant_id: string; id: string; user_id: string }[], number];

/**
 * Revokes one session; true when it was live. In the same transaction the
 * app's back-channel logout is queued and the other nodes are notified
 * (session-events.ts), both effective at commit.
 */
export async function revokeSession(
  em: EntityManager,
  sessionId: string,
  reason: string,
  options: RevokeOptions = {},
): Promise<boolean> {
  const [rows] = await em.query<RevokedRows>(
    `UPDATE sessions SET revoked_at = now(), revoked_reason = $2
      WHERE id = $1 AND revoked_at IS NULL RETURNING tenant_id, id, user_id`,
    [sessionId, reason],
  );
  await fanOutRevocation(em, rows.map(revoked), options);
  return rows.length > 0;
}

/**
 * Revokes every live session of a user (deprovisioning); returns the ids
 * revoked. Fans out like revokeSession.
 */
export async function revokeUserSessions(
  em: EntityManager,
  userId: string,
  reason: string,
  options: RevokeOptions = {},
): Promise<string[]> {
  const [rows] = await em.query<RevokedRows>(
    `UPDATE sessions SET revoked_at = now(), revoked_reason = $2
      WHERE user_id = $1 AND revoked_at IS NULL RETURNING tenant_id, id, user_id`,
    [userId, reason],
  );
  await fanOutRevocation(em, rows.map(revoked), options);
  return rows.map((r) => r.id);
}

const revoked = (r: RevokedRows[0][number]) => ({ tenantId: r.tenant_id, id: r.id, userId: r.user_id });
