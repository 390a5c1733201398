import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Tenant offboarding, the export (issue 12): where does a requested export of
 * everything Gatehouse holds for a tenant wait until it is produced and
 * downloaded, once?
 *
 * - tenant_exports: a tenant table (forced RLS, key leads with tenant_id). One
 *   row per requested export: pending → ready → downloaded (or expired, or
 *   failed). `archive` is the gzip'd JSON archive sealed with the master key
 *   (config/secret-box.ts, AES-256-GCM, the tenant and export id as associated
 *   data; text, as secret-box's sealed form is): it holds personal data. It is set to NULL once downloaded or
 *   expired. Foreign key to tenants with ON DELETE CASCADE: a purged tenant
 *   leaves no archive behind; a tenant marked deleted keeps its exports (the
 *   operator may still export during the retention period).
 * - tenant_export_due_tenants(limit): the export worker's pre-tenant lookup
 *   (DESIGN.md §2): tenants with a pending export, or a ready one past its
 *   expiry whose archive is still stored; tenant ids and nothing else.
 * - audit import mode, for the tenant import (src/offboarding/import.service.ts):
 *   the chain trigger sets an event's own columns (a v2 event's salt, version,
 *   digest) afresh, so a re-imported event would hash differently. With
 *   `gatehouse.audit_import` on for the transaction, a trigger firing before
 *   audit_events_chain (alphabetical order) keeps the row as given, and one
 *   firing after it puts back every column but the chain's links (tenant_id,
 *   seq, prev_hash) and recomputes the hash with audit_event_hash. The
 *   database still decides seq, prev_hash and hash, so the runtime role gains
 *   nothing it could not do by appending an event; the import then requires
 *   every hash to equal the archive's and audit_verify_chain to pass. The
 *   append-only guard is untouched.
 */
export class TenantExports1765900000000 implements MigrationInterface {
  name = 'TenantExports1765900000000';

  async up(q: QueryRunner): Promise<void> {
    for (const statement of UP) await q.query(statement);
  }

  async down(q: QueryRunner): Promise<void> {
    for (const statement of DOWN) await q.query(statement);
  }
}

const DUE = 'tenant_export_due_tenants(integer)';

const UP: string[] = [
  `CREATE FUNCTION audit_events_import_keep() RETURNS trigger LANGUAGE plpgsql AS $$
   BEGIN
     IF current_setting('gatehouse.audit_import', true) = 'on' THEN
       PERFORM set_config('gatehouse.audit_import_row', to_jsonb(NEW)::text, true);
     END IF;
     RETURN NEW;
   END $$`,
  `CREATE FUNCTION audit_events_import_restore() RETURNS trigger LANGUAGE plpgsql AS $$
   DECLARE
     original jsonb;
   BEGIN
     IF current_setting('gatehouse.audit_import', true) = 'on' THEN
       original := NULLIF(current_setting('gatehouse.audit_import_row', true), '')::jsonb;
       IF original IS NULL OR original->>'id' IS DISTINCT FROM NEW.id::text THEN
         RAISE EXCEPTION 'audit import: no kept row for this event' USING ERRCODE = 'data_exception';
       END IF;
       NEW := jsonb_populate_record(NEW, original - 'tenant_id' - 'seq' - 'prev_hash' - 'hash');
       NEW.hash := audit_event_hash(NEW);
       PERFORM set_config('gatehouse.audit_import_row', '', true);
     END IF;
     RETURN NEW;
   END $$`,
  `CREATE TRIGGER audit_events_a_import_keep BEFORE INSERT ON audit_events
     FOR EACH ROW EXECUTE FUNCTION audit_events_import_keep()`,
  `CREATE TRIGGER audit_events_chain_z_import_restore BEFORE INSERT ON audit_events
     FOR EACH ROW EXECUTE FUNCTION audit_events_import_restore()`,

  `CREATE TABLE tenant_exports (
     tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
     id uuid NOT NULL DEFAULT gen_random_uuid(),
     status text NOT NULL DEFAULT 'pending'
       CHECK (status IN ('pending', 'ready', 'downloaded', 'expired', 'failed')),
     requested_by text NOT NULL CHECK (length(requested_by) <= 200),
     created_at timestamptz NOT NULL DEFAULT now(),
     expires_at timestamptz NOT NULL,
     completed_at timestamptz,
     downloaded_at timestamptz,
     archive text,
     archive_size bigint,
     error text CHECK (length(error) <= 1000),
     PRIMARY KEY (tenant_id, id)
   )`,
  `CREATE INDEX tenant_exports_tenant_status_idx ON tenant_exports (tenant_id, status, created_at)`,
  `ALTER TABLE tenant_exports ENABLE ROW LEVEL SECURITY`,
  `ALTER TABLE tenant_exports FORCE ROW LEVEL SECURITY`,
  `CREATE POLICY tenant_isolation ON tenant_exports
     USING (tenant_id = app_current_tenant()) WITH CHECK (tenant_id = app_current_tenant())`,
  `GRANT SELECT, INSERT, UPDATE, DELETE ON tenant_exports TO gatehouse_app`,

  // The worker's lookup, as audit_checkpoint_due_tenants: the resolver role reads three columns.
  `GRANT SELECT (tenant_id, status, expires_at, archive_size) ON tenant_exports TO gatehouse_resolver`,
  `CREATE POLICY resolver_read ON tenant_exports FOR SELECT TO gatehouse_resolver USING (true)`,
  `CREATE FUNCTION ${DUE.replace('integer', 'p_limit integer')} RETURNS SETOF uuid
     LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
     SELECT DISTINCT e.tenant_id FROM public.tenant_exports e
      WHERE e.status = 'pending'
         OR (e.status = 'ready' AND e.expires_at < now() AND e.archive_size IS NOT NULL)
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
  `DROP TABLE IF EXISTS tenant_exports CASCADE`,
  `DROP TRIGGER IF EXISTS audit_events_chain_z_import_restore ON audit_events`,
  `DROP TRIGGER IF EXISTS audit_events_a_import_keep ON audit_events`,
  `DROP FUNCTION IF EXISTS audit_events_import_restore()`,
  `DROP FUNCTION IF EXISTS audit_events_import_keep()`,
];
