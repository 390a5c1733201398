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

/**
 * rememberAssertionId as SQL text for a composed statement (issue 13: the ACS
 * sends the replay insert, the request it answers and the login's first reads
 * as one statement, saml-acs-statement.ts): two CTEs, `expired` and
 * `remembered`; `remembered` has a row iff the assertion is fresh. The expired
 * rows deleted never include this assertion's own row, so no row is changed
 * twice in one statement (the DO UPDATE below renews an expired one).
 */
export function rememberAssertionSql(
  input: { tenantId: string; connectionId: string; assertionId: string; acceptableUntil: Date; now: Date },
  p: (value: unknown) => string,
): string {
  const connectionId = p(input.connectionId);
  const assertionId = p(input.assertionId);
  const now = p(input.now);
  return `expired AS (
      DELETE FROM saml_assertion_ids
       WHERE connection_id = ${connectionId}::uuid AND expires_at < ${now}::timestamptz
         AND assertion_id <> ${assertionId}::text),
    remembered AS (
      INSERT INTO saml_assertion_ids (tenant_id, connection_id, assertion_id, created_at, expires_at)
      VALUES (${p(input.tenantId)}::uuid, ${connectionId}::uuid, ${assertionId}::text, ${now}::timestamptz,
              ${p(input.acceptableUntil)}::timestamptz)
      ON CONFLICT (tenant_id, connection_id, assertion_id) DO UPDATE
        SET created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at
        WHERE saml_assertion_ids.expires_at < EXCLUDED.created_at
      RETURNING 1)`;
}
