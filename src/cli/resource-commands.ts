import { readFile } from 'node:fs/promises';
import { CliError, UsageError, type AdminClient } from './admin-client.js';
import { need, opt, tenantIdOf, UUID } from './arguments.js';
import type { CliContext, Command, Values } from './commands.js';

/**
 * Which CLI commands read and change what already exists: connections
 * (list, show, update, delete) and apps (list, show). Each is one admin API
 * call after resolving the names an operator types (tenant slug, connection or
 * app name) to ids.
 */

const str = { type: 'string' } as const;
const enc = encodeURIComponent;
const PAGE = 100;

function pageQuery(values: Values): string {
  const q = new URLSearchParams();
  for (const k of ['limit', 'offset']) if (typeof values[k] === 'string') q.set(k, values[k]);
  return q.size ? `?${q.toString()}` : '';
}

/** `--tenant` by id or slug. */
const tenantRef = (api: AdminClient, values: Values) => tenantIdOf(api, need(values, 'tenant'));

interface Named {
  name: string;
  id?: string;
  /** Apps are addressed by their client id. */
  client_id?: string;
}
const idOf = (row: Named): string => row.id ?? row.client_id ?? '';

/** Every row of a paginated list whose `name` is `name`. */
async function named<T extends Named>(api: AdminClient, listPath: string, name: string): Promise<T[]> {
  const found: T[] = [];
  for (let offset = 0; ; offset += PAGE) {
    const res = await api.request<{ data: T[]; total: number }>(
      'GET',
      `${listPath}?limit=${PAGE}&offset=${offset}`,
    );
    found.push(...res.data.filter((row) => row.name === name));
    if (res.data.length === 0 || offset + PAGE >= res.total) return found;
  }
}

/** An id as given, or the one row a name matches (two rows of that name: the ids are needed). */
async function idByName(api: AdminClient, listPath: string, given: string, what: string): Promise<string> {
  if (UUID.test(given)) return given;
  const rows = await named(api, listPath, given);
  const [only, second] = rows;
  if (!only) throw new CliError(`no ${what} named "${given}"`);
  if (second)
    throw new CliError(
      `${rows.length} ${what}s are named "${given}"; give the id: ${rows.map(idOf).join(', ')}`,
    );
  return idOf(only);
}

async function connectionPath(api: AdminClient, values: Values): Promise<string> {
  const base = `/tenants/${await tenantRef(api, values)}/connections`;
  const id = await idByName(api, base, need(values, 'connection'), 'connection');
  return `${base}/${enc(id)}`;
}

async function readText(ctx: CliContext, file: string, option: string): Promise<string> {
  // `-` reads from stdin, keeping a secret out of shell history and the process list.
  if (file === '-') return ctx.readStdin();
  try {
    return await readFile(file, 'utf8');
  } catch (error) {
    throw new CliError(`cannot read ${option} ${file}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`);
  }
}

/** The PATCH body of `connections update`: the named options, over a `--body` JSON object. */
async function connectionChanges(ctx: CliContext, v: Values): Promise<Record<string, unknown>> {
  let body: Record<string, unknown> = {};
  const file = opt(v, 'body');
  if (file !== undefined) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(await readText(ctx, file, '--body'));
    } catch (error) {
      if (error instanceof CliError) throw error;
      throw new CliError(`--body ${file}: not JSON`);
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
      throw new CliError(`--body ${file}: must be a JSON object of the fields to change`);
    body = parsed as Record<string, unknown>;
  }
  const metadataFile = opt(v, 'metadata-file');
  if (metadataFile !== undefined && opt(v, 'metadata-url') !== undefined)
    throw new UsageError('give at most one of --metadata-file or --metadata-url');
  if (metadataFile !== undefined) body.metadata_xml = await readText(ctx, metadataFile, '--metadata-file');
  const secret = opt(v, 'client-secret');
  if (secret !== undefined) body.client_secret = secret === '-' ? (await ctx.readStdin()).trim() : secret;
  const fields: [string, string][] = [
    ['name', 'name'],
    ['status', 'status'],
    ['default-role', 'default_role'],
    ['metadata-url', 'metadata_url'],
  ];
  for (const [option, field] of fields) {
    const value = opt(v, option);
    if (value !== undefined) body[field] = value;
  }
  if (Object.keys(body).length === 0)
    throw new UsageError(
      'nothing to change: give --name, --status, --default-role, --metadata-file, --metadata-url, --client-secret or --body',
    );
  return body;
}

export const RESOURCE_COMMANDS: Command[] = [
  {
    name: 'connections list',
    usage: 'connections list --tenant ID|SLUG [--limit N] [--offset N]',
    options: { tenant: str, limit: str, offset: str },
    async run(ctx, v) {
      const api = await ctx.api();
      return api.request('GET', `/tenants/${await tenantRef(api, v)}/connections${pageQuery(v)}`);
    },
  },
  {
    name: 'connections show',
    usage: 'connections show --tenant ID|SLUG --connection ID|NAME',
    options: { tenant: str, connection: str },
    async run(ctx, v) {
      const api = await ctx.api();
      return api.request('GET', await connectionPath(api, v));
    },
  },
  {
    name: 'connections update',
    usage:
      'connections update --tenant ID|SLUG --connection ID|NAME [--name NAME] [--status draft|active|inactive]' +
      ' [--default-role ROLE] [--metadata-file FILE | --metadata-url URL] [--client-secret SECRET|-] [--body FILE|-]',
    options: {
      tenant: str,
      connection: str,
      name: str,
      status: str,
      'default-role': str,
      'metadata-file': str,
      'metadata-url': str,
      'client-secret': str,
      body: str,
    },
    async run(ctx, v) {
      // Checked before any request: a usage error sends nothing.
      const changes = await connectionChanges(ctx, v);
      const api = await ctx.api();
      return api.request('PATCH', await connectionPath(api, v), changes);
    },
  },
  {
    name: 'connections delete',
    usage: 'connections delete --tenant ID|SLUG --connection ID|NAME',
    options: { tenant: str, connection: str },
    async run(ctx, v) {
      const api = await ctx.api();
      const target = await connectionPath(api, v);
      await api.request('DELETE', target);
      // The API answers 204; the CLI prints what was deleted so scripts can log it.
      return { deleted: target.slice(target.lastIndexOf('/') + 1) };
    },
  },
  {
    name: 'apps list',
    usage: 'apps list [--limit N] [--offset N]',
    options: { limit: str, offset: str },
    run: async (ctx, v) => (await ctx.api()).request('GET', `/apps${pageQuery(v)}`),
  },
  {
    name: 'apps show',
    usage: 'apps show --app ID|NAME',
    options: { app: str },
    async run(ctx, v) {
      const api = await ctx.api();
      return api.request('GET', `/apps/${enc(await idByName(api, '/apps', need(v, 'app'), 'app'))}`);
    },
  },
];
