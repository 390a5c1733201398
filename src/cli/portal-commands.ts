import { UsageError } from './admin-client.js';
import { positional, tenantIdOf, UUID } from './arguments.js';
import type { Command } from './commands.js';

/**
 * How does an operator get into the Admin Portal, and send a customer's IT
 * admin in (issue 15)? `gatehouse portal-link` prints a one-time login link
 * (15 minutes); `gatehouse setup-links create|list|revoke TENANT …` manages
 * the setup links of a tenant. Each is one admin API call (docs/portal.md).
 */

const str = { type: 'string' } as const;
const INTENTS = ['sso', 'dsync', 'domain_verification', 'certificate_renewal', 'audit_log'];

/** `--ttl 7d`, `12h`, `3600` (seconds). */
export function parseTtl(given: string): number {
  const m = /^(\d{1,9})([dhms]?)$/.exec(given.trim());
  if (!m?.[1]) throw new UsageError('--ttl must look like 7d, 12h, 30m or a number of seconds');
  const unit = { d: 86400, h: 3600, m: 60, s: 1, '': 1 }[m[2] ?? ''] ?? 1;
  return Number(m[1]) * unit;
}

export const PORTAL_COMMANDS: Command[] = [
  {
    name: 'portal-link',
    usage: 'portal-link   (a one-time Admin Portal login link for the operator, valid 15 minutes)',
    options: {},
    async run(ctx) {
      const api = await ctx.api();
      return api.request<{ url: string; expires_at: string }>('POST', '/portal-links', {});
    },
  },
  {
    name: 'setup-links create',
    usage: `setup-links create TENANT --intents ${INTENTS.slice(0, 2).join(',')}[,…] [--ttl 7d]   (intents: ${INTENTS.join(', ')})`,
    args: ['TENANT'],
    options: { intents: str, ttl: str },
    async run(ctx, v) {
      const intents = (typeof v.intents === 'string' ? v.intents : '')
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean);
      if (intents.length === 0)
        throw new UsageError(`--intents is required: a comma-separated list of ${INTENTS.join(', ')}`);
      const unknown = intents.filter((i) => !INTENTS.includes(i));
      if (unknown.length)
        throw new UsageError(`unknown intent(s) ${unknown.join(', ')}; known: ${INTENTS.join(', ')}`);
      const api = await ctx.api();
      const tenant = await tenantIdOf(api, positional(v, 0, 'TENANT (id or slug)'));
      const body = { intents, ...(typeof v.ttl === 'string' ? { ttl: parseTtl(v.ttl) } : {}) };
      return api.request('POST', `/tenants/${tenant}/setup-links`, body);
    },
  },
  {
    name: 'setup-links list',
    usage: 'setup-links list TENANT',
    args: ['TENANT'],
    options: {},
    async run(ctx, v) {
      const api = await ctx.api();
      const tenant = await tenantIdOf(api, positional(v, 0, 'TENANT (id or slug)'));
      return api.request('GET', `/tenants/${tenant}/setup-links?limit=100`);
    },
  },
  {
    name: 'setup-links revoke',
    usage: 'setup-links revoke TENANT LINK_ID',
    args: ['TENANT', 'LINK_ID'],
    options: {},
    async run(ctx, v) {
      const api = await ctx.api();
      const tenant = await tenantIdOf(api, positional(v, 0, 'TENANT (id or slug)'));
      const linkId = positional(v, 1, 'LINK_ID');
      if (!UUID.test(linkId)) throw new UsageError('LINK_ID must be the id `setup-links list` shows');
      return api.request('DELETE', `/tenants/${tenant}/setup-links/${linkId}`);
    },
  },
];
