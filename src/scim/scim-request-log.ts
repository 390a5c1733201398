import type { Request, RequestHandler, Response } from 'express';
import type { Config } from '../config/config.js';
import { isUuid, type Database } from '../db/database.js';
import { finalStatement } from '../db/pipelined-transaction.js';
import { BadRequestError } from '../errors.js';
import { requireLiveTenant } from '../tenants/tenant-guard.js';
import type { ScimLoggedResourceType } from './scim-request.entity.js';

/**
 * "What did our IdP send, and what did Gatehouse answer?" The provisioning log
 * a tenant's admin reads when Okta or Entra says "provisioning failed"
 * (issue 10): one scim_requests row per authenticated SCIM request, listed by
 * GET /admin/v1/tenants/{id}/scim-requests.
 *
 * What a row holds is chosen so that it can never carry a person or a secret:
 * the method, a path *template* (`/Users/{id}`: the path as sent may name a
 * person, `/Users/alice@acme.test`), never the query string (filters carry
 * emails), never a body, the status and RFC 7644 §3.12 `scimType` of the
 * answer, the duration, the resource id (a UUID), the SCIM token's id and the
 * request id.
 *
 * Written after the response is sent (on `finish`), outside the request's
 * transaction: a request that failed and rolled back still leaves its row.
 * Writes are queued and coalesced, one multi-row INSERT per tenant per flush,
 * so the request path gains no round trip and a burst costs a few statements.
 * A write that fails is logged at warn (codes and request ids only) and
 * dropped: the log must never fail a request or the node (docs/security.md §4).
 * Unauthenticated requests (401, and the 429 of the failed-auth limiter) are
 * not attributable to a tenant and are not logged.
 */

export interface ScimRequestLogDeps {
  db: Database;
  config: Pick<Config, 'scim'>;
}

/** A path relative to the tenant's SCIM base, reduced to what may be stored. */
export interface ScimPathTarget {
  /** `/Users`, `/Users/{id}`, `/Groups/.search`, `/Schemas/{id}`, `/{unknown}`, … */
  path: string;
  resourceType: ScimLoggedResourceType | null;
  /** The UUID the path names, lower case; null when it names none or something else. */
  resourceId: string | null;
}

/** The endpoints of RFC 7644 §3.2 (plus /Me), spelled as the RFC spells them. */
const ENDPOINTS = new Map(
  ['Users', 'Groups', 'Bulk', 'Me', 'ServiceProviderConfig', 'Schemas', 'ResourceTypes', '.search'].map(
    (e) => [e.toLowerCase(), e],
  ),
);
const RESOURCE_TYPES: Record<string, ScimLoggedResourceType> = { Users: 'User', Groups: 'Group' };

/**
 * The stored form of a SCIM path: known endpoint names are kept, every other
 * segment becomes `{id}` (or `{unknown}` where no endpoint is known), so no
 * client string reaches the row except through the UUID column. The query
 * string is never part of `path` (Express's req.path has none), and is
 * dropped here as well should one be passed.
 */
export function scimPathTemplate(rawPath: string): ScimPathTarget {
  // One leading and one trailing slash are not segments; an empty one in between is (`/Users//x`).
  const trimmed = (rawPath.split('?')[0] ?? '').replace(/^\//, '').replace(/\/$/, '');
  const segments = trimmed.split('/');
  const first = segments[0];
  if (first === undefined || trimmed === '') return { path: '/', resourceType: null, resourceId: null };
  const endpoint = ENDPOINTS.get(first.toLowerCase());
  if (!endpoint) return { path: '/{unknown}', resourceType: null, resourceId: null };
  const resourceType = RESOURCE_TYPES[endpoint] ?? null;
  const second = segments[1];
  if (second === undefined) return { path: `/${endpoint}`, resourceType, resourceId: null };
  const template = second === '.search' ? '.search' : '{id}';
  const rest = segments.length > 2 ? '/{…}' : '';
  const resourceId = resourceType && isUuid(second) ? second.toLowerCase() : null;
  return { path: `/${endpoint}/${template}${rest}`, resourceType, resourceId };
}

/** RFC 7644 §3.12 keywords are single camelCase words; anything else is not stored. */
const SCIM_TYPE = /^[A-Za-z]{1,40}$/;

interface LogRow {
  tenantId: string;
  createdAt: Date;
  expiresAt: Date;
  method: string;
  path: string;
  status: number;
  scimType: string | null;
  durationMs: number;
  resourceType: ScimLoggedResourceType | null;
  resourceId: string | null;
  scimTokenId: string;
  requestId: string;
  log: Request['log'] | undefined;
}

const COLUMNS = [
  'tenant_id',
  'created_at',
  'expires_at',
  'method',
  'path',
  'status',
  'scim_type',
  'duration_ms',
  'resource_type',
  'resource_id',
  'scim_token_id',
  'request_id',
] as const;
const ROWS_PER_INSERT = 500;
/** Past this many unwritten rows (the database is down or far behind), new rows are dropped. */
const MAX_QUEUED = 10_000;

/**
 * The queue between responses and the table. One flush at a time; rows that
 * arrive during a flush go in the next one, grouped by tenant (withTenant: one
 * tenant per transaction).
 */
export class ScimRequestLogWriter {
  private queue: LogRow[] = [];
  private flushing: Promise<void> | null = null;
  private dropped = 0;
  /** The logger of the latest request recorded: where a full queue is reported. */
  private lastLog: Request['log'] | undefined;

  constructor(private readonly db: Database) {}

  record(row: LogRow): void {
    this.lastLog = row.log;
    if (this.queue.length >= MAX_QUEUED) {
      this.dropped++;
      return;
    }
    this.queue.push(row);
    if (!this.flushing) this.flushing = this.drain();
  }

  /** Resolves once every row recorded so far was written or given up (tests, shutdown). */
  async flush(): Promise<void> {
    while (this.flushing) await this.flushing;
  }

  private async drain(): Promise<void> {
    // Let the responses of this tick finish first: one flush then carries them all.
    await new Promise((resolve) => setImmediate(resolve));
    try {
      while (this.queue.length > 0) {
        const batch = this.queue;
        this.queue = [];
        const byTenant = new Map<string, LogRow[]>();
        for (const row of batch) {
          const rows = byTenant.get(row.tenantId);
          if (rows) rows.push(row);
          else byTenant.set(row.tenantId, [row]);
        }
        for (const [tenantId, rows] of byTenant) await this.write(tenantId, rows);
      }
      if (this.dropped > 0) {
        const dropped = this.dropped;
        this.dropped = 0;
        this.lastLog?.warn({ dropped }, 'SCIM request log queue full; rows dropped');
      }
    } finally {
      this.flushing = null;
    }
  }

  private async write(tenantId: string, rows: LogRow[]): Promise<void> {
    for (let i = 0; i < rows.length; i += ROWS_PER_INSERT) {
      const chunk = rows.slice(i, i + ROWS_PER_INSERT);
      try {
        // BEGIN, the INSERT and COMMIT in one round trip (db/pipelined-transaction.ts).
        await this.db.withTenant(tenantId, (em) =>
          finalStatement(em, insertStatement(chunk.length), chunk.flatMap(values)),
        );
      } catch (error: unknown) {
        // Codes and request ids only: a database error's detail may quote the row.
        const code = (error as { code?: unknown }).code;
        chunk[0]?.log?.warn(
          {
            code: typeof code === 'string' ? code : undefined,
            request_ids: chunk.map((r) => r.requestId),
          },
          'SCIM request log write failed; rows dropped',
        );
      }
    }
  }
}

function insertStatement(rows: number): string {
  const tuples = Array.from(
    { length: rows },
    (_, r) => `(${COLUMNS.map((_c, c) => `$${r * COLUMNS.length + c + 1}`).join(', ')})`,
  );
  return `INSERT INTO scim_requests (${COLUMNS.join(', ')}) VALUES ${tuples.join(', ')}`;
}

const values = (r: LogRow): unknown[] => [
  r.tenantId,
  r.createdAt,
  r.expiresAt,
  r.method,
  r.path,
  r.status,
  r.scimType,
  r.durationMs,
  r.resourceType,
  r.resourceId,
  r.scimTokenId,
  r.requestId,
];

/** What the answer's JSON says that the row keeps: its scimType, and the id of a created resource. */
function noteBody(body: unknown, seen: { scimType: string | null; id: string | null }): void {
  if (typeof body !== 'object' || body === null) return;
  const { scimType, id } = body as { scimType?: unknown; id?: unknown };
  if (typeof scimType === 'string' && SCIM_TYPE.test(scimType)) seen.scimType = scimType;
  if (typeof id === 'string' && isUuid(id)) seen.id = id.toLowerCase();
}

const DAY_MS = 86_400_000;

/**
 * The middleware, mounted first on the SCIM router so the duration covers
 * authentication too. It only observes: it never throws, never awaits, and
 * does its work after the response is sent.
 */
export function scimRequestLog(deps: ScimRequestLogDeps): RequestHandler {
  const days = deps.config.scim.requestLogDays;
  if (days === 0) return (_req, _res, next) => next();
  const writer = new ScimRequestLogWriter(deps.db);
  return (req, res, next) => {
    try {
      observe(req, res, writer, days);
    } catch (error: unknown) {
      req.log?.warn({ err: error, request_id: req.requestId }, 'SCIM request log: not observed');
    }
    next();
  };
}

function observe(req: Request, res: Response, writer: ScimRequestLogWriter, days: number): void {
  const startedAt = new Date();
  const started = performance.now();
  // Captured now: later routers rewrite req.url while they run.
  const target = scimPathTemplate(req.path);
  const method = req.method.slice(0, 16);
  const seen = { scimType: null as string | null, id: null as string | null };
  const json = res.json;
  res.json = function (this: Response, body?: unknown) {
    try {
      noteBody(body, seen);
    } catch {
      // A getter that throws on a response body is not the log's business.
    }
    return json.call(this, body);
  } as typeof res.json;
  res.once('finish', () => {
    try {
      const principal = req.scim;
      if (!principal) return;
      const status = res.statusCode;
      writer.record({
        tenantId: principal.tenantId,
        createdAt: startedAt,
        expiresAt: new Date(startedAt.getTime() + days * DAY_MS),
        method,
        path: target.path,
        status,
        scimType: status >= 400 ? seen.scimType : null,
        durationMs: Math.max(0, Math.round(performance.now() - started)),
        resourceType: target.resourceType,
        // The path's id, else the id of what a POST created.
        resourceId: target.resourceId ?? (status === 201 && target.resourceType ? seen.id : null),
        scimTokenId: principal.tokenId,
        requestId: req.requestId.slice(0, 128),
        log: req.log,
      });
    } catch (error: unknown) {
      req.log?.warn({ err: error, request_id: req.requestId }, 'SCIM request log: not recorded');
    }
  });
}

// ─── Reading the log (the admin API) ────────────────────────────────────────

export interface ScimRequestView {
  id: string;
  created_at: string;
  method: string;
  path: string;
  status: number;
  scim_type: string | null;
  duration_ms: number;
  resource_type: ScimLoggedResourceType | null;
  resource_id: string | null;
  scim_token_id: string;
  request_id: string;
}

export interface ScimRequestQuery {
  limit: number;
  /** From a previous page's next_cursor. */
  cursor?: string;
  /** `4xx`, `5xx` (any class) or one status code. */
  status?: string;
}

interface Row {
  id: string;
  created_at: Date;
  method: string;
  path: string;
  status: number;
  scim_type: string | null;
  duration_ms: number;
  resource_type: ScimLoggedResourceType | null;
  resource_id: string | null;
  scim_token_id: string;
  request_id: string;
}

/** The cursor is the last row's (created_at, id), opaque to clients. */
function encodeCursor(row: Row): string {
  return Buffer.from(`${row.created_at.getTime()}.${row.id}`).toString('base64url');
}

function decodeCursor(cursor: string): { createdAt: Date; id: string } {
  const m = /^(\d{1,15})\.([0-9a-f-]{36})$/.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
  if (!m?.[1] || !m[2] || !isUuid(m[2])) throw new BadRequestError('cursor: not a cursor this API returned');
  return { createdAt: new Date(Number(m[1])), id: m[2] };
}

/** `4xx` → [400, 499]; `404` → [404, 404]. The caller has checked the shape. */
function statusRange(status: string): [number, number] {
  const n = Number(status[0]);
  return status.endsWith('xx') ? [n * 100, n * 100 + 99] : [Number(status), Number(status)];
}

/** A tenant's provisioning log, newest first; rows past their retention are not shown. */
export async function listScimRequests(
  db: Database,
  tenantId: string,
  q: ScimRequestQuery,
): Promise<{ data: ScimRequestView[]; next_cursor: string | null }> {
  const params: unknown[] = [];
  const where = ['expires_at > now()'];
  if (q.status !== undefined) {
    params.push(...statusRange(q.status));
    where.push(`status BETWEEN $${params.length - 1} AND $${params.length}`);
  }
  if (q.cursor !== undefined) {
    const after = decodeCursor(q.cursor);
    params.push(after.createdAt, after.id);
    where.push(`(created_at, id) < ($${params.length - 1}::timestamptz, $${params.length}::uuid)`);
  }
  params.push(q.limit + 1);
  const sql = `SELECT id, created_at, method, path, status, scim_type, duration_ms, resource_type,
                      resource_id, scim_token_id, request_id
                 FROM scim_requests WHERE ${where.join(' AND ')}
                ORDER BY created_at DESC, id DESC LIMIT $${params.length}`;
  return db.withTenant(tenantId, async (em) => {
    await requireLiveTenant(em, tenantId);
    const rows = await em.query<Row[]>(sql, params);
    const page = rows.slice(0, q.limit);
    const last = page[page.length - 1];
    return {
      data: page.map((r) => ({ ...r, created_at: r.created_at.toISOString() })),
      next_cursor: rows.length > q.limit && last ? encodeCursor(last) : null,
    };
  });
}
