import type { EntityManager } from 'typeorm';
import { CHANNELS, notifyInTransaction, type NotificationBus } from '../db/notification-bus.js';
import { signals } from '../observability/signals.js';

/**
 * What one revocation tells the other nodes (CHANNELS.sessionsRevoked). A
 * user's sessions travel together; past MAX_IDS the ids are left out and
 * `truncated` says so (a NOTIFY payload is limited to 8000 bytes).
 */
export interface SessionsRevokedEvent {
  tenant_id: string;
  user_id: string;
  session_ids: string[];
  truncated: boolean;
  /**
   * When the revoking node sent it (ms since the epoch), for the propagation-delay
   * histogram. Optional: payloads of older nodes lack it and are still honoured.
   */
  sent_at?: number;
}

const MAX_IDS = 100;

export interface RevokedSession {
  tenantId: string;
  id: string;
  userId: string;
}

export interface RevokeOptions {
  /** Queue an OIDC Back-Channel Logout for the session's app, if it has a URI (default true). */
  backchannelLogout?: boolean;
}

/**
 * The revocation fan-out, run in the revoking transaction (docs/architecture.md): one
 * back-channel logout per revoked app session goes into the outbox, and the
 * other nodes are notified. Both take effect at commit, with the revocation.
 */
export async function fanOutRevocation(
  em: EntityManager,
  revoked: RevokedSession[],
  options: RevokeOptions = {},
): Promise<void> {
  if (revoked.length === 0) return;
  if (options.backchannelLogout ?? true) {
    const queued = await em.query<{ tenant_id: string }[]>(
      `INSERT INTO logout_outbox (tenant_id, session_id, user_id, app_id)
       SELECT s.tenant_id, s.id, s.user_id, s.app_id
         FROM sessions s JOIN apps a ON a.id = s.app_id
        WHERE s.id = ANY($1::uuid[]) AND a.backchannel_logout_uri IS NOT NULL AND a.deleted_at IS NULL
       ON CONFLICT DO NOTHING
       RETURNING tenant_id`,
      [revoked.map((s) => s.id)],
    );
    for (const tenantId of new Set(queued.map((q) => q.tenant_id))) {
      await notifyInTransaction(em, CHANNELS.logoutOutbox, tenantId);
    }
  }
  const byUser = new Map<string, RevokedSession[]>();
  for (const s of revoked) {
    const key = `${s.tenantId}/${s.userId}`;
    byUser.set(key, [...(byUser.get(key) ?? []), s]);
  }
  for (const sessions of byUser.values()) {
    const first = sessions[0];
    if (!first) continue;
    const event: SessionsRevokedEvent = {
      tenant_id: first.tenantId,
      user_id: first.userId,
      session_ids: sessions.slice(0, MAX_IDS).map((s) => s.id),
      truncated: sessions.length > MAX_IDS,
      // NOTIFY is delivered at commit, right after this statement: the send time stands in for it.
      sent_at: Date.now(),
    };
    await notifyInTransaction(em, CHANNELS.sessionsRevoked, JSON.stringify(event));
  }
}

/** The event in a sessions-revoked payload, or null when it is not one. */
export function parseSessionsRevoked(payload: string): SessionsRevokedEvent | null {
  try {
    const value = JSON.parse(payload) as Partial<SessionsRevokedEvent> | null;
    if (
      !value ||
      typeof value.tenant_id !== 'string' ||
      typeof value.user_id !== 'string' ||
      !Array.isArray(value.session_ids)
    )
      return null;
    return {
      tenant_id: value.tenant_id,
      user_id: value.user_id,
      session_ids: value.session_ids.filter((id): id is string => typeof id === 'string'),
      truncated: value.truncated === true,
    };
  } catch {
    return null;
  }
}

/** A sessions-revoked payload's send time (ms), or null (a payload of an older node, or not one). */
export function sentAtOf(payload: string): number | null {
  if (parseSessionsRevoked(payload) === null) return null;
  const { sent_at: sentAt } = JSON.parse(payload) as { sent_at?: unknown };
  return typeof sentAt === 'number' && Number.isFinite(sentAt) ? sentAt : null;
}

/**
 * Times each revocation this node hears (CHANNELS.sessionsRevoked): from the
 * revoking node's send time to receipt here. Node clocks are compared, so the
 * figure is as good as their NTP; a negative skew counts as 0.
 */
export function timeRevocationPropagation(bus: NotificationBus, now: () => number = Date.now): () => void {
  return bus.on(CHANNELS.sessionsRevoked, (payload) => {
    const sentAt = sentAtOf(payload);
    if (sentAt !== null) signals.revocationHeard(Math.max(0, now() - sentAt) / 1000);
  });
}
