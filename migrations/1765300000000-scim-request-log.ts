import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The SCIM provisioning log for support (issue 10): what did the tenant's IdP
 * send, and what did Gatehouse answer?
 *
 * - scim_requests: a tenant table (forced RLS), one row per authenticated SCIM
 *   request: method, a path template (never the path or query as sent: ids
 *   and filters can carry emails), status, scimType, duration, the resource it
 *   named, the SCIM token and the request id. No bodies, no secrets.
 *   expires_at is fixed when the row is written (GATEHOUSE_SCIM_REQUEST_LOG_DAYS).
 * - cleanup_due_tenants(cutoff, outbox_cutoff, limit): same signature, owner
 *   (gatehouse_resolver) and grants as in 1764900000000; now also reports
 *   tenants holding scim_requests rows that expired before `cutoff`, so the
 *   existing sweep removes them like any other expiring row.
 */
export class ScimRequestLog1765300000000 implements MigrationInterface {
  name = 'ScimRequestLog1765300000000';

  async up(q: QueryRunner): Promise<void> {
    for (const statement of UP) await q.query(statement);
  }

  async down(q: QueryRunner): Promise<void> {
    for (const statement of DOWN) await q.query(statement);
  }
}

const CLEANUP_DUE = 'cleanup_due_tenants(timestamptz, timestamptz, integer)';

/** The function as 1764900000000 left it, with `extra` branches. */
const cleanupDue = (extra: string) => `CREATE OR REPLACE FUNCTION cleanup_due_tenants(
       p_cutoff timestamptz, p_outbox_cutoff timestamptz, p_limit integer)
     RETURNS SETOF uuid
     LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
     SELECT t.id FROM (
       SELECT tenant_id AS id FROM public.authorization_codes WHERE expires_at < p_cutoff
       UNION SELECT tenant_id FROM public.refresh_tokens WHERE expires_at < p_cutoff
       UNION SELECT tenant_id FROM public.saml_requests WHERE expires_at < p_cutoff
       UNION SELECT tenant_id FROM public.saml_assertion_ids WHERE expires_at < p_cutoff
       UNION SELECT tenant_id FROM public.oidc_login_states WHERE expires_at < p_cutoff
       UNION SELECT tenant_id FROM public.logout_outbox
              WHERE status <> 'pending' AND COALESCE(delivered_at, next_attempt_at) < p_outbox_cutoff
       UNION SELECT tenant_id FROM public.webhook_outbox
              WHERE status <> 'pending' AND COALESCE(delivered_at, next_attempt_at) < p_outbox_cutoff${extra}
     ) t
     LIMIT p_limit
   $$`;

const GRANTS = [
  `ALTER FUNCTION ${CLEANUP_DUE} OWNER TO gatehouse_resolver`,
  `REVOKE ALL ON FUNCTION ${CLEANUP_DUE} FROM PUBLIC`,
  `GRANT EXECUTE ON FUNCTION ${CLEANUP_DUE} TO gatehouse_app`,
];

const UP: string[] = [
  `CREATE TABLE scim_requests (
     tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
     id uuid NOT NULL DEFAULT gen_random_uuid(),
     created_at timestamptz NOT NULL DEFAULT now(),
     expires_at timestamptz NOT NULL,
     method text NOT NULL CHECK (length(method) <= 16),
     path text NOT NULL CHECK (length(path) <= 100),
     status integer NOT NULL CHECK (status BETWEEN 100 AND 599),
     scim_type text CHECK (length(scim_type) <= 40),
     duration_ms integer NOT NULL CHECK (duration_ms >= 0),
     resource_type text CHECK (resource_type IN ('User', 'Group')),
     resource_id uuid,
     scim_token_id uuid NOT NULL,
     request_id text NOT NULL CHECK (length(request_id) <= 128),
     PRIMARY KEY (tenant_id, id)
   )`,
  // The admin list: newest first, keyset on (created_at, id).
  `CREATE INDEX scim_requests_tenant_created_idx ON scim_requests (tenant_id, created_at DESC, id DESC)`,
  // The cleanup lookup and its batched deletes.
  `CREATE INDEX scim_requests_tenant_expires_idx ON scim_requests (tenant_id, expires_at)`,
  `ALTER TABLE scim_requests ENABLE ROW LEVEL SECURITY`,
  `ALTER TABLE scim_requests FORCE ROW LEVEL SECURITY`,
  `CREATE POLICY tenant_isolation ON scim_requests
     USING (tenant_id = app_current_tenant()) WITH CHECK (tenant_id = app_current_tenant())`,
  // An append-only log: rows are inserted and deleted, never changed. UPDATE on one column only
  // because the cleanup's batched DELETE locks with FOR UPDATE, which requires it.
  `GRANT SELECT, INSERT, DELETE ON scim_requests TO gatehouse_app`,
  `GRANT UPDATE (expires_at) ON scim_requests TO gatehouse_app`,

  // The resolver reads only the columns the cleanup lookup needs (as for the other expiring tables).
  `GRANT SELECT (tenant_id, expires_at) ON scim_requests TO gatehouse_resolver`,
  `CREATE POLICY resolver_read ON scim_requests FOR SELECT TO gatehouse_resolver USING (true)`,
  cleanupDue(`
       UNION SELECT tenant_id FROM public.scim_requests WHERE expires_at < p_cutoff`),
  ...GRANTS,
];

const DOWN: string[] = [cleanupDue(''), ...GRANTS, `DROP TABLE IF EXISTS scim_requests CASCADE`];
