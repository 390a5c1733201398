import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Tamper evidence that survives the owner (issue 12): what did a tenant's audit
 * chain look like at a moment, signed with a key the database does not hold?
 *
 * - audit_checkpoints: a tenant table (forced RLS, key leads with tenant_id),
 *   one row per signed head of a tenant's chain: seq, head_hash, the signing
 *   time, the compact JWS (EdDSA) over {tenant_id, seq, hash, time} and the
 *   key id. No foreign key to tenants, like audit_events: platform events
 *   chain under the nil UUID and a trail (with its checkpoints) outlives the
 *   tenant. Append-only for everyone but the owner, by the same guard as the
 *   events; the runtime role may only SELECT and INSERT.
 * - audit_event_hash_input(e): the exact text each event's SHA-256 covers,
 *   shown by the admin API so that an outside verifier (gatehouse audit
 *   verify --checkpoints) recomputes every hash without trusting this
 *   database's functions. audit_event_hash is restated on top of it with the
 *   same result, so the two can never drift apart.
 * - audit_checkpoint_due_tenants(limit): the checkpoint worker's pre-tenant
 *   lookup (DESIGN.md §2): tenants (and the platform trail) whose chain head
 *   is past their latest checkpoint; tenant ids and nothing else.
 */
export class AuditCheckpoints1765800000000 implements MigrationInterface {
  name = 'AuditCheckpoints1765800000000';

  async up(q: QueryRunner): Promise<void> {
    for (const statement of UP) await q.query(statement);
  }

  async down(q: QueryRunner): Promise<void> {
    for (const statement of DOWN) await q.query(statement);
  }
}

const DUE = 'audit_checkpoint_due_tenants(integer)';

const HASH_INPUT = `jsonb_build_array(
       e.prev_hash, e.tenant_id, e.seq, e.id,
       to_char(e.occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
       e.actor_type, e.actor_id, e.action, e.target_type, e.target_id,
       e.request_id, e.source_ip, e.before, e.after)::text`;

const UP: string[] = [
  `CREATE TABLE audit_checkpoints (
     tenant_id uuid NOT NULL,
     seq bigint NOT NULL CHECK (seq > 0),
     head_hash text NOT NULL CHECK (head_hash ~ '^[0-9a-f]{64}$'),
     created_at timestamptz NOT NULL,
     signature text NOT NULL CHECK (length(signature) <= 2048),
     key_id text NOT NULL CHECK (length(key_id) <= 128),
     PRIMARY KEY (tenant_id, seq)
   )`,
  `ALTER TABLE audit_checkpoints ENABLE ROW LEVEL SECURITY`,
  `ALTER TABLE audit_checkpoints FORCE ROW LEVEL SECURITY`,
  `CREATE POLICY tenant_isolation ON audit_checkpoints
     USING (tenant_id = app_current_tenant()) WITH CHECK (tenant_id = app_current_tenant())`,
  `GRANT SELECT, INSERT ON audit_checkpoints TO gatehouse_app`,
  // The same guard as audit_events (initial schema): the owner can switch it off,
  // and verification against a checkpoint kept elsewhere is what catches that.
  `CREATE TRIGGER audit_checkpoints_append_only BEFORE UPDATE OR DELETE ON audit_checkpoints
     FOR EACH ROW EXECUTE FUNCTION audit_events_refuse_change()`,
  `CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON audit_checkpoints
     FOR EACH STATEMENT EXECUTE FUNCTION audit_events_refuse_change()`,

  `CREATE FUNCTION audit_event_hash_input(e audit_events) RETURNS text LANGUAGE sql IMMUTABLE AS $$
     SELECT ${HASH_INPUT}
   $$`,
  `CREATE OR REPLACE FUNCTION audit_event_hash(e audit_events) RETURNS text LANGUAGE sql IMMUTABLE AS $$
     SELECT encode(sha256(convert_to(audit_event_hash_input(e), 'UTF8')), 'hex')
   $$`,

  // The worker's lookup: one index probe per tenant on (tenant_id, seq) of each table.
  `GRANT SELECT (tenant_id, seq) ON audit_events TO gatehouse_resolver`,
  `GRANT SELECT (tenant_id, seq) ON audit_checkpoints TO gatehouse_resolver`,
  `CREATE POLICY resolver_read ON audit_events FOR SELECT TO gatehouse_resolver USING (true)`,
  `CREATE POLICY resolver_read ON audit_checkpoints FOR SELECT TO gatehouse_resolver USING (true)`,
  `CREATE FUNCTION ${DUE.replace('integer', 'p_limit integer')} RETURNS SETOF uuid
     LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
     SELECT t.id
       FROM (SELECT id FROM public.tenants
             UNION ALL SELECT '00000000-0000-0000-0000-000000000000'::uuid) t
       JOIN LATERAL (SELECT seq FROM public.audit_events
                      WHERE tenant_id = t.id ORDER BY seq DESC LIMIT 1) e ON true
       LEFT JOIN LATERAL (SELECT seq FROM public.audit_checkpoints
                           WHERE tenant_id = t.id ORDER BY seq DESC LIMIT 1) c ON true
      WHERE c.seq IS NULL OR c.seq < e.seq
      LIMIT p_limit
   $$`,
  `GRANT gatehouse_resolver TO CURRENT_USER`,
  `GRANT CREATE ON SCHEMA public TO gatehouse_resolver`,
  `ALTER FUNCTION ${DUE} OWNER TO gatehouse_resolver`,
  `REVOKE CREATE ON SCHEMA public FROM gatehouse_resolver`,
  `REVOKE ALL ON FUNCTION ${DUE} FROM PUBLIC`,
  `GRANT EXECUTE ON FUNCTION ${DUE} TO gatehouse_app`,
];

const DOWN: string[] = [
  `DROP FUNCTION IF EXISTS ${DUE}`,
  `DROP POLICY IF EXISTS resolver_read ON audit_events`,
  `REVOKE SELECT (tenant_id, seq) ON audit_events FROM gatehouse_resolver`,
  `CREATE OR REPLACE FUNCTION audit_event_hash(e audit_events) RETURNS text LANGUAGE sql IMMUTABLE AS $$
     SELECT encode(sha256(convert_to(${HASH_INPUT}, 'UTF8')), 'hex')
   $$`,
  `DROP FUNCTION IF EXISTS audit_event_hash_input(audit_events)`,
  `DROP TABLE IF EXISTS audit_checkpoints CASCADE`,
];
