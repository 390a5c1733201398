import { gunzipSync, gzipSync } from 'node:zlib';
import type { JWK } from 'jose';
import { recordAudit, type AuditContext } from '../audit/audit.service.js';
import { sealTrail } from '../audit/audit-sealer.js';
import { open, seal } from '../config/secret-box.js';
import type { Database } from '../db/database.js';
import { DomainError, NotFoundError } from '../errors.js';
import { readArchive } from './export-archive.js';
import type { TenantExportStatus } from './tenant-export.entity.js';

/**
 * The life of a tenant export (issue 12, docs/admin-api.md "Exports and
 * imports"): requested (pending), produced by the worker (ready), downloaded
 * exactly once (downloaded, the archive dropped), or past its expiry
 * (expired, the archive dropped). Each request and download is audited in the
 * tenant's trail, in the transaction that makes it.
 */

export interface ExportView {
  id: string;
  tenant_id: string;
  status: TenantExportStatus;
  requested_by: string;
  created_at: string;
  expires_at: string;
  completed_at: string | null;
  downloaded_at: string | null;
  /** Bytes of the gzip'd archive, once produced. */
  size: number | null;
  error: string | null;
}

interface Row {
  tenant_id: string;
  id: string;
  status: TenantExportStatus;
  requested_by: string;
  created_at: Date;
  expires_at: Date;
  completed_at: Date | null;
  downloaded_at: Date | null;
  archive_size: string | null;
  error: string | null;
}

const COLUMNS =
  'tenant_id, id, status, requested_by, created_at, expires_at, completed_at, downloaded_at, archive_size, error';

function view(r: Row, now: Date): ExportView {
  // Past its expiry, a pending or ready export reads as expired even before the worker marks it.
  const status =
    (r.status === 'ready' || r.status === 'pending') && r.expires_at <= now ? 'expired' : r.status;
  return {
    id: r.id,
    tenant_id: r.tenant_id,
    status,
    requested_by: r.requested_by,
    created_at: r.created_at.toISOString(),
    expires_at: r.expires_at.toISOString(),
    completed_at: r.completed_at?.toISOString() ?? null,
    downloaded_at: r.downloaded_at?.toISOString() ?? null,
    size: r.archive_size === null ? null : Number(r.archive_size),
    error: r.error,
  };
}

/** The associated data an archive is sealed under: a sealed archive moved to another row fails to open. */
const sealContext = (tenantId: string, exportId: string) => `tenant_export:${tenantId}:${exportId}`;

/** `operator`, or `user:<id>` for a tenant admin. */
export function requesterOf(ctx: AuditContext): string {
  return ctx.actor.type === 'operator' ? 'operator' : `${ctx.actor.type}:${ctx.actor.id ?? ''}`;
}

/** A new pending export of the tenant, audited `tenant.export_requested`. */
export async function requestExport(
  db: Database,
  tenantId: string,
  input: { ttlSeconds: number; now?: Date },
  ctx: AuditContext,
): Promise<ExportView> {
  const now = input.now ?? new Date();
  return db.withTenant(tenantId, async (em) => {
    const [row] = await em.query<Row[]>(
      `INSERT INTO tenant_exports (tenant_id, status, requested_by, created_at, expires_at)
       VALUES ($1, 'pending', $2, $3, $4) RETURNING ${COLUMNS}`,
      [tenantId, requesterOf(ctx), now, new Date(now.getTime() + input.ttlSeconds * 1000)],
    );
    if (!row) throw new Error('insert returned no row');
    await recordAudit(em, tenantId, {
      ...ctx,
      action: 'tenant.export_requested',
      target: { type: 'tenant_export', id: row.id },
      after: { id: row.id, expires_at: row.expires_at },
    });
    return view(row, now);
  });
}

export async function getExport(db: Database, tenantId: string, exportId: string): Promise<ExportView> {
  return db.withTenant(tenantId, async (em) => {
    const [row] = await em.query<Row[]>(
      `SELECT ${COLUMNS} FROM tenant_exports WHERE tenant_id = $1 AND id = $2`,
      [tenantId, exportId],
    );
    if (!row) throw new NotFoundError('Export');
    return view(row, new Date());
  });
}

/**
 * The archive, once: the row is locked, marked downloaded and its archive
 * dropped in the transaction that audits `tenant.export_downloaded`; a second
 * download, or one past the expiry, is 410.
 */
export async function downloadExport(
  db: Database,
  masterKey: Buffer,
  tenantId: string,
  exportId: string,
  ctx: AuditContext,
  now = new Date(),
): Promise<{ gzip: Buffer; view: ExportView }> {
  return db.withTenant(tenantId, async (em) => {
    const [row] = await em.query<(Row & { archive: string | null })[]>(
      `SELECT ${COLUMNS}, archive FROM tenant_exports WHERE tenant_id = $1 AND id = $2 FOR UPDATE`,
      [tenantId, exportId],
    );
    if (!row) throw new NotFoundError('Export');
    if (row.status === 'downloaded')
      throw new DomainError(
        'export_already_downloaded',
        'This export was downloaded already: request a new one',
      );
    if (view(row, now).status === 'expired')
      throw new DomainError('export_expired', 'This export has expired: request a new one');
    if (row.status === 'failed') throw new DomainError('conflict', 'This export failed: request a new one');
    if (row.status !== 'ready' || row.archive === null)
      throw new DomainError('conflict', 'The export is not ready yet: poll its status');
    const gzip = Buffer.from(open(masterKey, row.archive, sealContext(tenantId, exportId)), 'base64');
    // TypeORM answers an UPDATE … RETURNING as [rows, affected].
    const [[updated]] = await em.query<[Row[], number]>(
      `UPDATE tenant_exports SET status = 'downloaded', downloaded_at = $3, archive = NULL
        WHERE tenant_id = $1 AND id = $2 RETURNING ${COLUMNS}`,
      [tenantId, exportId, now],
    );
    await recordAudit(em, tenantId, {
      ...ctx,
      action: 'tenant.export_downloaded',
      target: { type: 'tenant_export', id: exportId },
      after: { id: exportId, size: gzip.length },
    });
    return { gzip, view: view(updated ?? row, now) };
  });
}

/** The JSON of a gzip'd archive (for tests and the CLI's own checks). */
export const archiveJson = (gzip: Buffer): unknown => JSON.parse(gunzipSync(gzip).toString('utf8'));

export interface ProduceOptions {
  db: Database;
  masterKey: Buffer;
  baseUrl: string;
  checkpointKey: JWK;
  now?: () => Date;
}

/**
 * Produces the tenant's oldest pending export, if any. The row is claimed
 * with FOR UPDATE SKIP LOCKED and the archive read and stored in the same
 * transaction, so two nodes never produce the same export and a node that
 * dies mid-way leaves it pending for the next pass. Also drops the archives
 * of ready exports past their expiry. Returns whether an export was produced.
 */
export async function produceNextExport(options: ProduceOptions, tenantId: string): Promise<boolean> {
  const now = options.now?.() ?? new Date();
  let claimed: string | undefined;
  try {
    // The archive carries the chain's hashes: seal first, in a transaction of its own (issue 13).
    await sealTrail(options.db, tenantId);
    return await options.db.withTenant(tenantId, async (em) => {
      await em.query(
        `UPDATE tenant_exports SET status = 'expired', archive = NULL, archive_size = NULL
          WHERE tenant_id = $1 AND status IN ('pending', 'ready') AND expires_at <= $2`,
        [tenantId, now],
      );
      const [row] = await em.query<{ id: string }[]>(
        `SELECT id FROM tenant_exports WHERE tenant_id = $1 AND status = 'pending'
          ORDER BY created_at LIMIT 1 FOR UPDATE SKIP LOCKED`,
        [tenantId],
      );
      if (!row) return false;
      claimed = row.id;
      const archive = await readArchive(em, {
        tenantId,
        exportId: row.id,
        baseUrl: options.baseUrl,
        checkpointKey: options.checkpointKey,
        now,
      });
      const gzip = gzipSync(JSON.stringify(archive));
      const sealed = seal(options.masterKey, gzip.toString('base64'), sealContext(tenantId, row.id));
      await em.query(
        `UPDATE tenant_exports SET status = 'ready', archive = $3, archive_size = $4, completed_at = $5
          WHERE tenant_id = $1 AND id = $2`,
        [tenantId, row.id, sealed, gzip.length, now],
      );
      return true;
    });
  } catch (error) {
    // The export is marked failed (a retry would fail the same way); the cause goes to the log.
    if (claimed !== undefined) {
      const id = claimed;
      await options.db.withTenant(tenantId, (em) =>
        em.query(`UPDATE tenant_exports SET status = 'failed', error = $3 WHERE tenant_id = $1 AND id = $2`, [
          tenantId,
          id,
          'the archive could not be produced; see the server log',
        ]),
      );
    }
    throw error;
  }
}

/** Tenants with a pending export or an expired archive still stored (the tenant_export_due_tenants resolver). */
export async function tenantsWithDueExports(db: Database, limit: number): Promise<string[]> {
  const rows = await db.queryOutsideTenant<{ tenant_id: string }>(
    'SELECT tenant_export_due_tenants($1) AS tenant_id',
    [limit],
  );
  return rows.map((r) => r.tenant_id);
}
