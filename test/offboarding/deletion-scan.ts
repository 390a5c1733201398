import pg from 'pg';
import type { TestDatabase } from '../support/database.js';

/**
 * Where in the database does a value still appear? Every column of a text,
 * json, jsonb or bytea type (arrays of text too) of every table in the
 * schema, found in the catalog so a table added later is scanned as well,
 * searched case-insensitively for each value as a substring. Read as the
 * owner under every tenant's context in turn (the tables FORCE row-level
 * security, even for their owner) plus the platform's and none, so every
 * row is seen whichever tenant it belongs to.
 */
export interface Sighting {
  table: string;
  value: string;
}

const SCANNED_TYPES = ['text', 'varchar', 'bpchar', 'json', 'jsonb', 'bytea', '_text', '_varchar'];

export async function scanDatabase(t: TestDatabase, values: readonly string[]): Promise<Sighting[]> {
  const client = new pg.Client({ connectionString: t.ownerUrl });
  await client.connect();
  try {
    const columns = (
      await client.query<{ table_name: string; column_name: string; udt_name: string }>(
        `SELECT c.table_name, c.column_name, c.udt_name
           FROM information_schema.columns c
           JOIN information_schema.tables tb
             ON tb.table_schema = c.table_schema AND tb.table_name = c.table_name
          WHERE c.table_schema = 'public' AND tb.table_type = 'BASE TABLE' AND c.udt_name = ANY ($1)
          ORDER BY c.table_name, c.ordinal_position`,
        [SCANNED_TYPES],
      )
    ).rows;
    const byTable = new Map<string, string[]>();
    for (const c of columns) {
      const expr =
        c.udt_name === 'bytea' ? `encode(x."${c.column_name}", 'escape')` : `x."${c.column_name}"::text`;
      byTable.set(c.table_name, [...(byTable.get(c.table_name) ?? []), expr]);
    }
    const tenants = (await client.query<{ id: string }>('SELECT id FROM tenants')).rows.map((r) => r.id);
    const contexts = ['', '00000000-0000-0000-0000-000000000000', ...tenants];
    const found = new Map<string, Sighting>();
    const lowered = values.map((v) => v.toLowerCase());
    for (const context of contexts) {
      await client.query('BEGIN');
      try {
        await client.query(`SELECT set_config('app.tenant_id', $1, true)`, [context]);
        for (const [table, exprs] of byTable) {
          const rows = (
            await client.query<{ v: string }>(
              `SELECT DISTINCT v FROM "${table}" x CROSS JOIN unnest($1::text[]) v
                WHERE strpos(lower(concat_ws(' ', ${exprs.join(', ')})), v) > 0`,
              [lowered],
            )
          ).rows;
          for (const { v } of rows) found.set(`${table} ${v}`, { table, value: v });
        }
      } finally {
        await client.query('COMMIT');
      }
    }
    return [...found.values()].sort((a, b) => `${a.table}${a.value}`.localeCompare(`${b.table}${b.value}`));
  } finally {
    await client.end();
  }
}
