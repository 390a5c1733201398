import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Login traces (issue 15): what happened, step by step, in one sign-in, and
 * how does support find it from the reference on the error page?
 *
 * - login_traces: a tenant table (forced RLS, keys and indexes lead with
 *   tenant_id), one row per SAML or OIDC login that reached a connection,
 *   success or failure, test or real: the support reference (the request id the
 *   error page shows), the kind, the outcome (`success` or the reason code),
 *   the steps (`[{step, ok, reason?}]`), the profile received and mapped, the
 *   roles a success grants. Never a raw SAMLResponse, token or secret, except:
 * - raw_response_enc: a failed SAML login's SAMLResponse, only when the
 *   tenant turned keep_failed_login_responses on, sealed with the master key
 *   (config/secret-box.ts, bound to tenant and trace), kept until
 *   raw_response_expires_at (24 h at most), then cleared by the cleanup sweep.
 * - expires_at is fixed at write (GATEHOUSE_LOGIN_TRACE_RETENTION).
 * - tenants.keep_failed_login_responses: the tenant's opt-in (default off).
 * - cleanup_due_tenants(cutoff, outbox_cutoff, limit): same signature, owner
 *   (gatehouse_resolver) and grants as 1766500000000 left it; now also reports
 *   tenants holding expired traces or raw responses. A raw response is due at
 *   its expiry itself (now(), or the caller's cutoff when later), not after the
 *   cleanup grace: "at most 24 hours" is the promise.
 */
export class LoginTraces1766600000000 implements MigrationInterface {
  name = 'LoginTraces1766600000000';

  async up(q: QueryRunner): Promise<void> {
    for (const statement of UP) await q.query(statement);
  }

  async down(q: QueryRunner): Promise<void> {
    for (const statement of DOWN) await q.query(statement);
  }
}

const CLEANUP_DUE = 'cleanup_due_tenants(timestamptz, timestamptz, integer)';

/** The function as 1766500000000 left it, with `extra` branches. */
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
       UNION SELECT tenant_id FROM public.scim_requests WHERE expires_at < p_cutoff
       UNION SELECT tenant_id FROM public.saml_sessions WHERE expires_at < p_cutoff
       UNION SELECT tenant_id FROM public.saml_logout_requests WHERE expires_at < p_cutoff${extra}
     ) t
     LIMIT p_limit
   $$`;

const GRANTS = [
  `ALTER FUNCTION ${CLEANUP_DUE} OWNER TO gatehouse_resolver`,
  `REVOKE ALL ON FUNCTION ${CLEANUP_DUE} FROM PUBLIC`,
  `GRANT EXECUTE ON FUNCTION ${CLEANUP_DUE} TO gatehouse_app`,
];

const UP: string[] = [
  `ALTER TABLE tenants ADD COLUMN keep_failed_login_responses boolean NOT NULL DEFAULT false`,
  `CREATE TABLE login_traces (
     tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
     id uuid NOT NULL DEFAULT gen_random_uuid(),
     connection_id uuid NOT NULL,
     support_ref text NOT NULL CHECK (length(support_ref) BETWEEN 1 AND 128),
     protocol text NOT NULL CHECK (protocol IN ('saml', 'oidc')),
     kind text NOT NULL CHECK (kind IN ('sp_initiated', 'idp_initiated', 'test', 'unknown')),
     outcome text NOT NULL CHECK (outcome ~ '^[a-z0-9_]{1,64}$'),
     steps jsonb NOT NULL CHECK (jsonb_typeof(steps) = 'array'),
     profile jsonb CHECK (profile IS NULL OR jsonb_typeof(profile) = 'object'),
     roles text[] NOT NULL DEFAULT '{}',
     user_id uuid,
     created_at timestamptz NOT NULL DEFAULT now(),
     expires_at timestamptz NOT NULL,
     raw_response_enc text,
     raw_response_expires_at timestamptz,
     PRIMARY KEY (tenant_id, id)
   )`,
  // The lists (portal, admin API): newest first, keyset on (created_at, id).
  `CREATE INDEX login_traces_tenant_created_idx ON login_traces (tenant_id, created_at DESC, id DESC)`,
  // Support looks a login up by the reference on the error page.
  `CREATE INDEX login_traces_tenant_ref_idx ON login_traces (tenant_id, support_ref)`,
  // The cleanup lookup and its batched deletes; a person's erasure.
  `CREATE INDEX login_traces_tenant_expires_idx ON login_traces (tenant_id, expires_at)`,
  `CREATE INDEX login_traces_tenant_raw_idx ON login_traces (tenant_id, raw_response_expires_at)
     WHERE raw_response_expires_at IS NOT NULL`,
  `CREATE INDEX login_traces_tenant_user_idx ON login_traces (tenant_id, user_id) WHERE user_id IS NOT NULL`,
  `ALTER TABLE login_traces ENABLE ROW LEVEL SECURITY`,
  `ALTER TABLE login_traces FORCE ROW LEVEL SECURITY`,
  `CREATE POLICY tenant_isolation ON login_traces
     USING (tenant_id = app_current_tenant()) WITH CHECK (tenant_id = app_current_tenant())`,
  // Written once; the only change is clearing an expired raw response (and the cleanup's FOR UPDATE).
  `GRANT SELECT, INSERT, DELETE ON login_traces TO gatehouse_app`,
  `GRANT UPDATE (raw_response_enc, raw_response_expires_at, expires_at) ON login_traces TO gatehouse_app`,
  // The resolver reads only the columns the cleanup lookup needs (as for the other expiring tables).
  `GRANT SELECT (tenant_id, expires_at, raw_response_expires_at) ON login_traces TO gatehouse_resolver`,
  `CREATE POLICY resolver_read ON login_traces FOR SELECT TO gatehouse_resolver USING (true)`,
  cleanupDue(`
       UNION SELECT tenant_id FROM public.login_traces WHERE expires_at < p_cutoff
       UNION SELECT tenant_id FROM public.login_traces
              WHERE raw_response_expires_at < GREATEST(now(), p_cutoff)`),
  ...GRANTS,
];

const DOWN: string[] = [
  cleanupDue(''),
  ...GRANTS,
  `DROP TABLE IF EXISTS login_traces CASCADE`,
  `ALTER TABLE tenants DROP COLUMN IF EXISTS keep_failed_login_responses`,
];
