import { randomUUID } from 'node:crypto';
import type { EntityManager } from 'typeorm';
import { isSessionLive } from './live-grant.js';
import { revokeSessions, type RevocationContext } from './revoke-sessions.js';
import { Session } from './session.entity.js';

/**
 * Sessions back every token given to the main app. These functions take the
 * caller's tenant-scoped entity manager (from withTenant), so a session is
 * created or revoked in the same transaction as the change that causes it.
 * Whether one still counts is live-grant.ts; revocation is revoke-sessions.ts.
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

/**
 * The session row, live or not (callers that need "still true?" ask
 * live-grant.ts); for checks such as "is this the token's person's session?".
 */
export async function findSession(em: EntityManager, sessionId: string): Promise<Session | null> {
  return em.findOneBy(Session, { id: sessionId });
}

/** The session when it is neither revoked nor expired at `now` (live-grant.ts), else null. */
export async function findActiveSession(
  em: EntityManager,
  sessionId: string,
  now: Date,
): Promise<Session | null> {
  const session = await findSession(em, sessionId);
  return session && isSessionLive(session, now) ? session : null;
}

/** revokeSessions for one session; true when it was live. */
export async function revokeSession(
  em: EntityManager,
  sessionId: string,
  reason: string,
  options: RevocationContext = {},
): Promise<boolean> {
  return (await revokeSessions(em, { session: sessionId }, reason, options)).length > 0;
}

/** revokeSessions for every live session of a person (deprovisioning); the ids revoked. */
export async function revokeUserSessions(
  em: EntityManager,
  userId: string,
  reason: string,
  options: RevocationContext = {},
): Promise<string[]> {
  return (await revokeSessions(em, { user: userId }, reason, options)).map((s) => s.id);
}
