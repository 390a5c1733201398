import type { EntityManager } from 'typeorm';
import { NotFoundError } from '../errors.js';

/**
 * Inside a tenant's transaction: the tenant exists and is not deleted (else
 * 404, as for any resource that does not exist). Suspended tenants can still be
 * configured by their operator.
 */
export async function requireLiveTenant(
  em: EntityManager,
  tenantId: string,
  options: { allowDeleted?: boolean } = {},
): Promise<void> {
  const rows = await em.query<{ status: string }[]>('SELECT status FROM tenants WHERE id = $1', [tenantId]);
  const status = rows[0]?.status;
  if (!status || (status === 'deleted' && !options.allowDeleted)) throw new NotFoundError('Tenant');
}

/** Postgres unique_violation (23505), optionally on a named constraint or index. */
export function isUniqueViolation(error: unknown, constraint?: string): boolean {
  const e = error as { code?: string; constraint?: string } | null;
  return e?.code === '23505' && (constraint === undefined || e.constraint === constraint);
}
