import type { EntityManager } from 'typeorm';
import { liveTenantSql } from '../db/tenant-liveness.js';
import type { Session } from './session.entity.js';

/**
 * "Is it still true right now?" (docs/architecture.md): the one answer every
 * token path asks for — introspection of access and refresh tokens, the
 * token endpoint's grants, userinfo, tenant-admin tokens, and the login that
 * creates the session. A grant is live when, at `now`:
 *
 * - the session is neither revoked nor expired (an expired session is over
 *   even before the cleanup deletes it),
 * - it belongs to `userId` when the caller names one (the token's `sub`),
 * - its person is active (not suspended, not deleted),
 * - its tenant is live (tenants/tenant-guard.ts),
 * - its app, and the app the caller acts for (`appId`), are not deleted.
 *
 * One statement, in the caller's tenant transaction (withTenant): RLS scopes
 * the session and the person to that tenant.
 */
export type NotLiveReason = 'session_ended' | 'person_not_active' | 'tenant_not_active' | 'app_deleted';

export type LiveGrant = { live: true; session: Session } | { live: false; reason: NotLiveReason };

export interface LiveGrantInput {
  sessionId: string;
  /** The person the credential names (a token's `sub`): another person's session is not live for it. */
  userId?: string;
  /** The app the credential was issued to or that is calling; a deleted one holds nothing. */
  appId?: string | null;
  now: Date;
}

/** The session's own half of the rule: not revoked, not expired at `now`. */
export function isSessionLive(session: Pick<Session, 'revokedAt' | 'expiresAt'>, now: Date): boolean {
  return session.revokedAt === null && session.expiresAt > now;
}

export interface GrantRow {
  tenant_id: string;
  id: string;
  user_id: string;
  app_id: string | null;
  connection_id: string | null;
  auth_time: Date;
  created_at: Date;
  expires_at: Date;
  revoked_at: Date | null;
  revoked_reason: string | null;
  person_active: boolean;
  tenant_live: boolean;
  apps_present: boolean;
}

/**
 * The grant row as SQL text, for a caller that composes it into one statement of its own (issue 13:
 * the token endpoint reads the grant, the person and their roles in one round trip). `sessionParam` and
 * `appParam` are the caller's placeholders (`$1`); the row is read by liveGrantFromRow.
 */
export function liveGrantSql(sessionParam: string, appParam: string): string {
  return `SELECT s.tenant_id, s.id, s.user_id, s.app_id, s.connection_id, s.auth_time, s.created_at,
            s.expires_at, s.revoked_at, s.revoked_reason,
            COALESCE(u.status = 'active', false) AS person_active,
            ${liveTenantSql('tn')} AS tenant_live,
            NOT EXISTS (
              SELECT 1 FROM unnest(ARRAY[s.app_id, ${appParam}::uuid]) AS wanted(id)
               WHERE wanted.id IS NOT NULL
                 AND NOT EXISTS (SELECT 1 FROM apps a WHERE a.id = wanted.id AND a.deleted_at IS NULL)
            ) AS apps_present
       FROM sessions s
       -- idor check: the person and the tenant are the session's own
       LEFT JOIN users u ON u.tenant_id = s.tenant_id AND u.id = s.user_id
       LEFT JOIN tenants tn ON tn.id = s.tenant_id
      WHERE s.id = ${sessionParam}`;
}

export async function liveGrant(em: EntityManager, input: LiveGrantInput): Promise<LiveGrant> {
  const [row] = await em.query<GrantRow[]>(liveGrantSql('$1', '$2'), [input.sessionId, input.appId ?? null]);
  return liveGrantFromRow(row, input);
}

/** The rule over a row of liveGrantSql (absent: no such session in this tenant). */
export function liveGrantFromRow(row: GrantRow | null | undefined, input: LiveGrantInput): LiveGrant {
  if (!row?.id) return notLive('session_ended');
  const session = toSession(row);
  // idor check: a token naming another person gets nothing from this session
  if (!isSessionLive(session, input.now) || (input.userId !== undefined && row.user_id !== input.userId))
    return notLive('session_ended');
  if (!row.person_active) return notLive('person_not_active');
  if (!row.tenant_live) return notLive('tenant_not_active');
  if (!row.apps_present) return notLive('app_deleted');
  return { live: true, session };
}

const notLive = (reason: NotLiveReason): LiveGrant => ({ live: false, reason });

function toSession(row: GrantRow): Session {
  return {
    tenantId: row.tenant_id,
    id: row.id,
    userId: row.user_id,
    appId: row.app_id,
    connectionId: row.connection_id,
    authTime: row.auth_time,
    createdAt: row.created_at,
    expiresAt: row.expires_at,
    revokedAt: row.revoked_at,
    revokedReason: row.revoked_reason,
  };
}
