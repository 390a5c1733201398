import { randomUUID } from 'node:crypto';
import { IsNull, type EntityManager } from 'typeorm';
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

/** Revokes one session; true when it was live. */
export async function revokeSession(em: EntityManager, sessionId: string, reason: string): Promise<boolean> {
  const result = await em.update(
    Session,
    { id: sessionId, revokedAt: IsNull() },
    { revokedAt: new Date(), revokedReason: reason },
  );
  return (result.affected ?? 0) > 0;
}

/** Revokes every live session of a user (deprovisioning); returns the ids revoked. */
export async function revokeUserSessions(
  em: EntityManager,
  userId: string,
  reason: string,
): Promise<string[]> {
  const rows = await em.query<[{ id: string }[], number]>(
    `UPDATE sessions SET revoked_at = now(), revoked_reason = $2
      WHERE user_id = $1 AND revoked_at IS NULL RETURNING id`,
    [userId, reason],
  );
  return rows[0].map((r) => r.id);
}
