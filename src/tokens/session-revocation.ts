import type { EntityManager } from 'typeorm';
import type { AuditActor } from '../audit/audit.service.js';
import { revokeSessions } from '../sessions/revoke-sessions.js';

const SYSTEM: AuditActor = { type: 'system', id: 'gatehouse' };

/**
 * Revokes a session for a reason (code or refresh-token reuse, client
 * revocation, RP-initiated logout, a burnt login) with its `session.revoked`
 * audit event, through sessions/revoke-sessions.ts. True when the session was
 * live. `tenantId` is the session's tenant, the one `em` is scoped to.
 */
export async function revokeSessionAudited(
  em: EntityManager,
  tenantId: string,
  sessionId: string,
  reason: string,
  context: { actor?: AuditActor; requestId?: string; sourceIp?: string } = {},
): Promise<boolean> {
  const revoked = await revokeSessions(em, { session: sessionId }, reason, {
    audit: { actor: context.actor ?? SYSTEM, requestId: context.requestId, sourceIp: context.sourceIp },
  });
  return revoked.some((s) => s.tenantId === tenantId);
}
