import 'reflect-metadata';
import { createDataSource, MIGRATIONS_TABLE } from '../../src/db/data-source.js';
import { ENTITIES } from '../../src/entities.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';

/**
 * Entities and migrations must agree (CONVENTIONS: Database). The schema is
 * written by hand in migrations/ (RLS, composite foreign keys, partial indexes
 * are beyond what TypeORM generates), so this compares the mapped columns with
 * the migrated catalog, both ways.
 */
/** Tables no entity maps, on purpose: only the owner's bootstrap, or a trigger and the resolvers, use them. */
const UNMAPPED_TABLES = ['gatehouse_installation', 'domain_claims'];

let t: TestDatabase;
beforeAll(async () => {
  t = await createTestDatabase();
});
afterAll(() => t.close());

const PG_TYPE: Record<string, string> = {
  uuid: 'uuid',
  text: 'text',
  boolean: 'boolean',
  integer: 'integer',
  bigint: 'bigint',
  smallint: 'smallint',
  bytea: 'bytea',
  jsonb: 'jsonb',
  timestamptz: 'timestamp with time zone',
};

interface CatalogColumn {
  table: string;
  column: string;
  type: string;
  udt: string;
  nullable: boolean;
}

it('maps exactly the columns the migrations create, with their types, nullability and keys', async () => {
  const ds = createDataSource({ url: t.ownerUrl, entities: ENTITIES, poolSize: 1 });
  await ds.initialize();
  try {
    const catalog = await t.asOwner<CatalogColumn>(
      `SELECT table_name AS table, column_name AS column, data_type AS type, udt_name AS udt,
              is_nullable = 'YES' AS nullable
         FROM information_schema.columns
        WHERE table_schema = 'public' AND table_name <> $1 AND NOT table_name = ANY($2)`,
      [MIGRATIONS_TABLE, UNMAPPED_TABLES],
    );
    const primaryKeys = await t.asOwner<{ table: string; column: string }>(`
      SELECT tc.table_name AS table, kcu.column_name AS column
        FROM information_schema.table_constraints tc
        JOIN information_schema.key_column_usage kcu USING (constraint_schema, constraint_name)
       WHERE tc.table_schema = 'public' AND tc.constraint_type = 'PRIMARY KEY'`);
    const key = (table: string, column: string) => `${table}.${column}`;
    const byKey = new Map(catalog.map((c) => [key(c.table, c.column), c]));
    const pk = new Set(primaryKeys.map((p) => key(p.table, p.column)));

    const problems: string[] = [];
    const mapped = new Set<string>();
    for (const meta of ds.entityMetadatas) {
      for (const col of meta.columns) {
        const k = key(meta.tableName, col.databaseName);
        mapped.add(k);
        const db = byKey.get(k);
        if (!db) {
          problems.push(`${k}: mapped by ${meta.name} but not in the schema`);
          continue;
        }
        const type = String(col.type);
        const expected = col.isArray ? 'ARRAY' : PG_TYPE[type];
        if (db.type !== expected || (col.isArray && db.udt !== `_${type}`)) {
          problems.push(`${k}: entity type ${type}${col.isArray ? '[]' : ''}, schema ${db.type}/${db.udt}`);
        }
        if (db.nullable !== col.isNullable)
          problems.push(`${k}: entity nullable ${col.isNullable}, schema ${db.nullable}`);
        if (pk.has(k) !== col.isPrimary)
          problems.push(`${k}: entity primary ${col.isPrimary}, schema ${pk.has(k)}`);
      }
    }
    for (const c of catalog) {
      if (!mapped.has(key(c.table, c.column)))
        problems.push(`${key(c.table, c.column)}: in the schema, no entity maps it`);
    }
    expect(problems).toEqual([]);
  } finally {
    await ds.destroy();
  }
});
