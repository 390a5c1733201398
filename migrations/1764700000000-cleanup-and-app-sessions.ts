import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Housekeeping for what sign-in leaves behind, and ending an app's sessions
 * when the app is deleted (issue 4 follow-ups).
 *
 * - cleanup_due_tenants(cutoff, outbox_cutoff, limit): the cleanup job's
 *   pre-tenant lookup (DESIGN.md §2). Which tenants hold authorization codes,
 *   refresh tokens, pending SAML requests, OIDC login states or assertion-id
 *   replay entries that expired before `cutoff`, or logout outbox rows
 *   delivered / given up before `outbox_cutoff` — tenant ids and nothing else;
 *   the rows are then deleted inside withTenant.
 * - app_session_tenants(app): the tenants holding live sessions of an app, so
 *   that deleting the app revokes them tenant by tenant.
 * - (tenant_id, expires_at) indexes for the tables that lacked one, so both
 *   the lookup and the batched deletes are index probes per tenant.
 */
export class CleanupAndAppSessions1764700000000 implements MigrationInterface {
  name = 'CleanupAndAppSessions1764700000000';

  async up(q: QueryRunner): Promise<void> {
    for (const statement of UP) await q.query(statement);
  }

  async down(q: QueryRunner): Promise<void> {
    for (const fn of FUNCTIONS) await q.query(`DROP FUNCTION IF EXISTS ${fn}`);
    await q.query(
      `DROP INDEX IF EXISTS authorization_codes_tenant_expires_idx, refresh_tokens_tenant_expires_idx,
         logout_outbox_tenant_finished_idx`,
    );
    for (const table of EXPIRING_TABLES) await q.query(`DROP POLICY IF EXISTS resolver_read ON ${table}`);
    await q.query(`REVOKE SELECT ON ${EXPIRING_TABLES.join(', ')} FROM gatehouse_resolver`);
    await q.query(`REVOKE SELECT (delivered_at) ON logout_outbox FROM gatehouse_resolver`);
    await q.query(`REVOKE SELECT (app_id, revoked_at, expires_at) ON sessions FROM gatehouse_resolver`);
  }
}

const CLEANUP_DUE = 'cleanup_due_tenants(timestamptz, timestamptz, integer)';
const APP_SESSIONS = 'app_session_tenants(uuid)';
const FUNCTIONS = [CLEANUP_DUE, APP_SESSIONS] as const;
const EXPIRING_TABLES = [
  'authorization_codes',
  'refresh_tokens',
  'saml_requests',
  'saml_assertion_ids',
  'oidc_login_states',
] as const;

const UP: string[] = [
  `CREATE INDEX authorization_codes_tenant_expires_idx ON authorization_codes (tenant_id, expires_at)`,
  `CREATE INDEX refresh_tokens_tenant_expires_idx ON refresh_tokens (tenant_id, expires_at)`,
  `CREATE INDEX logout_outbox_tenant_finished_idx ON logout_outbox (tenant_id, next_attempt_at)
     WHERE status <> 'pending'`,

  // The resolver reads only the columns the lookups need (as in the initial migration).
  ...EXPIRING_TABLES.flatMap((table) => [
    `GRANT SELECT (tenant_id, expires_at) ON ${table} TO gatehouse_resolver`,
    `CREATE POLICY resolver_read ON ${table} FOR SELECT TO gatehouse_resolver USING (true)`,
  ]),
  `GRANT SELECT (delivered_at) ON logout_outbox TO gatehouse_resolver`,
  `GRANT SELECT (app_id, revoked_at, expires_at) ON sessions TO gatehouse_resolver`,

  `CREATE FUNCTION cleanup_due_tenants(p_cutoff timestamptz, p_outbox_cutoff timestamptz, p_limit integer)
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
     ) t
     LIMIT p_limit
   $$`,
  `CREATE FUNCTION app_session_tenants(p_app uuid) RETURNS SETOF uuid
     LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
     SELECT DISTINCT s.tenant_id FROM public.sessions s
      WHERE s.app_id = p_app AND s.revoked_at IS NULL AND s.expires_at > now()
   $$`,
  // As in the initial migration: CREATE on the schema only for the hand-over.
  `GRANT CREATE ON SCHEMA public TO gatehouse_resolver`,
  ...FUNCTIONS.flatMap((fn) => [
    `ALTER FUNCTION ${fn} OWNER TO gatehouse_resolver`,
    `REVOKE ALL ON FUNCTION ${fn} FROM PUBLIC`,
    `GRANT EXECUTE ON FUNCTION ${fn} TO gatehouse_app`,
  ]),
  `REVOKE CREATE ON SCHEMA public FROM gatehouse_resolver`,
];
