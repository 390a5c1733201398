import { positional, tenantIdOf, UUID } from './arguments.js';
import type { Command } from './commands.js';

/**
 * How does an operator delete a tenant and, later, purge it (issue 12;
 * docs/admin-api.md "Deleting a tenant")? `gatehouse tenants delete TENANT`
 * deletes it (DELETE /tenants/{id}) and prints the deletion record: when its
 * rows will be purged (`purge_after`) and the final signed checkpoint of its
 * audit trail. `gatehouse tenants purge TENANT [--force]` purges it now;
 * without --force the server refuses (409) before `purge_after`.
 */

const flag = { type: 'boolean' } as const;
const enc = encodeURIComponent;

export const DELETION_COMMANDS: Command[] = [
  {
    name: 'tenants delete',
    usage: 'tenants delete TENANT',
    args: ['TENANT'],
    options: {},
    async run(ctx, v) {
      const api = await ctx.api();
      const tenant = await tenantIdOf(api, positional(v, 0, 'TENANT (id or slug)'));
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
      const given = positional(v, 0, 'TENANT (id or slug)');
      const ref = UUID.test(given) ? given : enc(given.toLowerCase());
      return api.request('POST', `/tenants/${ref}/purge${v.force === true ? '?force=true' : ''}`, {});
    },
  },
];
