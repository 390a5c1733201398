import type { EntityManager } from 'typeorm';
import type { JWK } from 'jose';
import type { User } from '../directory/user.entity.js';
import { CORE_GROUP, CORE_USER, ENTERPRISE_USER } from '../scim/scim-schema-paths.js';
import { etagOf } from '../scim/scim-context.js';
import { scimUserOf, type GroupRef } from '../scim/scim-user-mapping.js';

/**
 * What does a tenant export archive hold, and how is it read? One JSON
 * document (docs/admin-api.md, "Exports and imports"), format
 * `gatehouse-tenant-export/1`:
 *
 * - `tenant`, `domains`, `connections`: raw rows, every column but secrets;
 * - `users`, `groups`: SCIM 2.0 resources (RFC 7643 §4.1, §4.2), rendered by
 *   the SCIM surface's own mapping, for a reader or another SCIM service;
 * - `rows`: raw rows of users, identities, groups, group_members,
 *   role_mappings, scim_tokens (metadata: never the hash), audit_events (every
 *   column, so an import re-chains to the same hashes) and audit_checkpoints;
 * - `omitted`: which columns were left out and which connections need their
 *   secrets entered again after an import.
 *
 * Columns are read from the catalog (to_jsonb of the row), never listed here:
 * a column another folder adds (an audit salt, a content digest) is exported
 * without a change to this file. What is a secret is named by pattern.
 * Everything is read in ONE statement, so the archive is one snapshot: an
 * identity never points at a user the archive lacks.
 */

export const ARCHIVE_FORMAT = 'gatehouse-tenant-export/1';

/** Tenant tables carried as raw rows, in the order an import writes them (parents first). */
export const ARCHIVE_TABLES = [
  'domains',
  'connections',
  'users',
  'identities',
  'groups',
  'group_members',
  'role_mappings',
  'scim_tokens',
  'audit_events',
  'audit_checkpoints',
] as const;
export type ArchiveTable = (typeof ARCHIVE_TABLES)[number];

/** The tables the archive has at top level (the rest are under `rows`). */
export const TOP_LEVEL_TABLES: readonly ArchiveTable[] = ['domains', 'connections'];

/** The platform table holding the tenant's own row, keyed by `id` (every other table by `tenant_id`). */
export const TENANT_TABLE = 'tenants';

/** Column names that hold a secret or its hash: never exported (secrets are entered again after an import). */
export const SECRET_COLUMN = /secret|private|password|token_hash|_enc$/i;

export type Row = Record<string, unknown>;

export interface TenantArchive {
  format: typeof ARCHIVE_FORMAT;
  export_id: string;
  exported_at: string;
  tenant: Row;
  domains: Row[];
  connections: Row[];
  users: Row[];
  groups: Row[];
  rows: Record<Exclude<ArchiveTable, 'domains' | 'connections'>, Row[]>;
  omitted: {
    /** Per table, the columns left out (secrets and secret hashes). */
    columns: Record<string, string[]>;
    /** Connections whose secret (client secret, SP private keys) is not in the archive. */
    connections_needing_secrets: { id: string; name: string; missing: string[] }[];
  };
  audit: {
    /** The public key the source's checkpoints verify with (GET /admin/v1/audit-checkpoint-key). */
    checkpoint_key: JWK;
    head: { seq: number; hash: string } | null;
  };
}

interface CatalogColumn {
  table_name: string;
  column_name: string;
}

/** The columns of these tables as the database has them now (information_schema). */
export async function catalogColumns(
  em: EntityManager,
  tables: readonly string[],
): Promise<Map<string, string[]>> {
  const rows = await em.query<CatalogColumn[]>(
    `SELECT table_name, column_name FROM information_schema.columns
      WHERE table_schema = current_schema() AND table_name = ANY($1) ORDER BY table_name, ordinal_position`,
    [tables],
  );
  const out = new Map<string, string[]>();
  for (const r of rows) out.set(r.table_name, [...(out.get(r.table_name) ?? []), r.column_name]);
  return out;
}

/** Tables not exported that hold a connection's secret (SP or client private keys), with a connection_id. */
async function connectionSecretTables(em: EntityManager): Promise<string[]> {
  const rows = await em.query<{ table_name: string }[]>(
    `SELECT c.table_name FROM information_schema.columns c
      WHERE c.table_schema = current_schema() AND c.column_name = 'connection_id'
        AND EXISTS (SELECT 1 FROM information_schema.columns s
                     WHERE s.table_schema = c.table_schema AND s.table_name = c.table_name
                       AND s.column_name ~* $1)
        AND EXISTS (SELECT 1 FROM information_schema.columns t
                     WHERE t.table_schema = c.table_schema AND t.table_name = c.table_name
                       AND t.column_name = 'tenant_id')
      ORDER BY c.table_name`,
    [SECRET_COLUMN.source],
  );
  return rows.map((r) => r.table_name).filter((t) => !(ARCHIVE_TABLES as readonly string[]).includes(t));
}

const orderOf = (columns: string[]): string =>
  columns.includes('seq') ? 'ORDER BY t.seq' : columns.includes('id') ? 'ORDER BY t.id' : '';

/**
 * Reads the tenant's archive inside the caller's tenant transaction (the
 * worker's withTenant). The tenant row is read even when the tenant is
 * marked deleted: an export during the retention period is the point.
 */
export async function readArchive(
  em: EntityManager,
  input: { tenantId: string; exportId: string; baseUrl: string; checkpointKey: JWK; now: Date },
): Promise<TenantArchive> {
  const columns = await catalogColumns(em, [TENANT_TABLE, ...ARCHIVE_TABLES]);
  // One statement, one snapshot. Table names come from ARCHIVE_TABLES, never from input.
  const selects = [TENANT_TABLE, ...ARCHIVE_TABLES].map((table) => {
    const key = table === TENANT_TABLE ? 'id' : 'tenant_id';
    return `(SELECT COALESCE(jsonb_agg(to_jsonb(t) ${orderOf(columns.get(table) ?? [])}), '[]'::jsonb)
               FROM ${table} t WHERE t.${key} = $1) AS ${table}`;
  });
  const [read] = await em.query<Record<string, Row[]>[]>(`SELECT ${selects.join(',\n')}`, [input.tenantId]);
  if (!read) throw new Error('the archive query returned no row');
  const tenant = read[TENANT_TABLE]?.[0];
  if (!tenant) throw new Error('the tenant is gone');

  const omittedColumns: Record<string, string[]> = {};
  const missingSecrets = new Map<string, Set<string>>();
  const tables = {} as Record<ArchiveTable, Row[]>;
  for (const table of ARCHIVE_TABLES) {
    const secret = (columns.get(table) ?? []).filter((c) => SECRET_COLUMN.test(c));
    if (secret.length > 0) omittedColumns[table] = secret;
    tables[table] = (read[table] ?? []).map((row) => {
      const kept = { ...row };
      for (const c of secret) {
        if (table === 'connections' && row[c] !== null && row[c] !== undefined)
          missing(missingSecrets, String(row.id), c);
        delete kept[c];
      }
      return kept;
    });
  }
  for (const table of await connectionSecretTables(em)) {
    const holders = await em.query<{ connection_id: string }[]>(
      `SELECT DISTINCT connection_id FROM ${table} WHERE tenant_id = $1`,
      [input.tenantId],
    );
    for (const h of holders) missing(missingSecrets, h.connection_id, table);
  }

  // The head is the last sealed event (ordered by seq, unsealed ones last: issue 13).
  const last = tables.audit_events.filter((e) => e.seq !== null && e.seq !== undefined).at(-1);
  return {
    format: ARCHIVE_FORMAT,
    export_id: input.exportId,
    exported_at: input.now.toISOString(),
    tenant,
    domains: tables.domains,
    connections: tables.connections,
    users: scimUsers(tables, input.baseUrl, input.tenantId),
    groups: scimGroups(tables, input.baseUrl, input.tenantId),
    rows: {
      users: tables.users,
      identities: tables.identities,
      groups: tables.groups,
      group_members: tables.group_members,
      role_mappings: tables.role_mappings,
      scim_tokens: tables.scim_tokens,
      audit_events: tables.audit_events,
      audit_checkpoints: tables.audit_checkpoints,
    },
    omitted: {
      columns: omittedColumns,
      connections_needing_secrets: tables.connections
        .filter((c) => missingSecrets.has(String(c.id)))
        .map((c) => ({
          id: String(c.id),
          name: String(c.name),
          missing: [...(missingSecrets.get(String(c.id)) ?? [])],
        })),
    },
    audit: {
      checkpoint_key: input.checkpointKey,
      head: last ? { seq: Number(last.seq), hash: String(last.hash) } : null,
    },
  };
}

function missing(map: Map<string, Set<string>>, connectionId: string, what: string): void {
  const set = map.get(connectionId) ?? new Set<string>();
  set.add(what);
  map.set(connectionId, set);
}

const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);
/** Code-unit order: PostgreSQL's for uuids; for group names the database's collation may differ on mixed case. */
const compare = (x: string, y: string): number => (x < y ? -1 : x > y ? 1 : 0);
const date = (v: unknown): Date => new Date(String(v));
const scimBase = (baseUrl: string, tenantId: string) => `${baseUrl}/scim/v2/${tenantId}`;

/** Groups SCIM shows (source scim), by member, as the SCIM surface lists them on a user. */
function scimGroupRefs(tables: Record<ArchiveTable, Row[]>): Map<string, GroupRef[]> {
  const groups = new Map(
    tables.groups.filter((g) => g.source === 'scim').map((g) => [String(g.id), String(g.display_name)]),
  );
  const refs = new Map<string, GroupRef[]>();
  // In the SCIM surface's order (groupsOfUsers): by display name, then id.
  const byName = (x: Row, y: Row) =>
    compare(groups.get(String(x.group_id)) ?? '', groups.get(String(y.group_id)) ?? '') ||
    compare(String(x.group_id), String(y.group_id));
  for (const m of [...tables.group_members].sort(byName)) {
    const name = groups.get(String(m.group_id));
    if (name === undefined) continue;
    refs.set(String(m.user_id), [
      ...(refs.get(String(m.user_id)) ?? []),
      { id: String(m.group_id), displayName: name },
    ]);
  }
  return refs;
}

/** Users as SCIM resources, through the SCIM surface's mapping (src/scim/scim-user-mapping.ts). */
function scimUsers(tables: Record<ArchiveTable, Row[]>, baseUrl: string, tenantId: string): Row[] {
  const refs = scimGroupRefs(tables);
  return tables.users.map((r) => {
    const user = {
      tenantId,
      id: String(r.id),
      userName: String(r.user_name),
      email: str(r.email),
      emailVerified: r.email_verified === true,
      givenName: str(r.given_name),
      familyName: str(r.family_name),
      displayName: str(r.display_name),
      externalId: str(r.external_id),
      status: r.status,
      attributes: (r.attributes ?? {}) as Record<string, unknown>,
      version: Number(r.version),
      createdAt: date(r.created_at),
      updatedAt: date(r.updated_at),
    } as User;
    const base = scimBase(baseUrl, tenantId);
    const data = scimUserOf(user, refs.get(user.id) ?? [], base);
    const meta = { ...(data.meta as Record<string, unknown>), location: `${base}/Users/${user.id}` };
    // RFC 7643 §3: schemas names the core schema and every extension the resource carries.
    return { schemas: [CORE_USER, ...(data[ENTERPRISE_USER] ? [ENTERPRISE_USER] : [])], ...data, meta };
  });
}

/** Groups as SCIM resources (RFC 7643 §4.2), as the SCIM surface renders them (scim-groups.resource.ts). */
function scimGroups(tables: Record<ArchiveTable, Row[]>, baseUrl: string, tenantId: string): Row[] {
  const users = new Map(tables.users.map((u) => [String(u.id), u]));
  const base = scimBase(baseUrl, tenantId);
  return tables.groups
    .filter((g) => g.source === 'scim')
    .map((g) => ({
      schemas: [CORE_GROUP],
      id: String(g.id),
      externalId: str(g.external_id) ?? undefined,
      displayName: String(g.display_name),
      // As the SCIM surface lists them (groupMembers): people not deleted, by user id.
      members: tables.group_members
        .filter((m) => m.group_id === g.id && users.get(String(m.user_id))?.status !== 'deleted')
        .sort((x, y) => compare(String(x.user_id), String(y.user_id)))
        .map((m) => {
          const u = users.get(String(m.user_id));
          return {
            value: String(m.user_id),
            display: str(u?.display_name) ?? str(u?.user_name) ?? undefined,
            $ref: `${base}/Users/${String(m.user_id)}`,
            type: 'User',
          };
        }),
      meta: {
        resourceType: 'Group',
        created: date(g.created_at),
        lastModified: date(g.updated_at),
        version: etagOf(Number(g.version)),
        location: `${base}/Groups/${String(g.id)}`,
      },
    }));
}
