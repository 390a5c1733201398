import { gunzipSync } from 'node:zlib';
import type { EntityManager } from 'typeorm';
import { z } from 'zod';
import { recordAudit, type AuditContext } from '../audit/audit.service.js';
import { checkAgainstCheckpoints, checkpointsHold, type CheckpointView } from '../audit/checkpoint-verify.js';
import { isDatabaseUnavailable } from '../db/pg-errors.js';
import type { Database } from '../db/database.js';
import { jsonProblem } from '../directory/limits.js';
import { BadRequestError, ConflictError, DomainError } from '../errors.js';
import { issueScimToken } from '../scim/scim-token.js';
import {
  ARCHIVE_FORMAT,
  ARCHIVE_TABLES,
  TENANT_TABLE,
  type ArchiveTable,
  type Row,
} from './export-archive.js';

/**
 * Can this archive become a tenant here, and what does it take? The import
 * (POST /admin/v1/tenant-imports, `gatehouse tenants import FILE`) recreates
 * the tenant with the same id, slug, domains, connections, people, groups,
 * role mappings, audit trail and checkpoints, in ONE transaction:
 *
 * - refused with 409 when the tenant's id or slug exists, or any row of that
 *   tenant id does (an audit trail outlives its tenant);
 * - rows are written generically, every column the archive has and the
 *   target's catalog knows (generated columns skipped), through
 *   jsonb_populate_recordset so PostgreSQL's own input functions type them;
 * - audit events go in seq order with their original columns and the chain
 *   trigger recomputes seq, prev_hash and hash (the append-only guard stays on):
 *   every hash must equal the archive's, else `audit_chain_mismatch` and the
 *   transaction rolls back; the archive's checkpoints must verify with the
 *   archive's checkpoint key against the imported chain, likewise;
 * - secrets were never exported: connections missing one are set `inactive`
 *   (listed in the answer, to enter the secret again), SCIM tokens arrive
 *   revoked.
 *
 * A bad archive is 400 `{code, message}` and the database is unchanged.
 */

/** Largest archive accepted on the wire (gzip'd), and once decompressed. */
export const IMPORT_LIMITS = { compressedBytes: 64 * 1024 * 1024, jsonBytes: 256 * 1024 * 1024 } as const;

const rowList = z.array(z.record(z.string(), z.unknown()));
const archiveSchema = z.object({
  format: z.literal(ARCHIVE_FORMAT),
  export_id: z.string().max(100).optional(),
  tenant: z.object({ id: z.uuid(), slug: z.string().min(1).max(63) }).catchall(z.unknown()),
  domains: rowList,
  connections: rowList,
  rows: z.object({
    users: rowList,
    identities: rowList,
    groups: rowList,
    group_members: rowList,
    role_mappings: rowList,
    scim_tokens: rowList,
    audit_events: rowList,
    audit_checkpoints: rowList,
  }),
  omitted: z
    .object({
      connections_needing_secrets: z
        .array(z.object({ id: z.string(), missing: z.array(z.string()) }).catchall(z.unknown()))
        .default([]),
    })
    .catchall(z.unknown())
    .optional(),
  audit: z
    .object({ checkpoint_key: z.record(z.string(), z.unknown()).optional() })
    .catchall(z.unknown())
    .optional(),
});
export type ImportArchive = z.infer<typeof archiveSchema>;

/** The archive from a request body: gzip'd bytes (as downloaded) or JSON already parsed. */
export function parseArchive(body: unknown): ImportArchive {
  let value = body;
  if (Buffer.isBuffer(body)) {
    let text: string;
    try {
      const bytes =
        body[0] === 0x1f && body[1] === 0x8b
          ? gunzipSync(body, { maxOutputLength: IMPORT_LIMITS.jsonBytes })
          : body;
      text = bytes.toString('utf8');
    } catch (error) {
      if (error instanceof RangeError)
        throw new DomainError(
          'payload_too_large',
          `The archive is larger than ${IMPORT_LIMITS.jsonBytes} bytes once decompressed`,
        );
      throw new BadRequestError('The archive is not valid gzip');
    }
    try {
      value = JSON.parse(text);
    } catch {
      throw new BadRequestError('The archive is not valid JSON');
    }
  }
  // The admin API's input rules (docs/security.md §3, §5) on the archive too.
  const problem = jsonProblem(value);
  if (problem) throw new BadRequestError(`The archive is refused: ${problem}`);
  const parsed = archiveSchema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new BadRequestError(
      `Not a ${ARCHIVE_FORMAT} archive: ${issue ? `${issue.path.join('.') || 'body'}: ${issue.message}` : 'invalid'}`,
    );
  }
  return parsed.data;
}

export interface ImportResult {
  tenant_id: string;
  slug: string;
  counts: Record<string, number>;
  audit: { events: number; checkpoints: number; head_hash: string | null };
  /** Set inactive: enter the secret again (PATCH …/connections/{id}), then activate. */
  connections_needing_secrets: { id: string; missing: string[] }[];
  note: string;
}

const quote = (name: string) => `"${name.replaceAll('"', '""')}"`;

interface TableColumns {
  /** Every column of the table here. */
  all: Set<string>;
  /** The ones a row may set: generated columns are computed by the database (an archive's copy is dropped). */
  insertable: Set<string>;
}

async function tableColumns(em: EntityManager): Promise<Map<string, TableColumns>> {
  const rows = await em.query<{ table_name: string; column_name: string; is_generated: string }[]>(
    `SELECT table_name, column_name, is_generated FROM information_schema.columns
      WHERE table_schema = current_schema() AND table_name = ANY($1)`,
    [[TENANT_TABLE, ...ARCHIVE_TABLES]],
  );
  const out = new Map<string, TableColumns>();
  for (const r of rows) {
    const entry = out.get(r.table_name) ?? { all: new Set<string>(), insertable: new Set<string>() };
    entry.all.add(r.column_name);
    if (r.is_generated === 'NEVER') entry.insertable.add(r.column_name);
    out.set(r.table_name, entry);
  }
  return out;
}

/** The rows of one table, checked (known columns, one key set, this tenant's); the columns to insert. */
function checkedColumns(table: string, rows: Row[], known: TableColumns, tenantId: string): string[] {
  const first = rows[0];
  if (!first) return [];
  const keys = Object.keys(first).sort();
  const unknown = keys.filter((k) => !known.all.has(k));
  if (unknown.length > 0) throw new BadRequestError(`${table}: unknown column(s) ${unknown.join(', ')}`);
  const tenantColumn = table === TENANT_TABLE ? 'id' : 'tenant_id';
  for (const [i, row] of rows.entries()) {
    const same = Object.keys(row).sort();
    if (same.length !== keys.length || same.some((k, j) => k !== keys[j]))
      throw new BadRequestError(`${table}[${i}]: its columns differ from the table's first row`);
    // idor check: every row belongs to the tenant being imported
    if (row[tenantColumn] !== tenantId)
      throw new BadRequestError(`${table}[${i}]: belongs to another tenant`);
  }
  return keys.filter((k) => known.insertable.has(k));
}

async function insertRows(em: EntityManager, table: string, rows: Row[], columns: string[]): Promise<void> {
  if (rows.length === 0) return;
  const list = columns.map(quote).join(', ');
  // The audit chain is rebuilt in seq order: its trigger links each event to the previous one.
  const order = table === 'audit_events' ? 'ORDER BY r.seq' : '';
  await em.query(
    `INSERT INTO ${table} (${list}) SELECT ${columns.map((c) => `r.${quote(c)}`).join(', ')}
       FROM jsonb_populate_recordset(NULL::${table}, $1::jsonb) r ${order}`,
    [JSON.stringify(rows)],
  );
}

function rowsOf(archive: ImportArchive, table: ArchiveTable): Row[] {
  if (table === 'domains' || table === 'connections') return archive[table];
  return archive.rows[table];
}

/** PostgreSQL's refusal of an archive's content, as the admin API's 400/409. */
function translate(error: unknown): unknown {
  if (error instanceof DomainError || isDatabaseUnavailable(error)) return error;
  const e = error as { code?: unknown; constraint?: unknown; table?: unknown };
  const code = typeof e.code === 'string' ? e.code : '';
  const where = [e.table, e.constraint].filter((x) => typeof x === 'string').join(' ');
  if (code === '23505')
    return new ConflictError(`The archive conflicts with data here${where ? ` (${where})` : ''}`, {
      cause: error,
    });
  // 22xxx data exceptions, 23xxx integrity, 42501 (RLS), 42804 datatype mismatch, 54000 too large.
  if (/^(22|23)/.test(code) || code === '42501' || code === '42804' || code === '54000')
    return new BadRequestError(`The archive does not fit the schema${where ? ` (${where})` : ''}`, {
      cause: error,
    });
  return error;
}

/** Recreates the archive's tenant here; see the file header. */
export async function importTenant(
  db: Database,
  archive: ImportArchive,
  ctx: AuditContext,
): Promise<ImportResult> {
  const tenantId = archive.tenant.id;
  try {
    return await db.withTenant(tenantId, (em) => importInto(em, archive, ctx));
  } catch (error) {
    throw translate(error);
  }
}

async function importInto(
  em: EntityManager,
  archive: ImportArchive,
  ctx: AuditContext,
): Promise<ImportResult> {
  const tenantId = archive.tenant.id;
  const slug = archive.tenant.slug;
  const [taken] = await em.query<{ n: number }[]>(
    `SELECT count(*)::int AS n FROM ${TENANT_TABLE} WHERE id = $1 OR slug = $2`,
    [tenantId, slug],
  );
  if ((taken?.n ?? 0) > 0) throw new ConflictError('A tenant with this id or slug exists here');
  for (const table of ARCHIVE_TABLES) {
    const [left] = await em.query<{ n: number }[]>(
      `SELECT count(*)::int AS n FROM ${table} WHERE tenant_id = $1`,
      [tenantId],
    );
    if ((left?.n ?? 0) > 0)
      throw new ConflictError(
        `Rows of this tenant id remain here (${table}): import into a Gatehouse without them`,
      );
  }

  const catalog = await tableColumns(em);
  const needing = new Map((archive.omitted?.connections_needing_secrets ?? []).map((c) => [c.id, c.missing]));
  const prepared = new Map<string, Row[]>();
  prepared.set(TENANT_TABLE, [archive.tenant]);
  for (const table of ARCHIVE_TABLES) prepared.set(table, rowsOf(archive, table));
  // Secrets were not exported: such a connection cannot sign anyone in until they are entered again.
  prepared.set(
    'connections',
    (prepared.get('connections') ?? []).map((c) =>
      needing.has(String(c.id)) ? { ...c, status: 'inactive' } : c,
    ),
  );
  const tokens = prepared.get('scim_tokens') ?? [];
  if (tokens.length > 0) {
    // An argon2id hash of a secret nobody holds, and revoked: the metadata survives, no token works.
    const { hash } = await issueScimToken();
    const revokedAt = new Date().toISOString();
    prepared.set(
      'scim_tokens',
      tokens.map((t) => ({ ...t, token_hash: hash, revoked_at: t.revoked_at ?? revokedAt })),
    );
  }

  const counts: Record<string, number> = {};
  for (const table of [TENANT_TABLE, ...ARCHIVE_TABLES]) {
    const rows = prepared.get(table) ?? [];
    const known = catalog.get(table) ?? { all: new Set<string>(), insertable: new Set<string>() };
    const columns = checkedColumns(table, rows, known, tenantId);
    // Audit import mode (migrations/…-tenant-exports.ts): each event keeps its own columns, the
    // database still links and hashes it.
    if (table === 'audit_events') await em.query(`SELECT set_config('gatehouse.audit_import', 'on', true)`);
    await insertRows(em, table, rows, columns);
    counts[table] = rows.length;
    if (table === 'audit_events') {
      await em.query(`SELECT set_config('gatehouse.audit_import', 'off', true)`);
      await compareChain(em, tenantId, rows);
    }
  }
  await checkImportedCheckpoints(archive, tenantId);

  const events = archive.rows.audit_events;
  const head = events.length > 0 ? String(events[events.length - 1]?.hash) : null;
  const connectionsNeedingSecrets = [...needing].map(([id, missing]) => ({ id, missing }));
  await recordAudit(em, tenantId, {
    ...ctx,
    action: 'tenant.imported',
    target: { type: 'tenant', id: tenantId },
    after: {
      export_id: archive.export_id ?? null,
      counts,
      audit_head_hash: head,
      connections_inactivated: connectionsNeedingSecrets.map((c) => c.id),
    },
  });
  return {
    tenant_id: tenantId,
    slug,
    counts,
    audit: { events: events.length, checkpoints: archive.rows.audit_checkpoints.length, head_hash: head },
    connections_needing_secrets: connectionsNeedingSecrets,
    note:
      'Secrets were not exported: the connections listed are inactive until their secret is entered again ' +
      '(client secret, SP keys); SCIM tokens were imported revoked: issue new ones.',
  };
}

/**
 * Every re-chained hash equals the archive's, seq by seq (the trigger computed them here), and the
 * chain verifies here (audit_verify_chain: each event's content against its hash and digest).
 */
async function compareChain(em: EntityManager, tenantId: string, archived: Row[]): Promise<void> {
  const [verified] = await em.query<{ first_broken_seq: string | null }[]>(
    'SELECT first_broken_seq FROM audit_verify_chain($1)',
    [tenantId],
  );
  if (verified?.first_broken_seq != null)
    throw new DomainError(
      'audit_chain_mismatch',
      `The imported audit chain does not verify at seq ${verified.first_broken_seq}: the archive's trail was altered`,
    );
  const rows = await em.query<{ seq: string; hash: string }[]>(
    `SELECT seq, hash FROM ${'audit_events'} WHERE tenant_id = $1 AND seq IS NOT NULL ORDER BY seq`,
    [tenantId],
  );
  // Events the source had not sealed yet (issue 13) arrive unsealed, for this database's sealer.
  const sorted = archived
    .filter((e) => e.seq !== null && e.seq !== undefined)
    .sort((a, b) => Number(a.seq) - Number(b.seq));
  for (const [i, row] of rows.entries()) {
    const want = sorted[i];
    if (!want || Number(want.seq) !== Number(row.seq) || want.hash !== row.hash)
      throw new DomainError(
        'audit_chain_mismatch',
        `The imported audit chain differs from the archive at seq ${row.seq}: the archive's trail was altered`,
      );
  }
}

/** The archive's checkpoints, with the archive's key, against the archive's (now imported) chain. */
async function checkImportedCheckpoints(archive: ImportArchive, tenantId: string): Promise<void> {
  const key = archive.audit?.checkpoint_key;
  const checkpoints = archive.rows.audit_checkpoints;
  if (checkpoints.length === 0) return;
  if (!key)
    throw new DomainError('audit_chain_mismatch', 'The archive has checkpoints but no checkpoint key');
  const hashes = new Map(archive.rows.audit_events.map((e) => [Number(e.seq), String(e.hash)]));
  const views: CheckpointView[] = checkpoints.map((c) => ({
    tenant_id: String(c.tenant_id),
    seq: Number(c.seq),
    hash: String(c.head_hash),
    created_at: new Date(String(c.created_at)).toISOString(),
    signature: String(c.signature),
    key_id: String(c.key_id),
  }));
  let findings;
  try {
    findings = await checkAgainstCheckpoints({
      tenantId,
      publicJwk: key,
      checkpoints: views,
      hashAt: (seq) => hashes.get(seq),
      lastSeq: [...hashes.keys()].reduce((max, seq) => Math.max(max, seq), 0),
    });
  } catch (error) {
    throw new DomainError(
      'audit_chain_mismatch',
      'The archive’s checkpoint key is not an Ed25519 public key',
      {
        cause: error,
      },
    );
  }
  if (!checkpointsHold(findings)) {
    const seq =
      findings.forged_checkpoint_seq ?? findings.checkpoint_mismatch_seq ?? findings.truncated_after_seq;
    throw new DomainError(
      'audit_chain_mismatch',
      `The archive's audit checkpoints do not hold for its trail (seq ${seq ?? '?'})`,
    );
  }
}
