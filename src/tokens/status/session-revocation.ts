import type { EntityManager } from 'typeorm';
import { recordAudit, type AuditActor } from '../../audit/audit.service.js';
import { revokeSession } from '../../sessions/sessions.service.js';

const SYSTEM: AuditActor = { type: 'system', id: 'gatehouse' };

/**
 * Revokes a session for a reason (code or refresh-token reuse, client
 * revocation, RP-initiated logout, a burnt login) and writes the audit event in
 * the same transaction. True when the session was live.
 */
export async function revokeSessionAudited(
  em: EntityManager,
  tenantId: string,
  sessionId: string,
  reason: string,
  context: { actor?: AuditActor; requestId?: string; sourceIp?: string } = {},
): Promise<boolean> {
  const revoked = await revokeSession(em, sessionId, reason);
  if (revoked)
    await recordAudit(em, tenantId, {
      actor: context.actor ?? SYSTEM,
      action: 'session.revoked',
      target: { type: 'session', id: sessionId },
      requestId: context.requestId,
      sourceIp: context.sourceIp,
      after: { reason },
    });
  return revoked;
}
