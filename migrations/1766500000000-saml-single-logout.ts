import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * SAML Single Logout (issue 16; src/sso/saml/single-logout*.ts): what does an
 * IdP's LogoutRequest end, and where does our own LogoutRequest's answer go?
 *
 * - connections.saml_idp_slo_url / saml_idp_slo_binding: the IdP's
 *   SingleLogoutService (from its metadata, or `idp_slo_url` in the admin API).
 * - saml_sessions: a tenant table (forced RLS), one row per Gatehouse session
 *   a SAML login created: the NameID (value, Format, NameQualifier,
 *   SPNameQualifier) and SessionIndex the assertion carried, so a LogoutRequest
 *   can be sent back, and name_id_key (SHA-256 of connection and NameID) so an
 *   IdP's LogoutRequest finds its sessions by index, not by scanning. user_id
 *   so a person's erasure removes their rows; expires_at is the session's, so
 *   the cleanup sweep removes the row when the session has expired.
 * - saml_logout_requests: our LogoutRequests waiting for the IdP's
 *   LogoutResponse (InResponseTo), consumed once, with where the browser goes
 *   afterwards (a post_logout_redirect_uri already validated, or null).
 * - cleanup_due_tenants(cutoff, outbox_cutoff, limit): same signature, owner
 *   (gatehouse_resolver) and grants as in 1765300000000; now also reports
 *   tenants holding expired rows of both new tables.
 */
export class SamlSingleLogout1766500000000 implements MigrationInterface {
  name = 'SamlSingleLogout1766500000000';

  async up(q: QueryRunner): Promise<void> {
    for (const statement of UP) await q.query(statement);
  }

  async down(q: QueryRunner): Promise<void> {
    for (const statement of DOWN) await q.query(statement);
  }
}

const CLEANUP_DUE = 'cleanup_due_tenants(timestamptz, timestamptz, integer)';

/** The function as 1765300000000 left it, with `extra` branches. */
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
              WHERE status <> 'pending' AND COALESCE(delivered_at, next_attempt_at) < p_outbox_cutoff
       UNION SELECT tenant_id FROM public.scim_requests WHERE expires_at < p_cutoff${extra}
     ) t
     LIMIT p_limit
   $$`;

const GRANTS = [
  `ALTER FUNCTION ${CLEANUP_DUE} OWNER TO gatehouse_resolver`,
  `REVOKE ALL ON FUNCTION ${CLEANUP_DUE} FROM PUBLIC`,
  `GRANT EXECUTE ON FUNCTION ${CLEANUP_DUE} TO gatehouse_app`,
];

const tenantTable = (table: string): string[] => [
  `ALTER TABLE ${table} ENABLE ROW LEVEL SECURITY`,
  `ALTER TABLE ${table} FORCE ROW LEVEL SECURITY`,
  `CREATE POLICY tenant_isolation ON ${table}
     USING (tenant_id = app_current_tenant()) WITH CHECK (tenant_id = app_current_tenant())`,
  // The resolver reads only the columns the cleanup lookup needs (as for the other expiring tables).
  `GRANT SELECT (tenant_id, expires_at) ON ${table} TO gatehouse_resolver`,
  `CREATE POLICY resolver_read ON ${table} FOR SELECT TO gatehouse_resolver USING (true)`,
];

const UP: string[] = [
  `ALTER TABLE connections
     ADD COLUMN saml_idp_slo_url text CHECK (length(saml_idp_slo_url) <= 2048),
     ADD COLUMN saml_idp_slo_binding text CHECK (saml_idp_slo_binding IN (
       'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect', 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST'))`,

  `CREATE TABLE saml_sessions (
     tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
     session_id uuid NOT NULL,
     user_id uuid NOT NULL,
     connection_id uuid NOT NULL,
     name_id_key text NOT NULL CHECK (length(name_id_key) <= 64),
     name_id text NOT NULL CHECK (length(name_id) <= 1024),
     name_id_format text CHECK (length(name_id_format) <= 256),
     name_qualifier text CHECK (length(name_qualifier) <= 1024),
     sp_name_qualifier text CHECK (length(sp_name_qualifier) <= 1024),
     session_index text CHECK (length(session_index) <= 256),
     created_at timestamptz NOT NULL DEFAULT now(),
     expires_at timestamptz NOT NULL,
     PRIMARY KEY (tenant_id, session_id),
     FOREIGN KEY (tenant_id, session_id) REFERENCES sessions (tenant_id, id) ON DELETE CASCADE,
     FOREIGN KEY (tenant_id, connection_id) REFERENCES connections (tenant_id, id) ON DELETE CASCADE
   )`,
  // An IdP's LogoutRequest: its connection and NameID, by index (equality only: LEAKPROOF under RLS).
  `CREATE INDEX saml_sessions_tenant_name_id_idx ON saml_sessions (tenant_id, connection_id, name_id_key)`,
  `CREATE INDEX saml_sessions_tenant_user_idx ON saml_sessions (tenant_id, user_id)`,
  `CREATE INDEX saml_sessions_tenant_expires_idx ON saml_sessions (tenant_id, expires_at)`,
  ...tenantTable('saml_sessions'),
  // Rows are written at login and deleted (cleanup, erasure); UPDATE (expires_at) only for the
  // cleanup's batched DELETE, which locks with FOR UPDATE.
  `GRANT SELECT, INSERT, DELETE ON saml_sessions TO gatehouse_app`,
  `GRANT UPDATE (expires_at) ON saml_sessions TO gatehouse_app`,

  `CREATE TABLE saml_logout_requests (
     tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
     id text NOT NULL CHECK (length(id) <= 128),
     connection_id uuid NOT NULL,
     return_url text CHECK (length(return_url) <= 4096),
     created_at timestamptz NOT NULL DEFAULT now(),
     expires_at timestamptz NOT NULL,
     PRIMARY KEY (tenant_id, id),
     FOREIGN KEY (tenant_id, connection_id) REFERENCES connections (tenant_id, id) ON DELETE CASCADE
   )`,
  `CREATE INDEX saml_logout_requests_tenant_expires_idx ON saml_logout_requests (tenant_id, expires_at)`,
  ...tenantTable('saml_logout_requests'),
  `GRANT SELECT, INSERT, DELETE ON saml_logout_requests TO gatehouse_app`,
  `GRANT UPDATE (expires_at) ON saml_logout_requests TO gatehouse_app`,

  cleanupDue(`
       UNION SELECT tenant_id FROM public.saml_sessions WHERE expires_at < p_cutoff
       UNION SELECT tenant_id FROM public.saml_logout_requests WHERE expires_at < p_cutoff`),
  ...GRANTS,
];

const DOWN: string[] = [
  cleanupDue(''),
  ...GRANTS,
  `DROP TABLE IF EXISTS saml_logout_requests CASCADE`,
  `DROP TABLE IF EXISTS saml_sessions CASCADE`,
  `ALTER TABLE connections DROP COLUMN IF EXISTS saml_idp_slo_binding, DROP COLUMN IF EXISTS saml_idp_slo_url`,
];
