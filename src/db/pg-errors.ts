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

/** Socket-level failures node-postgres surfaces as plain Errors with a Node error code. */
const UNREACHABLE_ERRNO = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
]);

/**
 * SQLSTATEs that mean "the database cannot serve now", not "this request is
 * wrong": class 08 (connection exception), 53300 too_many_connections,
 * 57P01–57P03 (admin/crash shutdown, cannot connect now).
 */
function isUnavailableSqlState(code: unknown): boolean {
  return (
    typeof code === 'string' && (code.startsWith('08') || ['53300', '57P01', '57P02', '57P03'].includes(code))
  );
}

/** Messages node-postgres and its pool use for a connection that died or never came (no code on them). */
const UNREACHABLE_MESSAGE =
  /^(Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|Connection terminated unexpectedly)/;

/** TypeORM's errors for a statement on a query runner released under it (the connection died). */
const RELEASED_RUNNER = new Set([
  'QueryRunnerAlreadyReleasedError',
  'QueryRunnerProviderAlreadyReleasedError',
]);

/**
 * Is this error the database being unreachable (down, restarting, refusing
 * connections, the connection cut mid-query)? Such a request is answered 503
 * with Retry-After on every surface (docs/operations.md, "Database outages"),
 * never 500. Looks through TypeORM's QueryFailedError (`driverError`) and
 * `cause` chains.
 */
export function isDatabaseUnavailable(error: unknown, depth = 0): boolean {
  if (typeof error !== 'object' || error === null || depth > 4) return false;
  const e = error as { code?: unknown; message?: unknown; driverError?: unknown; cause?: unknown };
  if (typeof e.code === 'string' && UNREACHABLE_ERRNO.has(e.code)) return true;
  if (isUnavailableSqlState(e.code)) return true;
  if (typeof e.message === 'string' && UNREACHABLE_MESSAGE.test(e.message)) return true;
  // TypeORM releases a query runner whose connection died mid-transaction; the transaction's
  // next statement (often its COMMIT) then fails with one of these instead of the socket error.
  if (error instanceof Error && RELEASED_RUNNER.has(error.name)) return true;
  if (error instanceof AggregateError && error.errors.some((x) => isDatabaseUnavailable(x, depth + 1)))
    return true;
  return isDatabaseUnavailable(e.driverError, depth + 1) || isDatabaseUnavailable(e.cause, depth + 1);
}

/** Seconds a client is told to wait (Retry-After) when the database is unavailable. */
export const UNAVAILABLE_RETRY_AFTER_SECONDS = 5;
