import type { AuditContext } from '../audit/audit.service.js';
import type { Database } from '../db/database.js';
import { tenantsWithAppSessions } from '../db/resolvers.js';
import { revokeSessions } from '../sessions/revoke-sessions.js';

/**
 * Ending what a deleted app was issued: its live sessions sit under each
 * tenant's row-level security, so the tenants holding them come from the
 * app_session_tenants() resolver (tenant ids only) and each tenant's sessions
 * are revoked inside withTenant (sessions/revoke-sessions.ts, scope app), in
 * batches, with the usual fan-out (other nodes are notified; no back-channel
 * logout goes to a deleted app) and one audit event per batch.
 */
const BATCH = 500;

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
      const revoked = await db.withTenant(
        tenantId,
        async (em) => (await revokeSessions(em, { app: appId }, reason, { audit: ctx, limit: BATCH })).length,
      );
      total += revoked;
      if (revoked < BATCH) break;
    }
  }
  return total;
}
