import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { connect } from 'node:net';

/**
 * How does the multi-node test run the load balancer the deployment ships?
 * Debian's haproxy, started with a configuration generated from
 * deploy/haproxy.cfg itself: only the listening address and the `server`
 * lines change (the nodes are loopback processes here, containers in
 * docker-compose.yml), plus a stats socket the test reads the health-check
 * state from. Everything else — balancing, health checks, retries,
 * redispatch, X-Forwarded-For — is the shipped file's.
 */

const HINT =
  'the multi-node test (npm run test:interop) needs Debian’s haproxy on PATH: ' +
  'apt-get install -y haproxy (.ci/run installs it when missing)';

/** The `haproxy -v` banner; throws, never skips, when haproxy is not installed. */
export function haproxyVersion(): string {
  const probe = spawnSync('haproxy', ['-v'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0)
    throw new Error(`haproxy not found (${probe.error?.message ?? `exit ${probe.status}`}): ${HINT}`);
  return probe.stdout.split('\n')[0] ?? '';
}

export interface BackendServer {
  name: string;
  /** host:port */
  address: string;
}

/**
 * The shipped configuration with the frontend's `bind` moved to `bindAddress`
 * and its `server` lines replaced by `servers` (each keeping the options of
 * the shipped file's first `server` line, e.g. `check`). Throws when the
 * shipped file no longer has the shape this rewrite relies on, so a change to
 * it cannot make the test silently test something else.
 */
export function configFromShipped(
  shipped: string,
  options: { bindAddress: string; servers: BackendServer[]; statsSocket: string },
): string {
  const lines = shipped.split('\n');
  const bind = lines.flatMap((line, i) => (/^\s*bind\s/.test(line) ? [i] : []));
  const server = lines.flatMap((line, i) => (/^\s*server\s/.test(line) ? [i] : []));
  const global = lines.findIndex((line) => /^global\s*$/.test(line));
  if (bind.length !== 1 || server.length === 0 || global < 0)
    throw new Error(
      `deploy/haproxy.cfg changed shape: expected one bind line, server lines and a global section (found ${bind.length} bind, ${server.length} server)`,
    );
  const bindLine = lines[bind[0] ?? 0] ?? '';
  const firstServer = lines[server[0] ?? 0] ?? '';
  // `  server node1 gatehouse-1:8080 check …`: indentation, then name and address, then the options to keep.
  const [, indent = '', serverOptions = ''] = /^(\s*)server\s+\S+\s+\S+\s*(.*)$/.exec(firstServer) ?? [];
  const out: string[] = [];
  lines.forEach((line, i) => {
    if (i === bind[0]) {
      const [, bindIndent = ''] = /^(\s*)/.exec(bindLine) ?? [];
      out.push(`${bindIndent}bind ${options.bindAddress}`);
    } else if (i === server[0]) {
      for (const s of options.servers)
        out.push(`${indent}server ${s.name} ${s.address}${serverOptions ? ` ${serverOptions}` : ''}`);
    } else if (!server.includes(i)) out.push(line);
    // Added for the test only: the stats socket the health-check state is read from.
    if (i === global) out.push(`  stats socket ${options.statsSocket} mode 600 level user`);
  });
  return out.join('\n');
}

/** `haproxy -c`: the configuration is valid for the installed haproxy. */
export function checkConfig(file: string): { ok: boolean; output: string } {
  const r = spawnSync('haproxy', ['-c', '-f', file], { encoding: 'utf8' });
  return { ok: r.status === 0, output: `${r.stdout}${r.stderr}` };
}

export interface Haproxy {
  child: ChildProcess;
  /** Everything haproxy logged (with `option httplog`, one line per request). */
  output: () => string;
  /** The backend's servers as the health checks see them. */
  servers: () => Promise<ServerState[]>;
  stop: () => Promise<void>;
}

export interface ServerState {
  name: string;
  /** UP, DOWN, … */
  status: string;
  /** L7OK when the last /readyz check answered as `http-check expect` wants. */
  checkStatus: string;
  /** The HTTP status of the last check. */
  checkCode: string;
}

/** haproxy in the foreground (-db), as the haproxy image runs it. */
export function startHaproxy(configFile: string, statsSocket: string, backend: string): Haproxy {
  const child = spawn('haproxy', ['-db', '-f', configFile], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout?.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr?.on('data', (c: Buffer) => (output += c.toString()));
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  return {
    child,
    output: () => output,
    servers: async () => parseStat(await statsCommand(statsSocket, 'show stat'), backend),
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

function statsCommand(socket: string, command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let answer = '';
    const s = connect(socket, () => s.end(`${command}\n`));
    // A stats socket that never answers fails the caller's bounded wait instead of hanging it.
    s.setTimeout(5_000, () => s.destroy(new Error(`no answer from haproxy's stats socket ${socket}`)));
    s.on('data', (c: Buffer) => (answer += c.toString()));
    s.on('end', () => resolve(answer));
    s.on('error', reject);
  });
}

/** `show stat` is CSV whose header line starts with `# `; columns are found by name. */
function parseStat(csv: string, backend: string): ServerState[] {
  const [header, ...rows] = csv.trim().split('\n');
  const columns = (header ?? '').replace(/^# /, '').split(',');
  const at = (row: string[], name: string) => row[columns.indexOf(name)] ?? '';
  return rows
    .map((r) => r.split(','))
    .filter((r) => at(r, 'pxname') === backend && !['FRONTEND', 'BACKEND'].includes(at(r, 'svname')))
    .map((r) => ({
      name: at(r, 'svname'),
      status: at(r, 'status'),
      checkStatus: at(r, 'check_status'),
      checkCode: at(r, 'check_code'),
    }));
}

const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** Which backend server served each request whose line starts with `request` (e.g. `GET /login`), per haproxy's httplog. */
export function serversThatServed(log: string, backend: string, request: string): string[] {
  const served: string[] = [];
  for (const line of log.split('\n')) {
    const m = new RegExp(`\\s${escape(backend)}/(\\S+)\\s.*"${escape(request)}`).exec(line);
    if (m?.[1]) served.push(m[1]);
  }
  return served;
}
