import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Which indexes can a case-insensitive lookup use under row-level security
 * (issue 13)? Only those whose condition is LEAKPROOF: the planner must check
 * the tenant policy before any function that could leak a row in an error, so
 * `lower(user_name) = lower($1)` (lower() is not leakproof) was a filter over
 * every row of the tenant, never a probe of the (tenant_id, lower(user_name))
 * index. The lowered values are now stored columns, compared with plain
 * operators that are leakproof (=, <, >=, starts_with):
 *
 * - users.user_name_key, users.email_key, users.display_name_key and
 *   groups.display_name_key, `GENERATED ALWAYS AS (lower(…)) STORED`; the
 *   columns collate "C", so one btree answers equality, `sw` (starts_with's
 *   prefix range), the translator's `gt`/`ge`/`lt`/`le` (which compare by code
 *   point, COLLATE "C") and a sort by the attribute.
 * - The lower(…) indexes are replaced one for one by (tenant_id, …_key), with
 *   the same uniqueness: a live user's userName per tenant, a SCIM group's
 *   displayName per tenant (index names kept, so the writers' unique-violation
 *   mapping still names them).
 *
 * externalId is caseExact (RFC 7643 §4.1, §4.2): its plain index already
 * works. Lowered names (name.givenName, name.familyName) and attributes inside
 * the jsonb `attributes` have no index: a filter on them reads the tenant's
 * rows through an index on tenant_id (docs/architecture.md, lookup keys).
 *
 * The deliveries lists get (tenant_id, created_at DESC, id DESC) indexes, the
 * order they page in, so a page is an index range, not a sort of the outbox.
 */
export class RlsSafeLookupKeys1766100000000 implements MigrationInterface {
  name = 'RlsSafeLookupKeys1766100000000';

  async up(q: QueryRunner): Promise<void> {
    for (const statement of UP) await q.query(statement);
  }

  async down(q: QueryRunner): Promise<void> {
    for (const statement of DOWN) await q.query(statement);
  }
}

const UP: string[] = [
  `ALTER TABLE users
     ADD COLUMN user_name_key text COLLATE "C" NOT NULL GENERATED ALWAYS AS (lower(user_name)) STORED,
     ADD COLUMN email_key text COLLATE "C" GENERATED ALWAYS AS (lower(email)) STORED,
     ADD COLUMN display_name_key text COLLATE "C" GENERATED ALWAYS AS (lower(display_name)) STORED`,
  `ALTER TABLE groups
     ADD COLUMN display_name_key text COLLATE "C" NOT NULL GENERATED ALWAYS AS (lower(display_name)) STORED`,

  `DROP INDEX users_tenant_user_name_key, users_tenant_email_idx, users_tenant_display_name_idx,
     groups_tenant_display_name_idx, groups_tenant_scim_display_name_key`,
  `CREATE UNIQUE INDEX users_tenant_user_name_key ON users (tenant_id, user_name_key) WHERE status <> 'deleted'`,
  // The deleted users' names, for a sign-in's candidates (deleted ones included): with the unique
  // index above it covers every row, and the live-user creates on the hot path never write to it.
  `CREATE INDEX users_tenant_deleted_user_name_idx ON users (tenant_id, user_name_key) WHERE status = 'deleted'`,
  `CREATE INDEX users_tenant_email_idx ON users (tenant_id, email_key)`,
  `CREATE INDEX users_tenant_display_name_idx ON users (tenant_id, display_name_key)`,
  `CREATE INDEX groups_tenant_display_name_idx ON groups (tenant_id, display_name_key)`,
  `CREATE UNIQUE INDEX groups_tenant_scim_display_name_key ON groups (tenant_id, display_name_key)
     WHERE source = 'scim'`,

  // The deliveries lists (newest first, admin API): walked in index order up to the page's LIMIT
  // instead of sorting every row of the tenant's outbox.
  `CREATE INDEX webhook_outbox_tenant_created_idx ON webhook_outbox (tenant_id, created_at DESC, id DESC)`,
  `CREATE INDEX logout_outbox_tenant_created_idx ON logout_outbox (tenant_id, created_at DESC, id DESC)`,
];

const DOWN: string[] = [
  `DROP INDEX webhook_outbox_tenant_created_idx, logout_outbox_tenant_created_idx`,
  `DROP INDEX users_tenant_user_name_key, users_tenant_deleted_user_name_idx, users_tenant_email_idx, users_tenant_display_name_idx,
     groups_tenant_display_name_idx, groups_tenant_scim_display_name_key`,
  `ALTER TABLE users DROP COLUMN user_name_key, DROP COLUMN email_key, DROP COLUMN display_name_key`,
  `ALTER TABLE groups DROP COLUMN display_name_key`,
  `CREATE UNIQUE INDEX users_tenant_user_name_key ON users (tenant_id, lower(user_name)) WHERE status <> 'deleted'`,
  `CREATE INDEX users_tenant_email_idx ON users (tenant_id, lower(email))`,
  `CREATE INDEX users_tenant_display_name_idx ON users (tenant_id, lower(display_name))`,
  `CREATE INDEX groups_tenant_display_name_idx ON groups (tenant_id, lower(display_name))`,
  `CREATE UNIQUE INDEX groups_tenant_scim_display_name_key ON groups (tenant_id, lower(display_name))
     WHERE source = 'scim'`,
];
