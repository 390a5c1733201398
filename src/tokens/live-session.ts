import type { EntityManager } from 'typeorm';
import type { Database } from '../db/database.js';
import { resolveTenantBySession } from '../db/resolvers.js';
import { rolesForLogin } from '../directory/roles.service.js';
import { findUser } from '../directory/users.service.js';
import type { User } from '../directory/user.entity.js';
import { liveGrant, type LiveGrantInput, type NotLiveReason } from '../sessions/live-grant.js';
import type { Session } from '../sessions/session.entity.js';

/**
 * "Still true?" as every token path needs it (docs/architecture.md, the four
 * questions): sessions/live-grant.ts answers it; this adds what a token
 * carries about the person — their record and their roles now. Shared by
 * grants/ (refresh, code exchange) and status/ (introspection, userinfo,
 * tenant admins), so neither pipeline imports the other for it.
 */

export interface LiveSession {
  tenantId: string;
  session: Session;
  user: User;
  roles: string[];
}

/**
 * The session behind a token, if it is live (sessions/live-grant.ts: not
 * revoked or expired, the person active, the tenant live, neither the token's
 * app — `client_id` — nor the session's app deleted), belongs to `tid` and to
 * `sub`; with the person and their roles now.
 */
export async function liveSession(
  db: Database,
  claims: { tid: string; sid: string; sub: string; client_id?: string },
  now: Date,
): Promise<LiveSession | null> {
  const tenantId = await resolveTenantBySession(db, claims.sid);
  // idor check: the session must live in the tenant the token names
  if (!tenantId || tenantId !== claims.tid) return null;
  return db.withTenant(tenantId, async (em) => {
    const grant = await liveGrantWithPerson(em, {
      sessionId: claims.sid,
      userId: claims.sub,
      appId: claims.client_id,
      now,
    });
    return grant.live ? { tenantId, session: grant.session, user: grant.user, roles: grant.roles } : null;
  });
}

export type LiveGrantWithPerson =
  { live: true; session: Session; user: User; roles: string[] } | { live: false; reason: NotLiveReason };

/**
 * liveGrant (the one "still true?" answer) plus what a token carries about the
 * person: their record and their roles now. In the caller's tenant transaction.
 */
export async function liveGrantWithPerson(
  em: EntityManager,
  input: LiveGrantInput,
): Promise<LiveGrantWithPerson> {
  const grant = await liveGrant(em, input);
  if (!grant.live) return grant;
  const user = await findUser(em, grant.session.userId, { includeDeleted: true });
  // liveGrant saw the person active in this transaction; a row gone since is not.
  if (!user) return { live: false, reason: 'person_not_active' };
  return { live: true, session: grant.session, user, roles: await rolesForSession(em, grant.session) };
}

/** The person's roles now: mapped from their groups, else the default role of the connection they used. */
export async function rolesForSession(em: EntityManager, session: Session): Promise<string[]> {
  return rolesForLogin(em, session.userId, session.connectionId);
}
