import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * SCIM provisioning and the revocation fan-out (issue 5).
 *
 * - logout_outbox: a tenant table (forced RLS) written in the same transaction
 *   that revokes a session, one row per (session, app with a back-channel
 *   logout URI). The delivery worker sends the OIDC Back-Channel Logout token
 *   and keeps the row until it is delivered or given up, so a restart loses
 *   nothing.
 * - logout_outbox_due_tenants(): the worker's pre-tenant lookup (DESIGN.md §2):
 *   which tenants have a delivery due, and nothing else; the rows themselves are
 *   then read inside withTenant.
 * - Indexes for SCIM lookups: users by display name; SCIM groups are unique by
 *   display name within a tenant (Entra ID matches groups on it).
 */
export class ScimDeprovisioning1764400000000 implements MigrationInterface {
  name = 'ScimDeprovisioning1764400000000';

  async up(q: QueryRunner): Promise<void> {
    for (const statement of UP) await q.query(statement);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP FUNCTION IF EXISTS ${DUE_TENANTS}`);
    await q.query(`DROP TABLE IF EXISTS logout_outbox CASCADE`);
    await q.query(`DROP INDEX IF EXISTS users_tenant_display_name_idx, groups_tenant_scim_display_name_key`);
  }
}

const DUE_TENANTS = 'logout_outbox_due_tenants(integer)';

const UP: string[] = [
  `CREATE TABLE logout_outbox (
     tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
     id uuid NOT NULL DEFAULT gen_random_uuid(),
     session_id uuid NOT NULL,
     user_id uuid NOT NULL,
     app_id uuid NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
     status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
     attempts integer NOT NULL DEFAULT 0,
     next_attempt_at timestamptz NOT NULL DEFAULT now(),
     last_error text,
     created_at timestamptz NOT NULL DEFAULT now(),
     delivered_at timestamptz,
     PRIMARY KEY (tenant_id, id),
     CONSTRAINT logout_outbox_session_app_key UNIQUE (tenant_id, session_id, app_id)
   )`,
  // Only pending rows are indexed: the worker's claim and the due-tenants lookup.
  `CREATE INDEX logout_outbox_due_idx ON logout_outbox (tenant_id, next_attempt_at) WHERE status = 'pending'`,
  `ALTER TABLE logout_outbox ENABLE ROW LEVEL SECURITY`,
  `ALTER TABLE logout_outbox FORCE ROW LEVEL SECURITY`,
  `CREATE POLICY tenant_isolation ON logout_outbox
     USING (tenant_id = app_current_tenant()) WITH CHECK (tenant_id = app_current_tenant())`,
  `GRANT SELECT, INSERT, UPDATE, DELETE ON logout_outbox TO gatehouse_app`,

  `GRANT SELECT (tenant_id, status, next_attempt_at) ON logout_outbox TO gatehouse_resolver`,
  `CREATE POLICY resolver_read ON logout_outbox FOR SELECT TO gatehouse_resolver USING (true)`,
  `CREATE FUNCTION logout_outbox_due_tenants(p_limit integer) RETURNS SETOF uuid
     LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
     SELECT DISTINCT o.tenant_id FROM public.logout_outbox o
      WHERE o.status = 'pending' AND o.next_attempt_at <= now()
      LIMIT p_limit
   $$`,
  // As in the initial migration: CREATE on the schema only for the hand-over.
  `GRANT CREATE ON SCHEMA public TO gatehouse_resolver`,
  `ALTER FUNCTION ${DUE_TENANTS} OWNER TO gatehouse_resolver`,
  `REVOKE ALL ON FUNCTION ${DUE_TENANTS} FROM PUBLIC`,
  `GRANT EXECUTE ON FUNCTION ${DUE_TENANTS} TO gatehouse_app`,
  `REVOKE CREATE ON SCHEMA public FROM gatehouse_resolver`,

  `CREATE INDEX users_tenant_display_name_idx ON users (tenant_id, lower(display_name))`,
  `CREATE UNIQUE INDEX groups_tenant_scim_display_name_key ON groups (tenant_id, lower(display_name))
     WHERE source = 'scim'`,
];
