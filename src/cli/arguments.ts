import { CliError, UsageError, type AdminClient } from './admin-client.js';
import type { Values } from './commands.js';

/**
 * How does a CLI command read what the operator typed? The positional
 * arguments and options every command shares, and the tenant an operator
 * names by id or by slug — one home, so every command answers a missing
 * argument or an unknown slug the same way.
 */

export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The positional argument at `index` (`tenants export acme`: 0 is `acme`). */
export function positional(values: Values, index: number, what: string): string {
  const args = values.args;
  const value = Array.isArray(args) ? args[index] : undefined;
  if (value === undefined || value === '') throw new UsageError(`${what} is required`);
  return value;
}

/** A required `--name` option. */
export function need(values: Values, name: string): string {
  const v = values[name];
  if (typeof v !== 'string' || v === '') throw new UsageError(`--${name} is required`);
  return v;
}

/** An optional `--name` option. */
export const opt = (values: Values, name: string): string | undefined => {
  const v = values[name];
  return typeof v === 'string' ? v : undefined;
};

/** A tenant by id or slug: GET /tenants/{idOrSlug} resolves both; a 404 names the slug. */
export async function tenantIdOf(api: AdminClient, given: string): Promise<string> {
  if (UUID.test(given)) return given;
  try {
    return (await api.request<{ id: string }>('GET', `/tenants/${encodeURIComponent(given.toLowerCase())}`))
      .id;
  } catch (error) {
    if (error instanceof CliError && error.code === 'not_found')
      throw new CliError(`no tenant with slug "${given}"`);
    throw error;
  }
}
