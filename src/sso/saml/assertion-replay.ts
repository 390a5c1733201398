import type { Database } from '../../db/database.js';

/**
 * Remembers an accepted assertion ID until the assertion could no longer be
 * accepted anyway, in Postgres so the cache holds across nodes. Insert-or-fail:
 * true the first time an ID is seen (or once its earlier use has expired),
 * false for a replay.
 */
export async function rememberAssertionId(
  db: Database,
  input: { tenantId: string; connectionId: string; assertionId: string; acceptableUntil: Date; now: Date },
): Promise<boolean> {
  return db.withTenant(input.tenantId, async (em) => {
    await em.query('DELETE FROM saml_assertion_ids WHERE connection_id = $1 AND expires_at < $2', [
      input.connectionId,
      input.now,
    ]);
    const rows = await em.query<unknown[]>(
      `INSERT INTO saml_assertion_ids (tenant_id, connection_id, assertion_id, created_at, expires_at)
       VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (tenant_id, connection_id, assertion_id) DO UPDATE
         SET created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at
         WHERE saml_assertion_ids.expires_at < EXCLUDED.created_at
       RETURNING 1`,
      [input.tenantId, input.connectionId, input.assertionId, input.now, input.acceptableUntil],
    );
    return rows.length === 1;
  });
}
