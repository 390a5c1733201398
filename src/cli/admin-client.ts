import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Config } from '../config/config.js';

/** A failure the CLI reports on stderr with exit status 1; `code` is the admin API's error code, if any. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly code?: string,
  ) {
    super(message);
  }
}

/** A command line the CLI cannot run: reported with the usage, exit status 2. */
export class UsageError extends Error {}

export interface AdminClient {
  baseUrl: string;
  request<T = unknown>(method: string, path: string, body?: unknown): Promise<T>;
}

/**
 * The operator token: GATEHOUSE_ADMIN_TOKEN, else the data folder's
 * `admin-token` file the server wrote at its first start. Never generated here.
 */
export async function operatorToken(config: Pick<Config, 'adminToken' | 'dataDir'>): Promise<string> {
  if (config.adminToken) return config.adminToken;
  const file = path.join(config.dataDir, 'admin-token');
  try {
    const token = (await readFile(file, 'utf8')).trim();
    if (token) return token;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  throw new CliError(
    `no operator token: set GATEHOUSE_ADMIN_TOKEN, or run where ${file} exists (GATEHOUSE_DATA_DIR)`,
  );
}

interface ErrorBody {
  code?: unknown;
  message?: unknown;
  request_id?: unknown;
}

interface NetworkCause {
  code?: string;
  message?: string;
  errors?: { code?: string }[];
}

function networkReason(error: unknown): string {
  const cause = (error as { cause?: NetworkCause }).cause;
  return cause?.code ?? cause?.errors?.[0]?.code ?? cause?.message ?? (error as Error).message;
}

/** The admin API over HTTP, with the operator's bearer token. */
export function adminClient(baseUrl: string, token: string, timeoutMs = 60_000): AdminClient {
  const root = `${baseUrl.replace(/\/+$/, '')}/admin/v1`;
  return {
    baseUrl,
    async request<T>(method: string, urlPath: string, body?: unknown): Promise<T> {
      let res: Response;
      try {
        res = await fetch(`${root}${urlPath}`, {
          method,
          headers: {
            authorization: `Bearer ${token}`,
            accept: 'application/json',
            ...(body === undefined ? {} : { 'content-type': 'application/json' }),
          },
          body: body === undefined ? undefined : JSON.stringify(body),
          signal: AbortSignal.timeout(timeoutMs),
          redirect: 'error',
        });
      } catch (error) {
        throw new CliError(`cannot reach ${baseUrl}: ${networkReason(error)}`);
      }
      const text = await res.text();
      let parsed: unknown;
      try {
        parsed = text ? JSON.parse(text) : undefined;
      } catch {
        // Not JSON (a proxy's error page): reported by status below.
      }
      if (!res.ok) {
        const e = (parsed ?? {}) as ErrorBody;
        const what = typeof e.code === 'string' ? `${e.code}: ` : '';
        const message = typeof e.message === 'string' ? e.message : text.slice(0, 200) || res.statusText;
        const ref = typeof e.request_id === 'string' ? `, request ${e.request_id}` : '';
        throw new CliError(
          `${what}${message} (HTTP ${res.status}${ref})`,
          typeof e.code === 'string' ? e.code : undefined,
        );
      }
      return parsed as T;
    },
  };
}
