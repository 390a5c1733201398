import { CliError, UsageError, type AdminClient } from './admin-client.js';
import type { Command, Values } from './commands.js';

/**
 * How does an operator delete a tenant and, later, purge it (issue 12;
 * docs/admin-api.md "Deleting a tenant")? `gatehouse tenants delete TENANT`
 * deletes it (DELETE /tenants/{id}) and prints the deletion record: when its
 * rows will be purged (`purge_after`) and the final signed checkpoint of its
 * audit trail. `gatehouse tenants purge TENANT [--force]` purges it now;
 * without --force the server refuses (409) before `purge_after`.
 */

const flag = { type: 'boolean' } as const;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const enc = encodeURIComponent;

function argument(values: Values, what: string): string {
  const args = values.args;
  const value = Array.isArray(args) ? args[0] : undefined;
  if (value === undefined || value === '') throw new UsageError(`${what} is required`);
  return value;
}

/** A live tenant by id or slug (GET /tenants/{idOrSlug} resolves both). */
async function liveTenant(api: AdminClient, given: string): Promise<string> {
  if (UUID.test(given)) return given;
  try {
    return (await api.request<{ id: string }>('GET', `/tenants/${enc(given.toLowerCase())}`)).id;
  } catch (error) {
    if (error instanceof CliError && error.code === 'not_found')
      throw new CliError(`no tenant with slug "${given}"`);
    throw error;
  }
}

export const DELETION_COMMANDS: Command[] = [
  {
    name: 'tenants delete',
    usage: 'tenants delete TENANT',
    args: ['TENANT'],
    options: {},
    async run(ctx, v) {
      const api = await ctx.api();
      const tenant = await liveTenant(api, argument(v, 'TENANT (id or slug)'));
      await api.request('DELETE', `/tenants/${tenant}`);
      const record = await api.request<{ purge_after: string | null }>('GET', `/tenants/${tenant}/deletion`);
      ctx.log(`tenant deleted; its data is kept until ${record.purge_after ?? '?'} and then purged`);
      return record;
    },
  },
  {
    name: 'tenants purge',
    usage: 'tenants purge TENANT [--force]',
    args: ['TENANT'],
    options: { force: flag },
    async run(ctx, v) {
      const api = await ctx.api();
      // Deleted tenants are no longer listed: the purge route itself takes the id or the slug.
      const given = argument(v, 'TENANT (id or slug)');
      const ref = UUID.test(given) ? given : enc(given.toLowerCase());
      return api.request('POST', `/tenants/${ref}/purge${v.force === true ? '?force=true' : ''}`, {});
    },
  },
];
