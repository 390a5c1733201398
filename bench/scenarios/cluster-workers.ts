import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { inflateRawSync } from 'node:zlib';
import selfsigned from 'selfsigned';
import { createApp as registerApp } from '../../src/apps/apps.service.js';
import { serviceProviderDetails } from '../../src/connections/sp.js';
import { ADMIN_TOKEN_PREFIX, generateToken } from '../../src/config/secrets.js';
import type { BenchResult, Scenario } from '../harness.js';
import { percentile } from '../harness.js';
import { openBenchDatabase } from '../support/bench-db.js';
import { idpMetadata, responseXml, runAll, signAssertion } from './saml-acs.js';
import { mintCodes, REDIRECT_URI, VERIFIER_CHALLENGE } from './tokens-code-exchange.js';

/**
 * Does a server use both cores? (issue 13, GATEHOUSE_WORKERS.) The built
 * server is started twice on one bench database, as `npm start` runs it:
 * GATEHOUSE_WORKERS=1 (one process, today's) and GATEHOUSE_WORKERS=2
 * (node:cluster, one port). The load comes from this process over HTTP with
 * keep-alive connections (Node's fetch), in interleaved rounds (1, 2, 1, 2)
 * so both see the same machine; each row is the 2-worker figure with the
 * 1-worker one as its ratio. Rows: SAML ACS logins (a pending login started
 * by a real GET /oauth/authorize, answered by a signed response), code
 * exchanges (confidential client) and introspections.
 *
 * On a machine with two cores the load generator shares them with the
 * server, so the ratio is below what two free cores would give. Round trips
 * are made by the server processes, not counted here (see saml-acs and
 * tokens-code-exchange for the per-request counts).
 */
const CONCURRENCY = Number(process.env.GATEHOUSE_BENCH_CLUSTER_CONCURRENCY ?? 16);
const ROUNDS = 2;
const LOGINS = Number(process.env.GATEHOUSE_BENCH_CLUSTER_LOGINS ?? 800);
const CODES = Number(process.env.GATEHOUSE_BENCH_CLUSTER_CODES ?? 2000);

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => resolve(typeof a === 'object' && a ? a.port : 0));
    });
  });
}

export interface ServerProcess {
  workers: number;
  url: string;
  child: ChildProcess;
  stop(): Promise<void>;
}

/**
 * The built server in a process of its own, as `npm start` runs it.
 * `options.baseUrl`: the public URL (issuer) when several nodes share one;
 * `options.name`: its data folder under `dir` (default `w<workers>`).
 */
export async function startServer(
  workers: number,
  env: Record<string, string>,
  dir: string,
  options: { baseUrl?: string; name?: string } = {},
): Promise<ServerProcess> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const main = path.resolve(import.meta.dirname, '..', '..', 'src', 'main.js');
  const child = spawn(process.execPath, ['--disable-proto=delete', main], {
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '/tmp',
      ...env,
      PORT: String(port),
      HOST: '127.0.0.1',
      GATEHOUSE_BASE_URL: options.baseUrl ?? url,
      GATEHOUSE_DATA_DIR: path.join(dir, options.name ?? `w${workers}`),
      GATEHOUSE_WORKERS: String(workers),
      LOG_LEVEL: 'warn',
      // Throughput is measured, not the limiters.
      GATEHOUSE_LOGIN_DISCOVERY_RATE_LIMIT: '100000000',
      GATEHOUSE_CLIENT_AUTH_FAILURE_LIMIT: '100000000',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr?.on('data', (c: Buffer) => (output += c.toString()));
  const until = Date.now() + 120_000;
  while (!/listening on/.test(output)) {
    if (child.exitCode !== null || Date.now() > until)
      throw new Error(`GATEHOUSE_WORKERS=${workers} did not start:\n${output}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  return {
    workers,
    url,
    child,
    stop: async () => {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

/** A 3xx's Location, or an error naming what came back. */
async function redirectOf(res: Response, what: string): Promise<string> {
  const location = res.headers.get('location');
  await res.arrayBuffer();
  if (res.status < 300 || res.status >= 400 || !location) throw new Error(`${what}: HTTP ${res.status}`);
  return location;
}

interface PendingLogin {
  cookie: string;
  samlResponse: string;
}

export const clusterWorkersScenario: Scenario = {
  name: 'cluster-workers',
  async run(): Promise<BenchResult[]> {
    const bench = await openBenchDatabase('cluster_workers');
    const dir = await mkdtemp(path.join(tmpdir(), 'gatehouse-bench-cluster-'));
    const adminToken = generateToken(ADMIN_TOKEN_PREFIX);
    const env = {
      DATABASE_URL: bench.ownerUrl,
      GATEHOUSE_DATABASE_APP_URL: bench.appUrl,
      GATEHOUSE_MASTER_KEY: randomBytes(32).toString('base64url'),
      GATEHOUSE_ADMIN_TOKEN: adminToken,
    };
    const servers: ServerProcess[] = [];
    try {
      // One after the other: the first initialises the installation, the second joins it.
      servers.push(await startServer(1, env, dir));
      servers.push(await startServer(2, env, dir));
      const [one, two] = servers as [ServerProcess, ServerProcess];

      // The operator's setup, once, through the first server's admin API.
      const admin = async (method: string, pathname: string, body: unknown) => {
        const res = await fetch(`${one.url}/admin/v1${pathname}`, {
          method,
          headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
          body: JSON.stringify(body),
        });
        const json = (await res.json()) as Record<string, unknown>;
        if (res.status >= 300) throw new Error(`admin ${pathname}: ${res.status} ${JSON.stringify(json)}`);
        return json;
      };
      const pems = await selfsigned.generate([{ name: 'commonName', value: 'bench-idp' }], {
        keyType: 'rsa',
        keySize: 2048,
        algorithm: 'sha256',
      });
      const idpEntityId = 'https://bench.idp.test/metadata';
      const tenant = await admin('POST', '/tenants', { slug: 'bench', name: 'Bench' });
      const tenantId = String(tenant.id);
      const domain = await admin('POST', `/tenants/${tenantId}/domains`, { domain: 'bench.test' });
      await admin('POST', `/tenants/${tenantId}/domains/${String(domain.id)}/verify`, {
        method: 'manual',
        reason: 'benchmark',
      });
      const connection = await admin('POST', `/tenants/${tenantId}/connections`, {
        type: 'saml',
        name: 'Bench IdP',
        metadata_xml: idpMetadata(idpEntityId, pems.cert),
        status: 'active',
      });
      const connectionId = String(connection.id);
      const ctx = { actor: { type: 'operator' as const, id: 'bench' } };
      const app = await registerApp(bench.db, { name: 'Web', redirect_uris: [REDIRECT_URI] }, ctx);
      const basic = `Basic ${Buffer.from(`${app.client_id}:${app.client_secret}`).toString('base64')}`;

      /** A login started for real (GET /oauth/authorize → the IdP), answered by a signed response. */
      const startLogin = async (server: ServerProcess): Promise<PendingLogin> => {
        let url = new URL(`${server.url}/oauth/authorize`);
        url.search = new URLSearchParams({
          client_id: app.client_id,
          redirect_uri: REDIRECT_URI,
          response_type: 'code',
          scope: 'openid email',
          state: randomBytes(8).toString('hex'),
          code_challenge: VERIFIER_CHALLENGE.challenge,
          code_challenge_method: 'S256',
          login_hint: 'person@bench.test',
        }).toString();
        const cookies = new Map<string, string>();
        for (let hop = 0; hop < 6; hop++) {
          const res = await fetch(url, {
            redirect: 'manual',
            headers: { cookie: [...cookies].map(([k, v]) => `${k}=${v}`).join('; ') },
          });
          for (const line of res.headers.getSetCookie()) {
            const [pair = ''] = line.split(';');
            const eq = pair.indexOf('=');
            if (eq > 0) cookies.set(pair.slice(0, eq).trim(), pair.slice(eq + 1).trim());
          }
          url = new URL(await redirectOf(res, 'authorize'), url);
          if (url.hostname !== '127.0.0.1') break;
        }
        // HTTP-Redirect binding (SAML Bindings §3.4.4.1): base64 of raw DEFLATE.
        const request = inflateRawSync(
          Buffer.from(url.searchParams.get('SAMLRequest') ?? '', 'base64'),
        ).toString();
        const requestId = /\sID="([^"]+)"/.exec(request)?.[1];
        if (!requestId) throw new Error(`no AuthnRequest at ${url.origin}`);
        const acsUrl = serviceProviderDetails(server.url, connectionId).acsUrl;
        const xml = signAssertion(
          responseXml({
            requestId,
            idpEntityId,
            spEntityId: serviceProviderDetails(server.url, connectionId).entityId,
            acsUrl,
            nameId: 'person@bench.test',
            now: new Date(),
          }),
          pems.private,
          pems.cert,
        );
        return {
          cookie: [...cookies].map(([k, v]) => `${k}=${v}`).join('; '),
          samlResponse: Buffer.from(xml).toString('base64'),
        };
      };
      const acs = (server: ServerProcess) => async (login: PendingLogin) => {
        const res = await fetch(serviceProviderDetails(server.url, connectionId).acsUrl, {
          method: 'POST',
          redirect: 'manual',
          headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: login.cookie },
          body: new URLSearchParams({ SAMLResponse: login.samlResponse }).toString(),
        });
        const location = await redirectOf(res, 'ACS');
        if (/error/.test(location)) throw new Error(`ACS refused the login: ${location}`);
      };
      const exchange = (server: ServerProcess, sink: string[]) => async (code: string) => {
        const res = await fetch(`${server.url}/oauth/token`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic },
          body: new URLSearchParams({
            grant_type: 'authorization_code',
            code,
            redirect_uri: REDIRECT_URI,
            code_verifier: VERIFIER_CHALLENGE.verifier,
          }).toString(),
        });
        const body = (await res.json()) as { access_token?: string };
        if (res.status !== 200 || !body.access_token) throw new Error(`exchange: HTTP ${res.status}`);
        sink.push(body.access_token);
      };
      const introspect = (server: ServerProcess) => async (token: string) => {
        const res = await fetch(`${server.url}/oauth/introspect`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic },
          body: new URLSearchParams({ token }).toString(),
        });
        const body = (await res.json()) as { active?: boolean };
        if (res.status !== 200 || body.active !== true) throw new Error(`introspect: HTTP ${res.status}`);
      };

      /** Items per server and round, then A/B/A/B timing of `fn`; the per-server rates and latencies. */
      const compare = async <T>(
        items: Map<ServerProcess, T[]>,
        fn: (s: ServerProcess) => (item: T) => Promise<void>,
      ) => {
        const stats = new Map<ServerProcess, { ms: number; n: number; latencies: number[] }>();
        for (const s of servers) stats.set(s, { ms: 0, n: 0, latencies: [] });
        for (let r = 0; r < ROUNDS; r++) {
          for (const s of servers) {
            const all = items.get(s) ?? [];
            const size = Math.ceil(all.length / ROUNDS);
            const part = all.slice(r * size, (r + 1) * size);
            const stat = stats.get(s);
            if (!stat) continue;
            const call = fn(s);
            const start = performance.now();
            await runAll(part, CONCURRENCY, async (item) => {
              const t0 = performance.now();
              await call(item);
              stat.latencies.push(performance.now() - t0);
            });
            stat.ms += performance.now() - start;
            stat.n += part.length;
          }
        }
        const rate = (s: ServerProcess) => {
          const st = stats.get(s);
          return st ? st.n / (st.ms / 1000) : NaN;
        };
        const lat = stats.get(two)?.latencies.sort((a, b) => a - b) ?? [];
        return { one: rate(one), two: rate(two), p50: percentile(lat, 50), p99: percentile(lat, 99) };
      };

      // Warm-up of each server's workers (JIT user creation, key loading, caches).
      for (const s of servers) {
        const warm: PendingLogin[] = [];
        for (let i = 0; i < 20; i++) warm.push(await startLogin(s));
        await runAll(warm, 4, acs(s));
      }
      const logins = new Map<ServerProcess, PendingLogin[]>();
      for (const s of servers) {
        const list: PendingLogin[] = [];
        await runAll(
          Array.from({ length: LOGINS }, (_, i) => i),
          8,
          async () => void list.push(await startLogin(s)),
        );
        logins.set(s, list);
      }
      const acsRates = await compare(logins, acs);

      const person = {
        tenantId,
        connectionId,
        userId: await bench.db.withTenant(tenantId, async (em) => {
          const rows = await em.query<{ id: string }[]>(
            `SELECT id FROM users WHERE user_name = 'person@bench.test'`,
          );
          return rows[0]?.id ?? '';
        }),
      };
      const codes = new Map<ServerProcess, string[]>();
      for (const s of servers) codes.set(s, await mintCodes(bench.db, person, app.client_id, CODES));
      const tokens = new Map<ServerProcess, string[]>(servers.map((s) => [s, [] as string[]]));
      const exchangeRates = await compare(codes, (s) => exchange(s, tokens.get(s) ?? []));
      const introspectionRates = await compare(tokens, introspect);

      const row = (
        what: string,
        unit: string,
        r: { one: number; two: number; p50: number; p99: number },
      ): BenchResult => ({
        name: `${what}, GATEHOUSE_WORKERS=2 (${CONCURRENCY} in flight over HTTP, ${ROUNDS} interleaved rounds)`,
        unit,
        value: r.two,
        baseline: { name: 'GATEHOUSE_WORKERS=1 on the same machine', value: r.one },
        extra: { p50_ms: r.p50, p99_ms: r.p99 },
      });
      return [
        row('SAML ACS logins (real pending logins, real completer)', 'logins/s', acsRates),
        row('code exchanges at /oauth/token (confidential client, PKCE)', 'ops/s', exchangeRates),
        row('introspections at /oauth/introspect', 'ops/s', introspectionRates),
      ];
    } finally {
      for (const s of servers) await s.stop();
      await bench.close();
      await rm(dir, { recursive: true, force: true });
    }
  },
};
