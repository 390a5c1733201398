import type { EntityManager } from 'typeorm';
import { notifyInTransaction, type Channel } from './notification-bus.js';

/**
 * What an operator sees and does with an outbox (issue 11, "Operator endpoints
 * for deliveries"): list a tenant's deliveries with their status, attempts and
 * last error, and send a given-up one again. The mechanism, like
 * db/outbox-worker.ts: its owner (sessions/ for back-channel logouts,
 * webhooks/ for webhook events) names the table and its columns. Runs in the
 * caller's tenant transaction (RLS scopes every statement).
 */

export type DeliveryStatus = 'pending' | 'delivered' | 'failed';

export interface OutboxTable {
  table: 'logout_outbox' | 'webhook_outbox';
  /** The owner's own columns shown besides the common ones (`alias` → column). */
  columns: Readonly<Record<string, string>>;
  /** The NOTIFY that wakes the delivery workers (payload: tenant id). */
  channel: Channel;
}

export interface DeliveryView {
  id: string;
  app_id: string;
  status: DeliveryStatus;
  attempts: number;
  last_error: string | null;
  next_attempt_at: string | null;
  created_at: string;
  delivered_at: string | null;
  [column: string]: unknown;
}

export interface DeliveryQuery {
  status?: DeliveryStatus;
  limit: number;
  offset: number;
}

const COLUMN = /^[a-z_]+$/;

function selectList(o: OutboxTable): string {
  const own = Object.entries(o.columns).map(([alias, column]) => {
    if (!COLUMN.test(alias) || !COLUMN.test(column)) throw new Error(`not a column: ${alias}/${column}`);
    return `${column} AS ${alias}`;
  });
  return [
    'id',
    'app_id',
    'status',
    'attempts',
    'last_error',
    // A given-up or delivered row is not due: no next attempt to show.
    `CASE WHEN status = 'pending' THEN next_attempt_at END AS next_attempt_at`,
    'created_at',
    'delivered_at',
    ...own,
  ].join(', ');
}

/** How far `total` is counted; past it the answer says `total_is_capped` (issue 13: no whole-outbox count). */
export const DELIVERIES_TOTAL_CAP = 10_000;

/**
 * Newest first, optionally of one status; `total` for paging. The page walks
 * the (tenant_id, created_at DESC, id DESC) index and stops at its LIMIT; the
 * total is counted up to DELIVERIES_TOTAL_CAP.
 */
export async function listDeliveries(
  em: EntityManager,
  o: OutboxTable,
  q: DeliveryQuery,
): Promise<{ data: DeliveryView[]; total: number; total_is_capped: boolean }> {
  const where = q.status ? 'WHERE status = $3' : '';
  const params: unknown[] = [q.limit, q.offset, ...(q.status ? [q.status] : [])];
  // idor check: RLS scopes both statements to the tenant of the transaction.
  const rows = await em.query<DeliveryView[]>(
    `SELECT ${selectList(o)} FROM ${o.table} ${where} ORDER BY created_at DESC, id DESC LIMIT $1 OFFSET $2`,
    params,
  );
  const [count] = await em.query<{ n: number }[]>(
    `SELECT count(*)::int AS n FROM (SELECT 1 FROM ${o.table} ${q.status ? 'WHERE status = $1' : ''}
      LIMIT ${DELIVERIES_TOTAL_CAP + 1}) AS capped`,
    q.status ? [q.status] : [],
  );
  const n = count?.n ?? 0;
  return {
    data: rows.map(iso),
    total: Math.min(n, DELIVERIES_TOTAL_CAP),
    total_is_capped: n > DELIVERIES_TOTAL_CAP,
  };
}

export type RetryOutcome =
  | { kind: 'retried'; delivery: DeliveryView }
  | { kind: 'not_found' }
  | { kind: 'not_given_up'; status: DeliveryStatus };

/**
 * Puts a given-up (failed) delivery back in the queue with a fresh attempt
 * budget and wakes the workers on every node (NOTIFY at commit). Pending and
 * delivered rows are left alone: a pending one is already queued, and sending
 * a delivered one again would be a duplicate the receiver did not ask for.
 */
export async function retryDelivery(
  em: EntityManager,
  o: OutboxTable,
  tenantId: string,
  id: string,
): Promise<RetryOutcome> {
  // idor check: RLS scopes the row to the tenant of the transaction.
  const [current] = await em.query<{ status: DeliveryStatus }[]>(
    `SELECT status FROM ${o.table} WHERE id = $1 FOR UPDATE`,
    [id],
  );
  if (!current) return { kind: 'not_found' };
  if (current.status !== 'failed') return { kind: 'not_given_up', status: current.status };
  // TypeORM answers an UPDATE … RETURNING with [rows, affected count].
  const [rows] = await em.query<[DeliveryView[], number]>(
    `UPDATE ${o.table} SET status = 'pending', attempts = 0, next_attempt_at = now()
      WHERE id = $1 RETURNING ${selectList(o)}`,
    [id],
  );
  const [row] = rows;
  await notifyInTransaction(em, o.channel, tenantId);
  return { kind: 'retried', delivery: iso(row as DeliveryView) };
}

function iso(row: DeliveryView): DeliveryView {
  const text = (v: unknown) => (v instanceof Date ? v.toISOString() : (v as string | null));
  return {
    ...row,
    next_attempt_at: text(row.next_attempt_at),
    created_at: text(row.created_at) ?? '',
    delivered_at: text(row.delivered_at),
  };
}
