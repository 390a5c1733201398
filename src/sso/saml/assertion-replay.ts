import type { EntityManager } from 'typeorm';

/**
 * Remembers an accepted assertion ID until the assertion could no longer be
 * accepted anyway, in Postgres so the cache holds across nodes. Insert-or-fail:
 * true the first time an ID is seen (or once its earlier use has expired),
 * false for a replay. Runs in the caller's transaction of input.tenantId, which
 * must commit even when the login is then refused (saml-flow.ts verify).
 */
export async function rememberAssertionId(
  em: EntityManager,
  input: { tenantId: string; connectionId: string; assertionId: string; acceptableUntil: Date; now: Date },
): Promise<boolean> {
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
}
