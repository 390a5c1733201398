import type { EntityManager } from 'typeorm';
import type { Database } from '../db/database.js';
import type { ActorType } from './audit-event.entity.js';
import { sealTrail } from './audit-sealer.js';

export interface AuditEventView {
  seq: number;
  id: string;
  occurred_at: string;
  actor: { type: ActorType; id: string | null };
  action: string;
  target: { type: string; id: string | null } | null;
  request_id: string | null;
  source_ip: string | null;
  before: unknown;
  after: unknown;
  prev_hash: string;
  hash: string;
  /**
   * The exact text `hash` is the SHA-256 of (audit_event_hash_input): an outside
   * verifier recomputes each hash from it and checks it says what the fields say.
   */
  hash_input: string;
  /**
   * Issue 12, chain v2: 2 for events whose hash covers `content_digest` (the salted digest
   * of actor.id, target.id, source_ip, before and after) instead of those clear values; 1
   * for events written before.
   */
  hash_version: 1 | 2;
  /** v2: the salt (hex), null once the event is erased. */
  pii_salt: string | null;
  /** v2: sha256(salt || digest_input), hex; kept when the event is erased. */
  content_digest: string | null;
  /** v2 with its salt: the exact text the digest covers after the salt (audit_event_digest_input). */
  digest_input: string | null;
  /** The personal fields were erased (a person's erasure or a tenant's pseudonymised purge). */
  erased: boolean;
}

export interface AuditEventQuery {
  limit: number;
  offset: number;
  /**
   * Keyset paging: only events past this seq in the page's order (the last seq
   * of the previous page), so a page is an index range on (tenant_id, seq)
   * however deep it is, and rows appended meanwhile never shift it.
   */
  afterSeq?: number;
  /** An exact action (`domain.verified`) or a prefix ending in `.*` (`domain.*`). */
  action?: string;
  /** Inclusive lower bound of occurred_at. */
  since?: Date;
  /** Exclusive upper bound of occurred_at. */
  until?: Date;
  /** An exact actor id and target id (the portal's filters, issue 15). */
  actorId?: string;
  targetId?: string;
  order: 'asc' | 'desc';
}

interface Row {
  seq: string;
  id: string;
  occurred_at: Date;
  actor_type: ActorType;
  actor_id: string | null;
  action: string;
  target_type: string | null;
  target_id: string | null;
  request_id: string | null;
  source_ip: string | null;
  before: unknown;
  after: unknown;
  prev_hash: string;
  hash: string;
  hash_input: string;
  hash_version: number;
  pii_salt: Buffer | null;
  content_digest: string | null;
  digest_input: string | null;
  erased: boolean;
}

function view(r: Row): AuditEventView {
  return {
    seq: Number(r.seq),
    id: r.id,
    occurred_at: r.occurred_at.toISOString(),
    actor: { type: r.actor_type, id: r.actor_id },
    action: r.action,
    target: r.target_type ? { type: r.target_type, id: r.target_id } : null,
    request_id: r.request_id,
    source_ip: r.source_ip,
    before: r.before,
    after: r.after,
    prev_hash: r.prev_hash,
    hash: r.hash,
    hash_input: r.hash_input,
    hash_version: r.hash_version === 1 ? 1 : 2,
    pii_salt: r.pii_salt ? r.pii_salt.toString('hex') : null,
    content_digest: r.content_digest,
    digest_input: r.digest_input,
    erased: r.erased,
  };
}

/** How far a total is counted; past it the answer says `total_is_capped` instead of counting the whole trail. */
export const AUDIT_TOTAL_CAP = 10_000;

export interface AuditEventPage {
  data: AuditEventView[];
  /** Events matching the filters (not the cursor), exact up to AUDIT_TOTAL_CAP. */
  total: number;
  total_is_capped: boolean;
  /** The last seq of this page when another page follows, else null. */
  next_seq: number | null;
}

/**
 * A tenant's sealed audit trail, filtered and paginated, read inside its withTenant.
 * A page reads at most limit + 1 rows along (tenant_id, seq) (the extra row
 * says whether another page follows) and never counts the whole trail: the
 * total is known from the page when it is the last one, else counted up to
 * AUDIT_TOTAL_CAP (issue 13: the window count read, and spilled, every row).
 */
export async function listAuditEvents(
  db: Database,
  tenantId: string,
  q: AuditEventQuery,
): Promise<AuditEventPage> {
  // Issue 13: the page lists sealed events (each with its seq and hash); what committed since the
  // last seal is sealed first, awaited, in transactions of their own (the sealer's lock ends with
  // each), so the page does not depend on when the writer's background seal ran.
  await sealTrail(db, tenantId);
  return db.withTenant(tenantId, (em) => auditEventsPage(em, tenantId, q));
}

/** listAuditEvents in the caller's withTenant (the EXPLAIN guard, test/db/rls-index-guard.test.ts, plans it). */
export async function auditEventsPage(
  em: EntityManager,
  tenantId: string,
  q: AuditEventQuery,
): Promise<AuditEventPage> {
  const params: unknown[] = [tenantId];
  const where = ['tenant_id = $1', 'seq IS NOT NULL'];
  if (q.action !== undefined) {
    // starts_with, not LIKE: it is leakproof, so row-level security lets an index evaluate it.
    params.push(q.action.endsWith('.*') ? q.action.slice(0, -1) : q.action);
    where.push(
      q.action.endsWith('.*') ? `starts_with(action, $${params.length})` : `action = $${params.length}`,
    );
  }
  if (q.since) {
    params.push(q.since);
    where.push(`occurred_at >= $${params.length}`);
  }
  if (q.until) {
    params.push(q.until);
    where.push(`occurred_at < $${params.length}`);
  }
  for (const [column, value] of [
    ['actor_id', q.actorId],
    ['target_id', q.targetId],
  ] as const) {
    if (value === undefined) continue;
    params.push(value);
    where.push(`${column} = $${params.length}`);
  }
  const filters = where.join(' AND ');
  const filterParams = [...params];
  const ascending = q.order === 'asc';
  if (q.afterSeq !== undefined) {
    params.push(q.afterSeq);
    where.push(`seq ${ascending ? '>' : '<'} $${params.length}`);
  }
  params.push(q.limit + 1, q.offset);
  const sql = `SELECT seq, id, occurred_at, actor_type, actor_id, action, target_type, target_id,
                      request_id, source_ip, before, after, prev_hash, hash,
                      audit_event_hash_input(audit_events) AS hash_input, hash_version, pii_salt,
                      content_digest, audit_event_is_erased(audit_events) AS erased,
                      CASE WHEN hash_version = 2 AND pii_salt IS NOT NULL
                           THEN audit_event_digest_input(audit_events) END AS digest_input
                 FROM audit_events WHERE ${where.join(' AND ')}
                ORDER BY seq ${ascending ? 'ASC' : 'DESC'}
                LIMIT $${params.length - 1} OFFSET $${params.length}`;
  const rows = await em.query<Row[]>(sql, params);
  const more = rows.length > q.limit;
  const data = rows.slice(0, q.limit).map(view);
  let total = q.offset + data.length;
  let capped = false;
  if (more || q.afterSeq !== undefined || (data.length === 0 && q.offset > 0)) {
    const [counted] = await em.query<{ n: string }[]>(
      `SELECT count(*) AS n FROM (SELECT 1 FROM audit_events WHERE ${filters} LIMIT ${AUDIT_TOTAL_CAP + 1}) AS capped`,
      filterParams,
    );
    total = Math.min(Number(counted?.n ?? 0), AUDIT_TOTAL_CAP);
    capped = Number(counted?.n ?? 0) > AUDIT_TOTAL_CAP;
  }
  const last = data[data.length - 1];
  return { data, total, total_is_capped: capped, next_seq: more && last ? last.seq : null };
}
