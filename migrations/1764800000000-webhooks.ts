import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Signed webhook events for apps (issue 5, the optional part).
 *
 * - apps.webhook_url: where an app receives directory events (https, or http on
 *   loopback, like redirect URIs).
 * - app_webhook_secrets: platform table, the app's HMAC signing secrets, SEALED
 *   with the master key (not hashed: Gatehouse must use them to sign). Several
 *   rows live together during a rotation's overlap; each signs the delivery.
 * - webhook_outbox: a tenant table (forced RLS), one row per (event, app with a
 *   webhook URL), written in the transaction of the directory change; the
 *   delivery worker keeps it until delivered or given up, so a restart loses
 *   nothing.
 * - webhook_outbox_due_tenants(): the worker's pre-tenant lookup (DESIGN.md §2):
 *   which tenants have a delivery due, nothing else.
 */
export class Webhooks1764800000000 implements MigrationInterface {
  name = 'Webhooks1764800000000';

  async up(q: QueryRunner): Promise<void> {
    for (const statement of UP) await q.query(statement);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP FUNCTION IF EXISTS ${DUE_TENANTS}`);
    await q.query(`DROP TABLE IF EXISTS webhook_outbox, app_webhook_secrets CASCADE`);
    await q.query(`ALTER TABLE apps DROP COLUMN IF EXISTS webhook_url`);
  }
}

const DUE_TENANTS = 'webhook_outbox_due_tenants(integer)';

const UP: string[] = [
  `ALTER TABLE apps ADD COLUMN webhook_url text`,

  `CREATE TABLE app_webhook_secrets (
     id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
     app_id uuid NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
     secret_sealed text NOT NULL,
     created_at timestamptz NOT NULL DEFAULT now(),
     expires_at timestamptz
   )`,
  `CREATE INDEX app_webhook_secrets_app_idx ON app_webhook_secrets (app_id)`,
  `GRANT SELECT, INSERT, UPDATE, DELETE ON app_webhook_secrets TO gatehouse_app`,

  `CREATE TABLE webhook_outbox (
     tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
     id uuid NOT NULL DEFAULT gen_random_uuid(),
     event_id uuid NOT NULL,
     event_type text NOT NULL,
     app_id uuid NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
     payload jsonb NOT NULL,
     status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
     attempts integer NOT NULL DEFAULT 0,
     next_attempt_at timestamptz NOT NULL DEFAULT now(),
     last_error text,
     created_at timestamptz NOT NULL DEFAULT now(),
     delivered_at timestamptz,
     PRIMARY KEY (tenant_id, id),
     CONSTRAINT webhook_outbox_event_app_key UNIQUE (tenant_id, event_id, app_id)
   )`,
  // Only pending rows are indexed: the worker's claim and the due-tenants lookup.
  `CREATE INDEX webhook_outbox_due_idx ON webhook_outbox (tenant_id, next_attempt_at) WHERE status = 'pending'`,
  `ALTER TABLE webhook_outbox ENABLE ROW LEVEL SECURITY`,
  `ALTER TABLE webhook_outbox FORCE ROW LEVEL SECURITY`,
  `CREATE POLICY tenant_isolation ON webhook_outbox
     USING (tenant_id = app_current_tenant()) WITH CHECK (tenant_id = app_current_tenant())`,
  `GRANT SELECT, INSERT, UPDATE, DELETE ON webhook_outbox TO gatehouse_app`,

  `GRANT SELECT (tenant_id, status, next_attempt_at) ON webhook_outbox TO gatehouse_resolver`,
  `CREATE POLICY resolver_read ON webhook_outbox FOR SELECT TO gatehouse_resolver USING (true)`,
  `CREATE FUNCTION webhook_outbox_due_tenants(p_limit integer) RETURNS SETOF uuid
     LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
     SELECT DISTINCT o.tenant_id FROM public.webhook_outbox o
      WHERE o.status = 'pending' AND o.next_attempt_at <= now()
      LIMIT p_limit
   $$`,
  // As in the earlier migrations: CREATE on the schema only for the hand-over.
  `GRANT CREATE ON SCHEMA public TO gatehouse_resolver`,
  `ALTER FUNCTION ${DUE_TENANTS} OWNER TO gatehouse_resolver`,
  `REVOKE ALL ON FUNCTION ${DUE_TENANTS} FROM PUBLIC`,
  `GRANT EXECUTE ON FUNCTION ${DUE_TENANTS} TO gatehouse_app`,
  `REVOKE CREATE ON SCHEMA public FROM gatehouse_resolver`,
];
