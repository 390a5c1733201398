import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Which index answers "this tenant's audit events by this actor" or "…about
 * this target", newest first (issue 13)? The portal's audit log filters by
 * actor id and target id (src/portal/audit.pages.ts, through
 * audit-events.service.ts `auditEventsPage`: `actor_id = $n`, `target_id = $n`,
 * keyset on seq). Until now the only way in was (tenant_id, seq): a page for a
 * rare actor walked the tenant's whole trail backwards, filtering, and its
 * capped count did the same.
 *
 * (tenant_id, actor_id, seq) and (tenant_id, target_id, seq) make both filters
 * an index range already in the page's order (no Sort; `seq < $cursor` is the
 * next page's range). Plain columns compared with `=` (texteq, LEAKPROOF), so
 * row-level security lets the index evaluate them (an expression such as
 * lower(actor_id) would not be used under RLS: see 1766100000000). Partial on
 * IS NOT NULL: an equality filter never matches NULL, and events without an
 * actor or target id stay out of the index.
 *
 * Plain CREATE INDEX, not CONCURRENTLY: migrations run inside a transaction
 * (runMigrations, transaction 'each'), where CONCURRENTLY is refused. The build
 * holds a SHARE lock on audit_events, which blocks audited writes until it
 * ends; on a large trail an operator may build the same indexes beforehand
 * with CREATE INDEX CONCURRENTLY under these names (docs/operations.md), and
 * IF NOT EXISTS then keeps them.
 */
export class AuditFilterIndexes1767300000000 implements MigrationInterface {
  name = 'AuditFilterIndexes1767300000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(
      `CREATE INDEX IF NOT EXISTS audit_events_tenant_actor_idx ON audit_events (tenant_id, actor_id, seq)
         WHERE actor_id IS NOT NULL`,
    );
    await q.query(
      `CREATE INDEX IF NOT EXISTS audit_events_tenant_target_idx ON audit_events (tenant_id, target_id, seq)
         WHERE target_id IS NOT NULL`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX IF EXISTS audit_events_tenant_actor_idx, audit_events_tenant_target_idx`);
  }
}
