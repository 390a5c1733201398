import type { EntityManager } from 'typeorm';
import { recordAudit, type AuditContext } from '../audit/audit.service.js';
import { signals, type RevocationScopeName } from '../observability/signals.js';
import { fanOutRevocation, type RevokedSession } from './session-events.js';

/**
 * Ending sessions, one home (docs/architecture.md, "is it still true?"): every
 * revocation — one session (code or refresh-token reuse, client revocation,
 * RP-initiated logout, a burnt login), a person (deprovisioning), a connection
 * or an app (deleted), a tenant (suspended or deleted) — is this one
 * `UPDATE sessions … RETURNING` followed by the fan-out (session-events.ts):
 * a back-channel logout queued per app session and the other nodes notified,
 * both in the caller's transaction, so they take effect at commit with it.
 *
 * Only live sessions are revoked (live-grant.ts: not revoked, not expired): an
 * expired session has already ended, so it gets no revocation mark, no
 * back-channel logout and no NOTIFY.
 */
export type RevocationScope =
  { session: string } | { user: string } | { connection: string } | { app: string } | { tenant: string };

export interface RevocationContext {
  /**
   * Write one `session.revoked` audit event for what this call revoked (none
   * when nothing was live). Omitted when the caller's own event says it
   * (a person's suspension, a tenant's status change, a connection's deletion).
   */
  audit?: AuditContext;
  /** Queue an OIDC Back-Channel Logout for each app session whose app has a URI (default true). */
  backchannelLogout?: boolean;
  /** Revoke at most this many (the caller repeats until fewer come back). */
  limit?: number;
}

type RevokedRows = [{ tenant_id: string; id: string; user_id: string }[], number];

/** The WHERE condition of each scope, on the caller's tenant (RLS), with its parameter as $1. */
function scopeCondition(scope: RevocationScope): {
  where: string;
  param: string;
  target: RevocationScopeName;
} {
  if ('session' in scope) return { where: 'id = $1', param: scope.session, target: 'session' };
  if ('user' in scope) return { where: 'user_id = $1', param: scope.user, target: 'user' };
  if ('connection' in scope)
    return { where: 'connection_id = $1', param: scope.connection, target: 'connection' };
  if ('app' in scope) return { where: 'app_id = $1', param: scope.app, target: 'app' };
  // idor check: with RLS the tenant's own rows are all there is; the id must still be that tenant's
  return { where: 'tenant_id = $1', param: scope.tenant, target: 'tenant' };
}

/** Revokes the scope's live sessions for `reason`; returns those it revoked. */
export async function revokeSessions(
  em: EntityManager,
  scope: RevocationScope,
  reason: string,
  ctx: RevocationContext = {},
): Promise<RevokedSession[]> {
  const { where, param, target } = scopeCondition(scope);
  const live = `${where} AND revoked_at IS NULL AND expires_at > now()`;
  const [rows] = await em.query<RevokedRows>(
    ctx.limit === undefined
      ? `UPDATE sessions SET revoked_at = now(), revoked_reason = $2
          WHERE ${live} RETURNING tenant_id, id, user_id`
      : `UPDATE sessions SET revoked_at = now(), revoked_reason = $2
          WHERE (tenant_id, id) IN (SELECT tenant_id, id FROM sessions WHERE ${live} LIMIT $3)
          RETURNING tenant_id, id, user_id`,
    ctx.limit === undefined ? [param, reason] : [param, reason, ctx.limit],
  );
  const revoked = rows.map((r) => ({ tenantId: r.tenant_id, id: r.id, userId: r.user_id }));
  // Counted when the statement ran; a caller's rollback after this is rare and still an attempt.
  if (revoked.length > 0) signals.sessionsRevoked(target, revoked.length);
  await fanOutRevocation(em, revoked, { backchannelLogout: ctx.backchannelLogout });
  const first = revoked[0];
  if (ctx.audit && first)
    await recordAudit(em, first.tenantId, {
      ...ctx.audit,
      action: 'session.revoked',
      target: { type: target, id: param },
      after: target === 'session' ? { reason } : { reason, sessions: revoked.length },
    });
  return revoked;
}
