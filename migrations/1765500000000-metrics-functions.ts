import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The figures /metrics needs across tenants (issue 11), without giving the
 * runtime role a way around row-level security:
 *
 * - outbox_pending_stats(): per outbox kind (`logout`, `webhook`), how many
 *   rows wait for delivery and the age in seconds of the oldest — counts and
 *   an age, never a tenant id or a row. SECURITY DEFINER, owned by
 *   gatehouse_resolver like the other pre-tenant functions (db/resolvers.ts),
 *   which reads the outboxes through its `resolver_read` policies; it gains
 *   only `created_at`.
 */
export class MetricsFunctions1765500000000 implements MigrationInterface {
  name = 'MetricsFunctions1765500000000';

  async up(q: QueryRunner): Promise<void> {
    for (const statement of UP) await q.query(statement);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP FUNCTION IF EXISTS ${OUTBOX_STATS}`);
    for (const table of OUTBOXES)
      await q.query(`REVOKE SELECT (created_at) ON ${table} FROM gatehouse_resolver`);
  }
}

const OUTBOX_STATS = 'outbox_pending_stats()';
const OUTBOXES = ['logout_outbox', 'webhook_outbox'] as const;

const UP: string[] = [
  ...OUTBOXES.map((table) => `GRANT SELECT (created_at) ON ${table} TO gatehouse_resolver`),
  `CREATE FUNCTION ${OUTBOX_STATS}
     RETURNS TABLE (kind text, pending bigint, oldest_age_seconds double precision)
     LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
     SELECT 'logout', count(*), COALESCE(EXTRACT(EPOCH FROM now() - min(created_at))::float8, 0)
       FROM public.logout_outbox WHERE status = 'pending'
     UNION ALL
     SELECT 'webhook', count(*), COALESCE(EXTRACT(EPOCH FROM now() - min(created_at))::float8, 0)
       FROM public.webhook_outbox WHERE status = 'pending'
   $$`,
  // As in the earlier resolver migrations: CREATE on the schema only for the hand-over.
  `GRANT CREATE ON SCHEMA public TO gatehouse_resolver`,
  `ALTER FUNCTION ${OUTBOX_STATS} OWNER TO gatehouse_resolver`,
  `REVOKE ALL ON FUNCTION ${OUTBOX_STATS} FROM PUBLIC`,
  `GRANT EXECUTE ON FUNCTION ${OUTBOX_STATS} TO gatehouse_app`,
  `REVOKE CREATE ON SCHEMA public FROM gatehouse_resolver`,
];
