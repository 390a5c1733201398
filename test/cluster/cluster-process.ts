import { readdirSync, readFileSync } from 'node:fs';
import { Agent, request as httpRequest } from 'node:http';
import { createServer } from 'node:net';
import { WORKER_HEADER } from '../../src/cluster.js';

/**
 * What the GATEHOUSE_WORKERS tests need to see from outside a running server:
 * its processes (from /proc, by parent pid), and HTTP requests whose TCP
 * connection is known, so a test can say which worker answered a request
 * (node:cluster hands each connection to one worker; a kept-alive socket stays there).
 */

export async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => resolve(typeof a === 'object' && a ? a.port : 0));
    });
  });
}

/** Pids whose parent is `pid`, with their command lines (Linux /proc). */
export function childProcesses(pid: number): { pid: number; cmdline: string }[] {
  const out: { pid: number; cmdline: string }[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // Field 4 (ppid) follows the parenthesised command name, which may itself hold spaces.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid !== pid) continue;
      out.push({ pid: Number(entry), cmdline: readFileSync(`/proc/${entry}/cmdline`, 'utf8') });
    } catch {
      // The process ended while we looked.
    }
  }
  return out;
}

/** The worker processes of a primary: the node children running the same main.js. */
export function workerPids(primary: number): number[] {
  return childProcesses(primary)
    .filter((c) => c.cmdline.includes('main.js'))
    .map((c) => c.pid)
    .sort((a, b) => a - b);
}

export function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  /** The client side of the TCP connection: the same port on two answers means the same connection. */
  localPort: number;
}

/** One HTTP request; `agent: false` opens a fresh connection, an Agent may reuse a kept-alive one. */
export function call(
  url: string,
  init: { method?: string; headers?: Record<string, string>; body?: string; agent?: Agent | false } = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      url,
      { method: init.method ?? 'GET', headers: init.headers, agent: init.agent ?? false, timeout: 15_000 },
      (res) => {
        let body = '';
        const localPort = res.socket.localPort ?? 0;
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body, localPort }));
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer from ${url}`)));
    req.on('error', reject);
    req.end(init.body);
  });
}

/** Which worker answers /healthz on this connection (the header src/cluster.ts sets; none with one process). */
export async function workerOf(
  base: string,
  agent: Agent | false = false,
): Promise<Answer & { worker?: string }> {
  const answer = await call(`${base}/healthz`, { agent });
  const header = answer.headers[WORKER_HEADER.toLowerCase()];
  return { ...answer, worker: typeof header === 'string' ? header : undefined };
}

/**
 * Kept-alive connections, one per agent, each pinned to a different worker: new connections
 * until `count` distinct workers answered (node:cluster's round robin alternates them).
 */
export async function pinnedToWorkers(
  base: string,
  count: number,
): Promise<{ agent: Agent; worker: string; localPort: number }[]> {
  const found = new Map<string, { agent: Agent; worker: string; localPort: number }>();
  for (let attempt = 0; attempt < 40 && found.size < count; attempt++) {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const answer = await workerOf(base, agent);
    if (answer.worker && !found.has(answer.worker))
      found.set(answer.worker, { agent, worker: answer.worker, localPort: answer.localPort });
    else agent.destroy();
  }
  if (found.size < count) throw new Error(`only ${found.size} distinct workers answered`);
  return [...found.values()];
}
