import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The Admin Portal (issue 15): who may open it, and the browser sessions it
 * hands out.
 *
 * - portal_links: the operator's one-time login links. A platform table (the
 *   operator is not a tenant's), no RLS. Only the SHA-256 of the token is kept
 *   (256 random bits: a fast hash cannot be reversed or brute-forced, and the
 *   row is looked up by it); used_at is set once, atomically.
 * - setup_links: a tenant table (forced RLS, key leads with tenant_id): a link
 *   the operator sends a customer's IT admin, for one tenant and some intents.
 *   SHA-256 for the same reason; expires_at fixed at creation; revoked_at ends it.
 * - portal_sessions: server-side sessions (the cookie holds a random value,
 *   the row its SHA-256). Platform table: an operator session has no tenant,
 *   and a session is found before the tenant is known. The CSRF secret
 *   (synchronizer token) lives in the row.
 * - audit_events.actor_type also accepts 'setup_link': what an IT admin does
 *   through a setup link is audited as that link, not as the operator.
 */
export class AdminPortal1766200000000 implements MigrationInterface {
  name = 'AdminPortal1766200000000';

  async up(q: QueryRunner): Promise<void> {
    for (const statement of UP) await q.query(statement);
  }

  async down(q: QueryRunner): Promise<void> {
    for (const statement of DOWN) await q.query(statement);
  }
}

const INTENTS = `'sso', 'dsync', 'domain_verification', 'certificate_renewal', 'audit_log'`;

const UP: string[] = [
  `CREATE TABLE portal_links (
     id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
     token_hash text NOT NULL UNIQUE,
     created_at timestamptz NOT NULL DEFAULT now(),
     expires_at timestamptz NOT NULL,
     used_at timestamptz
   )`,
  `CREATE INDEX portal_links_expires_idx ON portal_links (expires_at)`,
  `GRANT SELECT, INSERT, UPDATE, DELETE ON portal_links TO gatehouse_app`,

  `CREATE TABLE setup_links (
     tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
     id uuid NOT NULL DEFAULT gen_random_uuid(),
     token_hash text NOT NULL,
     intents text[] NOT NULL CHECK (cardinality(intents) BETWEEN 1 AND 5 AND intents <@ ARRAY[${INTENTS}]),
     created_at timestamptz NOT NULL DEFAULT now(),
     expires_at timestamptz NOT NULL,
     revoked_at timestamptz,
     created_by text NOT NULL CHECK (length(created_by) <= 200),
     PRIMARY KEY (tenant_id, id),
     UNIQUE (tenant_id, token_hash)
   )`,
  `ALTER TABLE setup_links ENABLE ROW LEVEL SECURITY`,
  `ALTER TABLE setup_links FORCE ROW LEVEL SECURITY`,
  `CREATE POLICY tenant_isolation ON setup_links
     USING (tenant_id = app_current_tenant()) WITH CHECK (tenant_id = app_current_tenant())`,
  // Rows are never edited but for revocation, never deleted but with their tenant.
  `GRANT SELECT, INSERT ON setup_links TO gatehouse_app`,
  `GRANT UPDATE (revoked_at) ON setup_links TO gatehouse_app`,

  // tenant_scope, not tenant_id: a platform table (no RLS; the schema guards treat every tenant_id column as a
  // tenant table's key). It names the one tenant a setup-link session may reach; null for the operator. No foreign
  // key: a coordinator table may not point at a reference table (docs/scaling.md); each request re-checks the
  // session's setup link and tenant (portal-sessions.ts), and revocation deletes the link's sessions.
  `CREATE TABLE portal_sessions (
     id_hash text PRIMARY KEY,
     kind text NOT NULL CHECK (kind IN ('operator', 'setup_link')),
     tenant_scope uuid,
     setup_link_id uuid,
     intents text[] NOT NULL CHECK (intents <@ ARRAY[${INTENTS}]),
     created_at timestamptz NOT NULL DEFAULT now(),
     expires_at timestamptz NOT NULL,
     csrf_secret text NOT NULL,
     CHECK ((kind = 'operator') = (tenant_scope IS NULL)),
     CHECK ((kind = 'setup_link') = (setup_link_id IS NOT NULL))
   )`,
  `CREATE INDEX portal_sessions_link_idx ON portal_sessions (tenant_scope, setup_link_id)`,
  `CREATE INDEX portal_sessions_expires_idx ON portal_sessions (expires_at)`,
  `GRANT SELECT, INSERT, DELETE ON portal_sessions TO gatehouse_app`,

  `ALTER TABLE audit_events DROP CONSTRAINT audit_events_actor_type_check`,
  `ALTER TABLE audit_events ADD CONSTRAINT audit_events_actor_type_check
     CHECK (actor_type IN ('operator', 'user', 'scim', 'system', 'setup_link'))`,
];

const DOWN: string[] = [
  `DROP TABLE IF EXISTS portal_sessions`,
  `DROP TABLE IF EXISTS setup_links`,
  `DROP TABLE IF EXISTS portal_links`,
  // Events already written by setup links keep their actor: the old check is restored NOT VALID.
  `ALTER TABLE audit_events DROP CONSTRAINT audit_events_actor_type_check`,
  `ALTER TABLE audit_events ADD CONSTRAINT audit_events_actor_type_check
     CHECK (actor_type IN ('operator', 'user', 'scim', 'system')) NOT VALID`,
];
