import { randomUUID } from 'node:crypto';
import type { EntityManager } from 'typeorm';
import { CHANNELS, notifyInTransaction } from '../db/notification-bus.js';

/**
 * What an event says of a person and of a group: the fields of directory's
 * rows it carries, as structural types so webhooks/ (below directory/, which
 * writes the events) never imports directory's entities (docs/architecture.md).
 */
export interface EventUser {
  tenantId: string;
  id: string;
  userName: string;
  email: string | null;
  emailVerified: boolean;
  givenName: string | null;
  familyName: string | null;
  displayName: string | null;
  externalId: string | null;
  status: 'active' | 'suspended' | 'deleted';
  version: number;
  createdAt: Date | string;
  updatedAt: Date | string;
}
export interface EventGroup {
  tenantId: string;
  id: string;
  displayName: string;
  externalId: string | null;
  source: 'scim' | 'idp';
  version: number;
  createdAt: Date | string;
  updatedAt: Date | string;
}

/**
 * Directory events for apps (WorkOS-style): written to the tenant's
 * webhook_outbox in the transaction of the change they describe, so an event
 * exists if and only if its change committed. The delivery worker
 * (webhook-delivery.ts) signs and POSTs them.
 */
export const WEBHOOK_EVENT_TYPES = [
  'user.created',
  'user.updated',
  'user.deprovisioned',
  'user.reactivated',
  'group.created',
  'group.updated',
  'group.deleted',
  // Issue 12: a signed head of the tenant's audit chain (src/audit/checkpoints.service.ts).
  'audit.checkpoint',
  // Issue 16: an IdP signing certificate found by a metadata refresh, and one expiring within 30 days
  // or expired (once per certificate per threshold: 30d, 7d, expired; src/connections/).
  'connection.certificate_added',
  'connection.certificate_expiring',
  // Issue 12: the tenant was deleted (src/offboarding/deletion.ts): id, slug, deleted_at, purge_after.
  'tenant.deleted',
] as const;
export type WebhookEventType = (typeof WEBHOOK_EVENT_TYPES)[number];

/** What an app receives: the POST body. */
export interface WebhookEvent {
  id: string;
  type: WebhookEventType;
  created_at: string;
  tenant_id: string;
  data: Record<string, unknown>;
}

/** A user as events show it: stable snake_case fields, nothing secret (no SCIM extras, no password). */
export interface UserEventData {
  object: 'user';
  id: string;
  user_name: string;
  email: string | null;
  email_verified: boolean;
  given_name: string | null;
  family_name: string | null;
  display_name: string | null;
  external_id: string | null;
  status: EventUser['status'];
  version: number;
  created_at: string;
  updated_at: string;
}

export function userEventData(user: EventUser): UserEventData {
  return {
    object: 'user',
    id: user.id,
    user_name: user.userName,
    email: user.email,
    email_verified: user.emailVerified,
    given_name: user.givenName,
    family_name: user.familyName,
    display_name: user.displayName,
    external_id: user.externalId,
    status: user.status,
    version: user.version,
    created_at: iso(user.createdAt),
    updated_at: iso(user.updatedAt),
  };
}

/** Membership changed by one event: user ids (a group's full member list is not sent). */
export interface MembershipDelta {
  added: string[];
  removed: string[];
}

export function groupEventData(group: EventGroup, membership?: MembershipDelta): Record<string, unknown> {
  return {
    object: 'group',
    id: group.id,
    display_name: group.displayName,
    external_id: group.externalId,
    source: group.source,
    version: group.version,
    created_at: iso(group.createdAt),
    updated_at: iso(group.updatedAt),
    ...(membership
      ? { members_added: [...new Set(membership.added)], members_removed: [...new Set(membership.removed)] }
      : {}),
  };
}

function iso(value: Date | string): string {
  return (value instanceof Date ? value : new Date(value)).toISOString();
}

/**
 * Queues one event for every app with a webhook URL (apps are platform-level,
 * so each gets every tenant's events), in the caller's withTenant transaction,
 * and wakes the delivery workers at commit. With no such app it writes nothing.
 */
export async function enqueueWebhookEvent(
  em: EntityManager,
  tenantId: string,
  type: WebhookEventType,
  data: Record<string, unknown>,
  now = new Date(),
): Promise<void> {
  const params: unknown[] = [];
  const queued = await em.query<unknown[]>(
    webhookOutboxInsertSql(tenantId, type, data, (v) => `$${params.push(v)}`, now),
    params,
  );
  if (queued.length > 0) await notifyInTransaction(em, CHANNELS.webhookOutbox, tenantId);
}

/**
 * enqueueWebhookEvent's INSERT as SQL text (RETURNING 1 per queued row), its
 * values bound through `param`, for a caller that sends its change and the
 * event as one statement (issue 13). `patch` sets one field of `data` from a
 * SQL expression known only inside that statement (e.g. a column the change
 * computed). The caller wakes the workers with webhookWakeSql over its rows.
 */
export function webhookOutboxInsertSql(
  tenantId: string,
  type: WebhookEventType,
  data: Record<string, unknown>,
  param: (value: unknown) => string,
  now = new Date(),
  patch?: { field: string; valueSql: string },
  /** An SQL condition: the rows are queued only if it holds (see auditInsertSql). */
  when?: string,
): string {
  const event: WebhookEvent = {
    id: randomUUID(),
    type,
    created_at: now.toISOString(),
    tenant_id: tenantId,
    data,
  };
  const payload = patch
    ? `jsonb_set(${param(JSON.stringify(event))}::jsonb, ${param(['data', patch.field])}::text[], to_jsonb(${patch.valueSql}))`
    : `${param(JSON.stringify(event))}::jsonb`;
  return `INSERT INTO webhook_outbox (tenant_id, event_id, event_type, app_id, payload, created_at, next_attempt_at)
     SELECT ${param(tenantId)}, ${param(event.id)}, ${param(type)}, a.id, ${payload}, now(), now()
       FROM apps a WHERE a.webhook_url IS NOT NULL AND a.deleted_at IS NULL${when === undefined ? '' : ` AND (${when})`}
     RETURNING 1`;
}

/**
 * The NOTIFY of enqueueWebhookEvent as an expression (how many were sent: 0 or
 * 1), sent when `queuedSql` (the caller's queued rows) is not empty. A
 * statement must select it for PostgreSQL to evaluate it.
 */
export function webhookWakeSql(
  tenantId: string,
  queuedSql: string,
  param: (value: unknown) => string,
): string {
  return `(SELECT count(*) FROM (SELECT pg_notify(${param(CHANNELS.webhookOutbox)}, ${param(tenantId)})
            WHERE EXISTS (${queuedSql})) AS woken)`;
}

/** Shorthands for the directory's one place per change. */
export const userEvent = (
  em: EntityManager,
  user: EventUser,
  type: Extract<WebhookEventType, `user.${string}`>,
  extra: Record<string, unknown> = {},
) => enqueueWebhookEvent(em, user.tenantId, type, { ...userEventData(user), ...extra });

export const groupEvent = (
  em: EntityManager,
  group: EventGroup,
  type: Extract<WebhookEventType, `group.${string}`>,
  membership?: MembershipDelta,
) => enqueueWebhookEvent(em, group.tenantId, type, groupEventData(group, membership));

/**
 * Event types kept when a tenant is deleted: their payload carries no personal
 * data (ids, a slug, hashes, times). Every other type goes (user.* and group.*
 * name people and groups; a deleted tenant's connection notices are moot).
 */
const KEPT_ON_TENANT_DELETION: readonly WebhookEventType[] = ['audit.checkpoint', 'tenant.deleted'];

/**
 * A tenant is deleted (issue 12): every outbox row of the tenant that may
 * carry personal data goes, whatever its status (pending rows would still be
 * sent, finished ones are kept for GATEHOUSE_OUTBOX_RETENTION). In the
 * caller's withTenant transaction; returns how many rows went.
 */
export async function dropPersonalWebhookPayloads(em: EntityManager): Promise<number> {
  const [, count] = await em.query<[unknown[], number]>(
    `DELETE FROM webhook_outbox WHERE event_type <> ALL ($1::text[])`,
    [KEPT_ON_TENANT_DELETION],
  );
  return count;
}

/** What an erased person's fields say in an event still to be delivered. */
const ERASED_USER_FIELDS = {
  user_name: '[erased]',
  email: null,
  given_name: null,
  family_name: null,
  display_name: null,
  external_id: null,
};

/**
 * One person is erased (issue 12): their own `user.*` events keep their id,
 * status and version (apps still learn of the deprovisioning) with every
 * personal field replaced; any other row whose payload still names one of
 * `values` (case-insensitively, any string at any depth) is dropped.
 */
export async function erasePersonFromWebhookPayloads(
  em: EntityManager,
  userId: string,
  values: readonly string[],
): Promise<{ redacted: number; dropped: number }> {
  const [, redacted] = await em.query<[unknown[], number]>(
    `UPDATE webhook_outbox
        SET payload = jsonb_set(payload, '{data}', (payload -> 'data') || $2::jsonb)
      WHERE event_type LIKE 'user.%' AND payload -> 'data' ->> 'id' = $1`,
    [userId, JSON.stringify(ERASED_USER_FIELDS)],
  );
  const lowered = [...new Set(values.filter((v) => v.length > 0).map((v) => v.toLowerCase()))];
  const [, dropped] = await em.query<[unknown[], number]>(
    `DELETE FROM webhook_outbox WHERE audit_jsonb_mentions(payload, $1::text[])`,
    [lowered],
  );
  return { redacted, dropped };
}
