import type { EntityManager } from 'typeorm';
import { recordAudit, type AuditContext } from '../audit/audit.service.js';
import { eraseAuditSubject } from '../audit/audit-erasure.js';
import { erasePersonFromWebhookPayloads } from '../webhooks/webhook-events.js';
import { findUser, setUserStatus } from './users.service.js';
import type { User } from './user.entity.js';

/**
 * Erasing one person (issue 12; SCIM DELETE and POST /admin/v1/tenants/{id}/users/{userId}/erasure):
 * what is left of them afterwards? A non-identifying tombstone of the users row
 * (id, status 'deleted', version and times: it keeps SCIM's 404 for the id and
 * the ids other rows still carry), and nothing else that names them:
 *
 * - deprovisioned first if still live (sessions revoked, back-channel logouts
 *   queued — they carry only the session and user ids — and `user.deprovisioned`);
 * - their identities (IdP subjects), memberships and SAML logout rows (NameIDs) deleted; name, emails,
 *   userName, externalId and attributes cleared;
 * - webhook payloads still to deliver: their own user.* events redacted, any
 *   other naming them dropped (webhooks/webhook-events.ts);
 * - audit events naming them pseudonymised (audit/audit-erasure.ts);
 * - the erasure audited as `user.erased`, with counts and no personal data.
 *
 * In the caller's withTenant transaction. Null when there is no such user, or
 * it was already erased.
 */
export interface PersonErasure {
  user_id: string;
  erased_audit_events: number;
  redacted_webhook_events: number;
  dropped_webhook_events: number;
}

/** The userName of an erased tombstone (users.user_name is NOT NULL; deleted rows are outside its unique index). */
export const ERASED_USER_NAME = '[erased]';

const EMAIL_LIKE = /^[^\s@]+@[^\s@]+$/;

/** Strings of the person that identify them, to find them elsewhere (never short common words). */
function identifyingValues(user: User, subjects: readonly string[]): string[] {
  const values = [user.userName, user.email, user.externalId, user.displayName, ...subjects];
  // Secondary emails and the formatted name live in the SCIM attributes.
  const walk = (v: unknown): void => {
    if (typeof v === 'string') {
      if (EMAIL_LIKE.test(v)) values.push(v);
    } else if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === 'object') Object.values(v).forEach(walk);
  };
  walk(user.attributes);
  const name = user.attributes.name;
  if (name && typeof name === 'object' && 'formatted' in name && typeof name.formatted === 'string')
    values.push(name.formatted);
  return [...new Set(values.filter((v): v is string => typeof v === 'string' && v.length > 0))];
}

export async function erasePerson(
  em: EntityManager,
  tenantId: string,
  userId: string,
  reason: string,
  ctx: AuditContext,
): Promise<PersonErasure | null> {
  let user = await findUser(em, userId, { lock: true, includeDeleted: true });
  if (!user || (user.status === 'deleted' && user.userName === ERASED_USER_NAME)) return null;
  if (user.status !== 'deleted') user = (await setUserStatus(em, user, 'deleted', reason)).user;
  const [identities] = await em.query<[{ subject: string }[], number]>(
    'DELETE FROM identities WHERE user_id = $1 RETURNING subject',
    [userId],
  );
  // setUserStatus('deleted') left the groups already; a tombstone found deleted may predate that.
  await em.query('DELETE FROM group_members WHERE user_id = $1', [userId]);
  // SAML Single Logout's rows hold the NameID the IdP asserted (issue 16; owned by sso/, which sits above).
  await em.query('DELETE FROM saml_sessions WHERE user_id = $1', [userId]);
  const values = identifyingValues(
    user,
    identities.map((i) => i.subject),
  );
  // given/family names alone are not identifying enough to search by (another Alice), but go here.
  await em.query(
    `UPDATE users SET user_name = $2, email = NULL, email_verified = false, given_name = NULL,
                      family_name = NULL, display_name = NULL, external_id = NULL, attributes = '{}'::jsonb,
                      version = version + 1, updated_at = now()
      WHERE id = $1`,
    [userId, ERASED_USER_NAME],
  );
  // Issue 15: their login traces, by user or by a value a failed login carried (sso's table; sso sits above).
  await em.query(
    `DELETE FROM login_traces
      WHERE user_id = $1 OR profile->>'email' = ANY($2) OR profile->>'subject' = ANY($2)`,
    [userId, values],
  );
  const webhooks = await erasePersonFromWebhookPayloads(em, userId, values);
  const seqs = await eraseAuditSubject(em, tenantId, [userId, ...values]);
  await recordAudit(em, tenantId, {
    ...ctx,
    action: 'user.erased',
    target: { type: 'user', id: userId },
    after: { reason, erased_audit_events: seqs.length, erased_seqs: seqs },
  });
  return {
    user_id: userId,
    erased_audit_events: seqs.length,
    redacted_webhook_events: webhooks.redacted,
    dropped_webhook_events: webhooks.dropped,
  };
}
