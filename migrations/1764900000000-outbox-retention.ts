import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Outbox retention in one place: the cleanup job purges finished rows
 * (delivered or given up) of BOTH outboxes past the outbox retention; the
 * delivery workers no longer purge on their own.
 *
 * - cleanup_due_tenants(cutoff, outbox_cutoff, limit): same signature, owner
 *   (gatehouse_resolver) and grants as in 1764700000000 (CREATE OR REPLACE keeps
 *   them; they are restated below all the same); now also reports tenants
 *   holding webhook_outbox rows finished before `outbox_cutoff`. Tenant ids and
 *   nothing else (DESIGN.md §2).
 * - webhook_outbox_tenant_finished_idx: finished rows per tenant by the time
 *   they finished, so the lookup and the batched deletes are index probes
 *   (the logout outbox has logout_outbox_tenant_finished_idx).
 */
export class OutboxRetention1764900000000 implements MigrationInterface {
  name = 'OutboxRetention1764900000000';

  async up(q: QueryRunner): Promise<void> {
    for (const statement of UP) await q.query(statement);
  }

  async down(q: QueryRunner): Promise<void> {
    for (const statement of DOWN) await q.query(statement);
  }
}

const CLEANUP_DUE = 'cleanup_due_tenants(timestamptz, timestamptz, integer)';

/** The function as 1764700000000 created it, with `extra` outbox branches. */
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
              WHERE status <> 'pending' AND COALESCE(delivered_at, next_attempt_at) < p_outbox_cutoff${extra}
     ) t
     LIMIT p_limit
   $$`;

const GRANTS = [
  `REVOKE ALL ON FUNCTION ${CLEANUP_DUE} FROM PUBLIC`,
  `GRANT EXECUTE ON FUNCTION ${CLEANUP_DUE} TO gatehouse_app`,
];

const UP: string[] = [
  // Finished = delivered (delivered_at) or given up (next_attempt_at: the last attempt plus its lease).
  `CREATE INDEX webhook_outbox_tenant_finished_idx
     ON webhook_outbox (tenant_id, (COALESCE(delivered_at, next_attempt_at))) WHERE status <> 'pending'`,
  // The resolver reads only the columns the lookup needs (status and next_attempt_at since 1764800000000).
  `GRANT SELECT (delivered_at) ON webhook_outbox TO gatehouse_resolver`,
  cleanupDue(`
       UNION SELECT tenant_id FROM public.webhook_outbox
              WHERE status <> 'pending' AND COALESCE(delivered_at, next_attempt_at) < p_outbox_cutoff`),
  `ALTER FUNCTION ${CLEANUP_DUE} OWNER TO gatehouse_resolver`,
  ...GRANTS,
];

const DOWN: string[] = [
  cleanupDue(''),
  `ALTER FUNCTION ${CLEANUP_DUE} OWNER TO gatehouse_resolver`,
  ...GRANTS,
  `REVOKE SELECT (delivered_at) ON webhook_outbox FROM gatehouse_resolver`,
  `DROP INDEX IF EXISTS webhook_outbox_tenant_finished_idx`,
];
