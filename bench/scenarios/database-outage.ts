import { randomBytes, randomUUID } from 'node:crypto';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import http from 'node:http';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { ADMIN_TOKEN_PREFIX, generateToken } from '../../src/config/secrets.js';
import { APP_ROLE, provisionOwner, withCredentials } from '../../src/db/bootstrap.js';
import { startEmbeddedPostgres, type EmbeddedDatabase } from '../../src/db/embedded.js';
import type { BenchResult, Scenario } from '../harness.js';

/**
 * PostgreSQL stopped and started under load (issue 11, "Database outages";
 * docs/operations.md). The built server, as `npm start` runs it, on a cluster
 * of its own; GATEHOUSE_BENCH_OUTAGE_CLIENTS (default 8) clients run SCIM user
 * creations (unique userNames) and token introspections (client
 * authentication reads the database) for GATEHOUSE_BENCH_OUTAGE_SECONDS
 * (default 4) before, GATEHOUSE_BENCH_OUTAGE_DOWN_SECONDS (default 5) during
 * and 6 s after an outage. Just before it, people with open sessions are
 * deprovisioned while the app's back-channel logout receiver answers 500, so
 * their logouts wait in the outbox across the outage.
 *
 * Reported: answers by status and phase (during the outage every answer must
 * be a 503, never a 500 or a hang; a request sent before it and answered once
 * it began is counted during it), time from the database's restart to the
 * first full second of 2xx answers, users lost (a 201 whose user is missing)
 * or duplicated (a userName stored twice) — both must be 0 — and the logouts
 * delivered after recovery out of those queued. The baseline is the
 * throughput before the outage, so "after / before" says whether the node
 * came back to full speed.
 */

const CLIENTS = Number(process.env.GATEHOUSE_BENCH_OUTAGE_CLIENTS ?? 8);
const BEFORE_S = Number(process.env.GATEHOUSE_BENCH_OUTAGE_SECONDS ?? 4);
const DOWN_S = Number(process.env.GATEHOUSE_BENCH_OUTAGE_DOWN_SECONDS ?? 5);
const AFTER_S = 6;
const SESSIONS = 10;

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

type Phase = 'before' | 'during' | 'after';
interface Answer {
  phase: Phase;
  at: number;
  status: number;
  kind: 'scim' | 'introspect';
  userName?: string;
}

export const databaseOutage: Scenario = {
  name: 'database outage: stop and start PostgreSQL under SCIM + token load',
  async run(): Promise<BenchResult[]> {
    const parent = await mkdtemp(path.join(tmpdir(), 'gatehouse-bench-outage-'));
    const pgPort = await freePort();
    const pgPassword = randomBytes(16).toString('hex');
    const startCluster = () =>
      startEmbeddedPostgres({
        dir: path.join(parent, 'pg'),
        port: pgPort,
        password: pgPassword,
        settings: { fsync: 'off' },
      });
    let cluster: EmbeddedDatabase = await startCluster();
    const ownerUrl = await provisionOwner(cluster.superuserUrl, {
      database: 'gatehouse',
      ownerPassword: randomBytes(16).toString('hex'),
    });

    // The app's back-channel logout receiver: 500 until the outage is over.
    let logoutStatus = 500;
    let logoutsReceived = 0;
    const receiver = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        if (logoutStatus === 200) logoutsReceived++;
        res.writeHead(logoutStatus).end();
      });
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    const receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/logout`;

    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    const adminToken = generateToken(ADMIN_TOKEN_PREFIX);
    const dataDir = path.join(parent, 'data');
    const child: ChildProcess = spawn(process.execPath, ['--disable-proto=delete', 'dist/src/main.js'], {
      env: {
        PATH: process.env.PATH ?? '',
        HOME: process.env.HOME ?? '/tmp',
        DATABASE_URL: ownerUrl,
        PORT: String(port),
        HOST: '127.0.0.1',
        GATEHOUSE_BASE_URL: base,
        GATEHOUSE_DATA_DIR: dataDir,
        GATEHOUSE_ADMIN_TOKEN: adminToken,
        // The receiver is on loopback over http: a development setting, for the bench only.
        GATEHOUSE_ALLOW_PRIVATE_METADATA_URLS: 'true',
        GATEHOUSE_SCIM_RATE_LIMIT: '1000000',
        GATEHOUSE_CLIENT_AUTH_FAILURE_LIMIT: '1000000',
        GATEHOUSE_CLIENT_AUTH_FAILURE_LIMIT_PER_CLIENT: '1000000',
        LOG_LEVEL: 'error',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout?.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr?.on('data', (c: Buffer) => (output += c.toString()));
    const until = Date.now() + 90_000;
    while (!/listening on/.test(output)) {
      if (Date.now() > until || child.exitCode !== null)
        throw new Error(`the server did not start:\n${output}`);
      await new Promise((r) => setTimeout(r, 100));
    }

    const call = async (method: string, url: string, headers: Record<string, string>, body?: string) => {
      try {
        const res = await fetch(url, { method, headers, body, signal: AbortSignal.timeout(20_000) });
        await res.arrayBuffer();
        return res.status;
      } catch {
        return 0; // no answer at all: a refused connection or a timeout
      }
    };
    const admin = async (method: string, p: string, body?: unknown) => {
      const res = await fetch(`${base}/admin/v1${p}`, {
        method,
        headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      if (!res.ok) throw new Error(`${method} ${p}: ${res.status} ${await res.text()}`);
      return (await res.json()) as Record<string, unknown>;
    };

    const tenant = await admin('POST', '/tenants', { slug: 'acme', name: 'Acme' });
    const tenantId = String(tenant.id);
    const scim = await admin('POST', `/tenants/${tenantId}/scim-tokens`, { description: 'bench' });
    const scimBase = String(scim.scim_base_url);
    const scimHeaders = {
      authorization: `Bearer ${String(scim.token)}`,
      'content-type': 'application/scim+json',
    };
    const app = await admin('POST', '/apps', {
      name: 'Main app',
      client_type: 'confidential',
      redirect_uris: ['http://localhost:3000/callback'],
      backchannel_logout_uri: receiverUrl,
    });
    const basic = Buffer.from(`${String(app.client_id)}:${String(app.client_secret)}`).toString('base64');
    const introspectHeaders = {
      authorization: `Basic ${basic}`,
      'content-type': 'application/x-www-form-urlencoded',
    };

    // People with open sessions in the app (as a sign-in leaves them), deprovisioned just before the outage.
    const appPassword = (await readFile(path.join(dataDir, 'db-app-password'), 'utf8')).trim();
    const direct = new pg.Client({ connectionString: withCredentials(ownerUrl, APP_ROLE, appPassword) });
    await direct.connect();
    const people: string[] = [];
    for (let i = 0; i < SESSIONS; i++) {
      const res = await fetch(`${scimBase}/Users`, {
        method: 'POST',
        headers: scimHeaders,
        body: JSON.stringify({ userName: `session-${i}@acme.test`, active: true }),
      });
      const id = String(((await res.json()) as { id: string }).id);
      people.push(id);
      await direct.query('BEGIN');
      await direct.query(`SELECT set_config('app.tenant_id', $1, true)`, [tenantId]);
      await direct.query(
        `INSERT INTO sessions (tenant_id, id, user_id, app_id, connection_id, auth_time, created_at, expires_at)
         VALUES ($1, $2, $3, $4, NULL, now(), now(), now() + interval '1 hour')`,
        [tenantId, randomUUID(), id, String(app.client_id)],
      );
      await direct.query('COMMIT');
    }
    await direct.end();

    let phase: Phase = 'before';
    const answers: Answer[] = [];
    let running = true;
    const t0 = performance.now();
    const clients = Array.from({ length: CLIENTS }, async (_, c) => {
      let n = 0;
      while (running) {
        const at = performance.now() - t0;
        const issuedIn = phase;
        // A request sent before the outage and answered once it began met the outage: it is counted there.
        const phaseOf = () => (issuedIn === 'before' && phase !== 'before' ? 'during' : issuedIn);
        if (n % 2 === 0) {
          const userName = `load-${c}-${n}@acme.test`;
          const status = await call(
            'POST',
            `${scimBase}/Users`,
            scimHeaders,
            JSON.stringify({ userName, active: true }),
          );
          answers.push({ phase: phaseOf(), at, status, kind: 'scim', userName });
        } else {
          const status = await call(
            'POST',
            `${base}/oauth/introspect`,
            introspectHeaders,
            `token=${randomBytes(16).toString('hex')}`,
          );
          answers.push({ phase: phaseOf(), at, status, kind: 'introspect' });
        }
        n++;
      }
    });

    await new Promise((r) => setTimeout(r, BEFORE_S * 1000));
    for (const id of people)
      await fetch(`${scimBase}/Users/${id}`, {
        method: 'PATCH',
        headers: scimHeaders,
        body: JSON.stringify({
          schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'],
          Operations: [{ op: 'replace', path: 'active', value: false }],
        }),
      });
    phase = 'during';
    const downAt = performance.now() - t0;
    await cluster.stop();
    await new Promise((r) => setTimeout(r, DOWN_S * 1000));
    cluster = await startCluster();
    const upAt = performance.now() - t0;
    phase = 'after';
    logoutStatus = 200;
    await new Promise((r) => setTimeout(r, AFTER_S * 1000));
    running = false;
    await Promise.all(clients);
    // Give the outbox its retry backoff to deliver what waited across the outage.
    const logoutsUntil = Date.now() + 60_000;
    while (logoutsReceived < SESSIONS && Date.now() < logoutsUntil)
      await new Promise((r) => setTimeout(r, 200));

    // Users lost or duplicated: every 201 is stored exactly once; nothing is stored twice.
    const reader = new pg.Client({ connectionString: withCredentials(ownerUrl, APP_ROLE, appPassword) });
    await reader.connect();
    await reader.query('BEGIN');
    await reader.query(`SELECT set_config('app.tenant_id', $1, true)`, [tenantId]);
    const { rows } = await reader.query<{ user_name: string; n: number }>(
      `SELECT user_name, count(*)::int AS n FROM users WHERE user_name LIKE 'load-%' GROUP BY 1`,
    );
    await reader.query('COMMIT');
    await reader.end();
    const stored = new Map(rows.map((r) => [r.user_name, r.n]));
    const created = answers.filter((a) => a.kind === 'scim' && a.status === 201);
    const lost = created.filter((a) => !stored.has(a.userName ?? '')).length;
    const duplicated = [...stored.values()].filter((n) => n > 1).length;

    // Time to full recovery: from the restart to the start of the first second in which every answer was 2xx/401.
    const ok = (a: Answer) => (a.kind === 'scim' ? a.status === 201 : a.status === 200);
    const after = answers.filter((a) => a.phase === 'after').sort((x, y) => x.at - y.at);
    let recoveredAt = NaN;
    for (let s = upAt; s < upAt + AFTER_S * 1000; s += 100) {
      const window = after.filter((a) => a.at >= s && a.at < s + 1000);
      if (window.length > 0 && window.every(ok)) {
        recoveredAt = s;
        break;
      }
    }

    const byStatus = (p: Phase) => {
      const counts: Record<string, number> = {};
      for (const a of answers.filter((x) => x.phase === p))
        counts[String(a.status)] = (counts[String(a.status)] ?? 0) + 1;
      return Object.entries(counts)
        .map(([s, n]) => `${s}:${n}`)
        .join(' ');
    };
    const rate = (p: Phase, seconds: number) =>
      answers.filter((a) => a.phase === p && ok(a)).length / seconds;
    const during = answers.filter((a) => a.phase === 'during');
    const serverErrors = during.filter((a) => a.status >= 500 && a.status !== 503).length;
    const noAnswer = during.filter((a) => a.status === 0).length;

    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    await cluster.stop();
    receiver.close();
    await rm(parent, { recursive: true, force: true });

    const afterSteady = (upAt + AFTER_S * 1000 - (Number.isNaN(recoveredAt) ? upAt : recoveredAt)) / 1000;
    return [
      {
        name: 'throughput after recovery (2xx/s)',
        unit: 'req/s',
        value: after.filter((a) => a.at >= recoveredAt && ok(a)).length / Math.max(afterSteady, 0.001),
        baseline: { name: 'before the outage', value: rate('before', BEFORE_S) },
        extra: {
          'before (status:count)': byStatus('before'),
          'during (status:count)': byStatus('during'),
          'after (status:count)': byStatus('after'),
          'outage s': ((upAt - downAt) / 1000).toFixed(1),
          'recovery s (restart → a full second of 2xx)': Number.isNaN(recoveredAt)
            ? 'not recovered'
            : ((recoveredAt - upAt) / 1000).toFixed(2),
          '5xx other than 503 during': serverErrors,
          'no answer during': noAnswer,
          'users lost': lost,
          'users duplicated': duplicated,
          'logouts delivered after recovery': `${logoutsReceived}/${SESSIONS}`,
        },
      },
    ];
  },
};
