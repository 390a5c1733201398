import { readFile, writeFile } from 'node:fs/promises';
import { gzipSync } from 'node:zlib';
import { CliError, operatorToken, UsageError, type AdminClient } from './admin-client.js';
import { positional, tenantIdOf } from './arguments.js';
import type { CliContext, Command } from './commands.js';

/**
 * How does an operator take a tenant out of one Gatehouse and into another?
 * `gatehouse tenants export TENANT [--out FILE] [--wait]` requests an export,
 * polls until it is produced and downloads it (once: the server drops it
 * after); `gatehouse tenants import FILE` sends an archive to
 * POST /admin/v1/tenant-imports (docs/admin-api.md "Exports and imports").
 */

const str = { type: 'string' } as const;
const flag = { type: 'boolean' } as const;

interface ExportView {
  id: string;
  status: string;
  expires_at: string;
}

/** A request the JSON client cannot make (binary bodies), with the same token and error reporting. */
async function rawRequest(
  ctx: CliContext,
  api: AdminClient,
  method: string,
  path: string,
  body?: { bytes: Buffer; type: string },
): Promise<Response> {
  const token = await operatorToken(ctx.config);
  let res: Response;
  try {
    res = await fetch(`${api.baseUrl.replace(/\/+$/, '')}/admin/v1${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': body.type } : {}) },
      body: body ? new Uint8Array(body.bytes) : undefined,
      signal: AbortSignal.timeout(10 * 60_000),
      redirect: 'error',
    });
  } catch (error) {
    throw new CliError(`cannot reach ${api.baseUrl}: ${(error as Error).message}`);
  }
  if (!res.ok) {
    const text = await res.text();
    let parsed: { code?: unknown; message?: unknown } = {};
    try {
      parsed = JSON.parse(text) as typeof parsed;
    } catch {
      // Not JSON: reported by status.
    }
    const code = typeof parsed.code === 'string' ? parsed.code : undefined;
    const message =
      typeof parsed.message === 'string' ? parsed.message : text.slice(0, 200) || res.statusText;
    throw new CliError(`${code ? `${code}: ` : ''}${message} (HTTP ${res.status})`, code);
  }
  return res;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls until the export is produced (or failed/expired), at most `timeoutMs`. */
async function waitForExport(api: AdminClient, path: string, timeoutMs: number): Promise<ExportView> {
  const deadline = Date.now() + timeoutMs;
  for (let delay = 250; ; delay = Math.min(delay * 2, 5_000)) {
    const view = await api.request<ExportView>('GET', path);
    if (view.status !== 'pending') return view;
    if (Date.now() > deadline) throw new CliError(`export ${view.id} is still pending; poll it later`);
    await sleep(delay);
  }
}

export const EXPORT_COMMANDS: Command[] = [
  {
    name: 'tenants export',
    usage: 'tenants export TENANT [--out FILE] [--wait] [--timeout SECONDS]',
    args: ['TENANT'],
    options: { out: str, wait: flag, timeout: str },
    async run(ctx, v) {
      const api = await ctx.api();
      const tenant = await tenantIdOf(api, positional(v, 0, 'TENANT (id or slug)'));
      const timeout = typeof v.timeout === 'string' ? Number(v.timeout) : 600;
      if (!Number.isFinite(timeout) || timeout <= 0)
        throw new UsageError('--timeout must be a positive number');
      const requested = await api.request<ExportView>('POST', `/tenants/${tenant}/exports`, {});
      const out = typeof v.out === 'string' ? v.out : undefined;
      // Without --wait or --out, the export is left for a later download (its id is printed).
      if (v.wait !== true && out === undefined) return requested;
      const path = `/tenants/${tenant}/exports/${requested.id}`;
      const done = await waitForExport(api, path, timeout * 1000);
      if (done.status !== 'ready') throw new CliError(`export ${done.id} ended ${done.status}`);
      const res = await rawRequest(ctx, api, 'GET', `${path}/download`);
      const bytes = Buffer.from(await res.arrayBuffer());
      const file = out ?? `gatehouse-export-${tenant}-${done.id}.json.gz`;
      // Personal data: readable by the operator only.
      await writeFile(file, bytes, { mode: 0o600 });
      ctx.log(`wrote ${file} (${bytes.length} bytes, gzip'd JSON); the server no longer holds it`);
      return { id: done.id, tenant_id: tenant, status: 'downloaded', file, size: bytes.length };
    },
  },
  {
    name: 'tenants import',
    usage: 'tenants import FILE',
    args: ['FILE'],
    options: {},
    async run(ctx, v) {
      const file = positional(v, 0, 'FILE (an export archive)');
      let bytes: Buffer;
      try {
        bytes = await readFile(file);
      } catch (error) {
        throw new CliError(`${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
      }
      // Sent gzip'd either way: a JSON body would meet GATEHOUSE_BODY_LIMIT, the archive limit is larger.
      const gzip = bytes[0] === 0x1f && bytes[1] === 0x8b ? bytes : gzipSync(bytes);
      const api = await ctx.api();
      const res = await rawRequest(ctx, api, 'POST', '/tenant-imports', {
        bytes: gzip,
        type: 'application/gzip',
      });
      return (await res.json()) as unknown;
    },
  },
];
