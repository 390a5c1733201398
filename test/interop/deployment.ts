import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { createServer } from 'node:net';
import path from 'node:path';
import { ADMIN_TOKEN_PREFIX, generateToken } from '../../src/config/secrets.js';
import { provisionOwner } from '../../src/db/bootstrap.js';
import { startEmbeddedPostgres, type EmbeddedDatabase } from '../../src/db/embedded.js';
import { startService, waitFor } from '../support/server-process.js';

/**
 * How does the multi-node test stand up Gatehouse the way docker-compose.yml
 * does? A PostgreSQL cluster of its own (the runtime role is cluster-wide, so
 * not the shared test cluster), the compose `migrate` job
 * (`bin/gatehouse.js migrate`), then the built server started several times
 * at once with the same DATABASE_URL, master key and admin token, the
 * haproxy address as GATEHOUSE_BASE_URL and one trusted proxy hop.
 */

export async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => resolve(typeof a === 'object' && a ? a.port : 0));
    });
  });
}

/** The secrets every node shares (docs/operations.md, "Many nodes"). */
export function sharedSecrets(): { GATEHOUSE_MASTER_KEY: string; GATEHOUSE_ADMIN_TOKEN: string } {
  return {
    GATEHOUSE_MASTER_KEY: randomBytes(32).toString('base64url'),
    GATEHOUSE_ADMIN_TOKEN: generateToken(ADMIN_TOKEN_PREFIX),
  };
}

export async function startPrivateCluster(
  dir: string,
): Promise<{ cluster: EmbeddedDatabase; ownerUrl: string }> {
  const cluster = await startEmbeddedPostgres({
    dir: path.join(dir, 'pg'),
    port: await freePort(),
    password: randomBytes(16).toString('hex'),
    settings: { fsync: 'off', synchronous_commit: 'off' },
  });
  const ownerUrl = await provisionOwner(cluster.superuserUrl, {
    database: 'gatehouse',
    ownerPassword: randomBytes(16).toString('hex'),
  });
  return { cluster, ownerUrl };
}

/** The compose `migrate` job: `node bin/gatehouse.js migrate` with DATABASE_URL. */
export function migrateJob(env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [path.resolve('bin/gatehouse.js'), 'migrate'], {
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr.on('data', (c: Buffer) => (output += c.toString()));
    child.on('exit', (code) => resolve({ code, output }));
  });
}

export interface NodeProcess {
  name: string;
  /** http://127.0.0.1:<port>: this node, directly. */
  address: string;
  port: number;
  service: ReturnType<typeof startService>;
}

/** Starts `names.length` built servers at once with the same environment; resolves when each listens. */
export async function startNodes(names: string[], env: Record<string, string>): Promise<NodeProcess[]> {
  const nodes = await Promise.all(
    names.map(async (name) => {
      const port = await freePort();
      const service = startService({
        ...env,
        PORT: String(port),
        HOST: '127.0.0.1',
        GATEHOUSE_DATA_DIR: path.join(env.GATEHOUSE_DATA_DIR ?? '/tmp', name),
      });
      return { name, port, address: `http://127.0.0.1:${port}`, service };
    }),
  );
  await Promise.all(
    nodes.map((n) =>
      waitFor(() => /listening on|failed to start/.test(n.service.output()), 90_000, `${n.name} to listen`),
    ),
  );
  const failed = nodes.filter((n) => !/listening on/.test(n.service.output()));
  if (failed.length > 0)
    throw new Error(failed.map((n) => `${n.name} did not start:\n${n.service.output()}`).join('\n'));
  return nodes;
}

export async function stopNode(node: NodeProcess): Promise<void> {
  const { child, exited } = node.service;
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
  await exited;
}

/**
 * A GET whose TCP connection leaves from `localAddress` (any of 127.0.0.0/8 on
 * Linux): a client at another address than the rest of the test, as haproxy
 * sees it and appends it to X-Forwarded-For.
 */
export function getFrom(
  localAddress: string,
  url: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { localAddress, headers, agent: false, timeout: 15_000 }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error(`no answer from ${url}`)));
    req.on('error', reject);
    req.end();
  });
}

/** Polls `predicate` until true, at most `ms` (a bound on waiting, not a timing assertion). */
export async function eventually(
  predicate: () => boolean | Promise<boolean>,
  what: string,
  ms = 10_000,
): Promise<void> {
  const until = Date.now() + ms;
  while (!(await predicate())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
