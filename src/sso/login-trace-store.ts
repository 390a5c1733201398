import { randomUUID } from 'node:crypto';
import type { EntityManager } from 'typeorm';
import { recordAudit, type AuditContext } from '../audit/audit.service.js';
import { open, seal } from '../config/secret-box.js';
import type { Database } from '../db/database.js';
import { BadRequestError } from '../errors.js';
import type { LoginTraceRecorder, TraceKind, TraceProfile, TraceStep } from './login-trace-steps.js';

/**
 * Where is the trace of a sign-in, and who may read its raw answer? The
 * login_traces table (sso owns it; docs/architecture.md): one INSERT per
 * login that reached a connection, in the login's own transaction where it
 * has one (completeLogin, recordLoginFailure); the lists and the lookup by
 * support reference the portal and the admin API read; the sealed raw
 * SAMLResponse of a failed login, opened only with an audit event.
 */

/** How long a kept raw response may live (issue 15: "for at most 24 hours"). */
export const RAW_RESPONSE_TTL_MS = 24 * 3600_000;

const rawContext = (tenantId: string, traceId: string) => `login-trace-raw-response:${tenantId}:${traceId}`;

export interface TraceWrite {
  tenantId: string;
  connectionId: string;
  /** The request id: what the error page shows as the support reference. */
  supportRef: string;
  trace: LoginTraceRecorder;
  /** `success`, or the reason code. */
  outcome: string;
  userId: string | null;
  roles: string[];
  retentionMs: number;
  now: Date;
  /** Present when the tenant keeps failed responses and there is one: sealed before it is written. */
  keepRaw?: { masterKey: Buffer } | null;
}

/** One statement, in the caller's tenant transaction. */
export async function recordLoginTrace(em: EntityManager, w: TraceWrite): Promise<string> {
  const params: unknown[] = [];
  const { id, sql } = loginTraceInsertSql(w, (v) => `$${params.push(v)}`);
  await em.query(sql, params);
  return id;
}

/**
 * recordLoginTrace's INSERT as SQL text, its values bound through `param`
 * (issue 13: a sign-in sends its audit event and its trace as one statement,
 * complete-login.ts).
 */
export function loginTraceInsertSql(
  w: TraceWrite,
  param: (value: unknown) => string,
): { id: string; sql: string } {
  const id = randomUUID();
  const raw = w.keepRaw && w.trace.rawResponse ? w.trace.rawResponse : null;
  const values = [
    [w.tenantId, 'uuid'],
    [id, 'uuid'],
    [w.connectionId, 'uuid'],
    [w.supportRef.slice(0, 128), 'text'],
    [w.trace.protocol, 'text'],
    [w.trace.kind, 'text'],
    [w.outcome, 'text'],
    [JSON.stringify(w.trace.steps()), 'jsonb'],
    [w.trace.profile ? JSON.stringify(w.trace.profile) : null, 'jsonb'],
    [w.roles, 'text[]'],
    [w.userId, 'uuid'],
    [w.now, 'timestamptz'],
    [new Date(w.now.getTime() + w.retentionMs), 'timestamptz'],
    [raw && w.keepRaw ? seal(w.keepRaw.masterKey, raw, rawContext(w.tenantId, id)) : null, 'text'],
    [raw ? new Date(w.now.getTime() + RAW_RESPONSE_TTL_MS) : null, 'timestamptz'],
  ].map(([value, type]) => `${param(value)}::${type as string}`);
  return {
    id,
    sql: `INSERT INTO login_traces (tenant_id, id, connection_id, support_ref, protocol, kind, outcome, steps,
                               profile, roles, user_id, created_at, expires_at, raw_response_enc,
                               raw_response_expires_at)
     VALUES (${values.join(', ')})`,
  };
}

interface TraceRow {
  id: string;
  connection_id: string;
  support_ref: string;
  protocol: 'saml' | 'oidc';
  kind: TraceKind;
  outcome: string;
  steps: TraceStep[];
  profile: TraceProfile | null;
  roles: string[];
  user_id: string | null;
  created_at: Date;
  expires_at: Date;
  raw_response_expires_at: Date | null;
}

export interface LoginTraceView {
  id: string;
  connection_id: string;
  support_ref: string;
  protocol: 'saml' | 'oidc';
  kind: TraceKind;
  outcome: string;
  steps: TraceStep[];
  profile: TraceProfile | null;
  roles: string[];
  user_id: string | null;
  created_at: string;
  expires_at: string;
  /** Until when the sealed raw response can be viewed; null when none was kept (or it expired). */
  raw_response_expires_at: string | null;
}

// A row imported from an export has no raw response (the export leaves `*_enc` columns out).
const COLUMNS = `id, connection_id, support_ref, protocol, kind, outcome, steps, profile, roles, user_id,
                 created_at, expires_at,
                 CASE WHEN raw_response_enc IS NULL THEN NULL ELSE raw_response_expires_at END
                   AS raw_response_expires_at`;

function view(r: TraceRow, now: Date): LoginTraceView {
  const raw = r.raw_response_expires_at && r.raw_response_expires_at > now ? r.raw_response_expires_at : null;
  return {
    id: r.id,
    connection_id: r.connection_id,
    support_ref: r.support_ref,
    protocol: r.protocol,
    kind: r.kind,
    outcome: r.outcome,
    steps: r.steps,
    profile: r.profile,
    roles: r.roles,
    user_id: r.user_id,
    created_at: r.created_at.toISOString(),
    expires_at: r.expires_at.toISOString(),
    raw_response_expires_at: raw ? raw.toISOString() : null,
  };
}

export interface TraceListQuery {
  limit: number;
  cursor?: string;
  supportRef?: string;
  connectionId?: string;
  /** `success`, `failure`, or one reason code. */
  outcome?: string;
}

/** The cursor is the last row's (created_at, id), opaque to clients. */
function encodeCursor(r: TraceRow): string {
  return Buffer.from(`${r.created_at.toISOString()}|${r.id}`, 'utf8').toString('base64url');
}

function decodeCursor(cursor: string): { at: Date; id: string } {
  const m =
    /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z)\|([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/.exec(
      Buffer.from(cursor, 'base64url').toString('utf8'),
    );
  const at = m?.[1] ? new Date(m[1]) : null;
  if (!m?.[2] || !at || Number.isNaN(at.getTime()))
    throw new BadRequestError('cursor: not a cursor this API returned');
  return { at, id: m[2] };
}

/** A tenant's traces, newest first; keyset paging on (created_at, id) (the log grows while read). */
export async function listLoginTraces(
  db: Database,
  tenantId: string,
  q: TraceListQuery,
  now: Date = new Date(),
): Promise<{ data: LoginTraceView[]; next_cursor: string | null }> {
  const where: string[] = [];
  const params: unknown[] = [];
  const param = (v: unknown) => {
    params.push(v);
    return `$${params.length}`;
  };
  if (q.supportRef !== undefined) where.push(`support_ref = ${param(q.supportRef)}`);
  if (q.connectionId !== undefined) where.push(`connection_id = ${param(q.connectionId)}`);
  if (q.outcome === 'failure') where.push(`outcome <> 'success'`);
  else if (q.outcome !== undefined) where.push(`outcome = ${param(q.outcome)}`);
  if (q.cursor !== undefined) {
    const c = decodeCursor(q.cursor);
    where.push(`(created_at, id) < (${param(c.at)}, ${param(c.id)})`);
  }
  const sql = `SELECT ${COLUMNS} FROM login_traces ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
               ORDER BY created_at DESC, id DESC LIMIT ${param(q.limit + 1)}`;
  // idor check: RLS scopes the read to the tenant of the transaction.
  const rows = await db.withTenant(tenantId, (em) => em.query<TraceRow[]>(sql, params));
  const page = rows.slice(0, q.limit);
  const last = page[page.length - 1];
  return {
    data: page.map((r) => view(r, now)),
    next_cursor: rows.length > q.limit && last ? encodeCursor(last) : null,
  };
}

export async function findLoginTrace(
  db: Database,
  tenantId: string,
  traceId: string,
  now: Date = new Date(),
): Promise<LoginTraceView | null> {
  const rows = await db.withTenant(tenantId, (em) =>
    // idor check: RLS scopes the read to the tenant of the transaction.
    em.query<TraceRow[]>(`SELECT ${COLUMNS} FROM login_traces WHERE id = $1`, [traceId]),
  );
  return rows[0] ? view(rows[0], now) : null;
}

/**
 * The raw SAMLResponse kept for a failed login, opened (the seal binds tenant
 * and trace) and its viewing audited in the same transaction; null when none
 * was kept or it is past its 24 hours.
 */
export async function viewRawResponse(
  db: Database,
  masterKey: Buffer,
  tenantId: string,
  traceId: string,
  ctx: AuditContext,
  now: Date = new Date(),
): Promise<string | null> {
  return db.withTenant(tenantId, async (em) => {
    const rows = await em.query<{ raw_response_enc: string; support_ref: string }[]>(
      `SELECT raw_response_enc, support_ref FROM login_traces
        WHERE id = $1 AND raw_response_enc IS NOT NULL AND raw_response_expires_at > $2`,
      [traceId, now],
    );
    const row = rows[0];
    if (!row) return null;
    const xml = Buffer.from(open(masterKey, row.raw_response_enc, rawContext(tenantId, traceId)), 'base64');
    await recordAudit(em, tenantId, {
      ...ctx,
      action: 'login_trace.raw_response_viewed',
      target: { type: 'login_trace', id: traceId },
      after: { support_ref: row.support_ref },
    });
    return xml.toString('utf8');
  });
}
