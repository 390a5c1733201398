/**
 * What a PostgreSQL error means for the caller: one home for the SQLSTATE
 * classes Gatehouse reacts to (docs/architecture.md, `db` layer), so no folder
 * spells `code === '23505'` for itself.
 */

/** The fields node-postgres puts on a server error (DatabaseError); anything else has neither. */
interface PgErrorFields {
  code?: unknown;
  constraint?: unknown;
}

/** unique_violation (SQLSTATE 23505), optionally on one named constraint or unique index. */
export function isUniqueViolation(error: unknown, constraint?: string): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const e = error as PgErrorFields;
  return e.code === '23505' && (constraint === undefined || e.constraint === constraint);
}

/** foreign_key_violation (SQLSTATE 23503): the row referred to is gone (e.g. deleted while a request ran). */
export function isForeignKeyViolation(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  return (error as PgErrorFields).code === '23503';
}
