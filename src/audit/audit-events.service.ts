import type { Database } from '../db/database.js';
import type { ActorType } from './audit-event.entity.js';

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
}

export interface AuditEventQuery {
  limit: number;
  offset: number;
  /** An exact action (`domain.verified`) or a prefix ending in `.*` (`domain.*`). */
  action?: string;
  /** Inclusive lower bound of occurred_at. */
  since?: Date;
  /** Exclusive upper bound of occurred_at. */
  until?: Date;
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
  total: string;
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
  };
}

/** A tenant's audit trail, filtered and paginated, read inside its withTenant. */
export async function listAuditEvents(
  db: Database,
  tenantId: string,
  q: AuditEventQuery,
): Promise<{ data: AuditEventView[]; total: number }> {
  const params: unknown[] = [tenantId];
  const where = ['tenant_id = $1'];
  if (q.action !== undefined) {
    if (q.action.endsWith('.*')) {
      // Actions are [a-z0-9_.:-]: no LIKE metacharacter but `_`, escaped here.
      params.push(`${q.action.slice(0, -1).replaceAll('_', '\\_')}%`);
      where.push(`action LIKE $${params.length}`);
    } else {
      params.push(q.action);
      where.push(`action = $${params.length}`);
    }
  }
  if (q.since) {
    params.push(q.since);
    where.push(`occurred_at >= $${params.length}`);
  }
  if (q.until) {
    params.push(q.until);
    where.push(`occurred_at < $${params.length}`);
  }
  params.push(q.limit, q.offset);
  const sql = `SELECT seq, id, occurred_at, actor_type, actor_id, action, target_type, target_id,
                      request_id, source_ip, before, after, prev_hash, hash,
                      audit_event_hash_input(audit_events) AS hash_input, count(*) OVER () AS total
                 FROM audit_events WHERE ${where.join(' AND ')}
                ORDER BY seq ${q.order === 'asc' ? 'ASC' : 'DESC'}
                LIMIT $${params.length - 1} OFFSET $${params.length}`;
  return db.withTenant(tenantId, async (em) => {
    const rows = await em.query<Row[]>(sql, params);
    let total = Number(rows[0]?.total ?? 0);
    if (rows.length === 0 && q.offset > 0) {
      // Past the last page the window count is lost; count separately.
      const counted = await em.query<{ n: string }[]>(
        `SELECT count(*) AS n FROM audit_events WHERE ${where.join(' AND ')}`,
        params.slice(0, -2),
      );
      total = Number(counted[0]?.n ?? 0);
    }
    return { data: rows.map(view), total };
  });
}
