import type { EntityManager } from 'typeorm';
import { recordAudit } from '../audit/audit.service.js';
import type { Database } from '../db/database.js';
import { fanOutRevocation } from '../sessions/session-events.js';
import type { AuditContext } from '../tenants/tenants.service.js';
import { tenantsWithAppSessions } from '../db/resolvers.js';

/**
 * Ending what a deleted app was issued: its live sessions sit under each
 * tenant's row-level security, so the tenants holding them come from the
 * app_session_tenants() resolver (tenant ids only) and each tenant's sessions
 * are revoked inside withTenant, in batches, with the usual fan-out (other
 * nodes are notified; no back-channel logout goes to a deleted app) and one
 * audit event per tenant.
 */
const BATCH = 500;

type RevokedRows = [{ tenant_id: string; id: string; user_id: string }[], number];

/** Revokes every live session of the app in every tenant; returns how many. */
export async function revokeAppSessions(
  db: Database,
  appId: string,
  reason: string,
  ctx: AuditContext,
): Promise<number> {
  const tenants = await tenantsWithAppSessions(db, appId);
  let total = 0;
  for (const tenantId of tenants) {
    for (;;) {
      const revoked = await db.withTenant(tenantId, (em) => revokeBatch(em, tenantId, appId, reason, ctx));
      total += revoked;
      if (revoked < BATCH) break;
    }
  }
  return total;
}

async function revokeBatch(
  em: EntityManager,
  tenantId: string,
  appId: string,
  reason: string,
  ctx: AuditContext,
): Promise<number> {
  const [rows] = await em.query<RevokedRows>(
    `UPDATE sessions SET revoked_at = now(), revoked_reason = $2
      WHERE (tenant_id, id) IN (
            SELECT tenant_id, id FROM sessions
             WHERE app_id = $1 AND revoked_at IS NULL AND expires_at > now() LIMIT $3)
      RETURNING tenant_id, id, user_id`,
    [appId, reason, BATCH],
  );
  if (rows.length === 0) return 0;
  await fanOutRevocation(
    em,
    rows.map((r) => ({ tenantId: r.tenant_id, id: r.id, userId: r.user_id })),
  );
  await recordAudit(em, tenantId, {
    ...ctx,
    action: 'session.revoked',
    target: { type: 'app', id: appId },
    after: { reason, sessions: rows.length },
  });
  return rows.length;
}
