import { createHash, randomBytes, randomUUID } from 'node:crypto';
import http, { type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import * as jose from 'jose';
import { createApp } from '../../src/app.js';
import { parseConfig } from '../../src/config/config.js';
import { ADMIN_TOKEN_PREFIX, generateToken, type Secrets } from '../../src/config/secrets.js';
import { createDataSource } from '../../src/db/data-source.js';
import { Database } from '../../src/db/database.js';
import { CHANNELS, NotificationBus, notifyInTransaction } from '../../src/db/notification-bus.js';
import { ENTITIES } from '../../src/entities.js';
import { createLogger } from '../../src/http/logger.js';
import { logoutTokenClaims, startLogoutDelivery } from '../../src/sessions/backchannel-logout.js';
import { parseSessionsRevoked } from '../../src/sessions/session-events.js';
import { createSession } from '../../src/sessions/sessions.service.js';
import { createApp as registerApp } from '../../src/apps/apps.service.js';
import { CODE_PREFIX, mintSessionToken } from '../../src/tokens/grants/opaque-tokens.js';
import { createSigningKeyStore, type SigningKeyStore } from '../../src/tokens/keys/key-store.js';
import type { BenchResult, Scenario } from '../harness.js';
import { percentile } from '../harness.js';
import { openBenchDatabase, type BenchDatabase } from '../support/bench-db.js';
import { createTenantWithToken, envCount, scimFetch, sorted } from './scim-bench-support.js';

export const REDIRECT_URI = 'http://localhost:3000/callback';
export const VERIFIER = randomBytes(32).toString('base64url');
const CHALLENGE = createHash('sha256').update(VERIFIER).digest('base64url');
const WARMUP = 10;

/**
 * Revocation propagation as the main app sees it (GATEHOUSE_BENCH_SCIM_TRIALS
 * trials, default 200, after a warm-up): two nodes wired as main.ts wires one
 * (own pool, LISTEN connection, key store, back-channel logout worker) behind
 * one issuer. Per trial a SCIM-provisioned person gets real tokens from node
 * 1's token endpoint; the IdP's SCIM `active:false` goes to node 1; from its
 * response we time (a) introspection over HTTP on node 2 answering inactive
 * (asked until it does) and (b) the logout token reaching the app's receiver.
 * Floors, per trial in the same run: (a) the same introspection call on node 2
 * answering active just before; (b) signing a logout token with the same keys
 * and POSTing it straight to the receiver. Node 2 also hears the NOTIFY; a
 * bare committed NOTIFY between the nodes is reported beside it.
 */
export const scimRevocationScenario: Scenario = {
  name: 'scim-revocation',
  async run(): Promise<BenchResult[]> {
    const trials = envCount('GATEHOUSE_BENCH_SCIM_TRIALS', 200);
    const bench = await openBenchDatabase('scim_revocation');
    const receiver = await startReceiver();
    const one = await startNode(bench);
    const two = await startNode(bench, one);
    const heard = new Arrivals();
    const off = two.bus.on(CHANNELS.sessionsRevoked, (payload) => {
      const event = parseSessionsRevoked(payload);
      if (event) heard.record(event.user_id);
    });
    try {
      const { tenantId, token } = await createTenantWithToken(one.db);
      const scimBase = `${one.url}/scim/v2/${tenantId}`;
      const app = await registerApp(
        one.db,
        { name: 'Bench app', redirect_uris: [REDIRECT_URI], backchannel_logout_uri: receiver.url },
        { actor: { type: 'operator', id: 'bench' } },
      );
      const basic = `Basic ${Buffer.from(`${app.client_id}:${app.client_secret ?? ''}`).toString('base64')}`;
      const form = async (node: Node, path: string, fields: Record<string, string>) => {
        const res = await fetch(`${node.url}${path}`, {
          method: 'POST',
          headers: { authorization: basic, 'content-type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams(fields).toString(),
        });
        const body = (await res.json()) as Record<string, unknown>;
        return { status: res.status, body, at: performance.now() };
      };

      const m = {
        introspect: [] as number[],
        introspectFloor: [] as number[],
        logout: [] as number[],
        logoutSinceRequest: [] as number[],
        logoutFloor: [] as number[],
        notified: [] as number[],
        notifyFloor: [] as number[],
        asks: 0,
        refreshRefused: 0,
      };
      for (let i = 0; i < WARMUP + trials; i++) {
        const record = i >= WARMUP;
        const created = await scimFetch(scimBase, token, 'POST', '/Users', {
          schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'],
          userName: `leaver${i}@bench.test`,
        });
        const userId = String(created.body.id);
        // A code as /oauth/authorize/continue leaves it after the IdP round trip, exchanged for real tokens.
        const code = await mintCode(one.db, tenantId, userId, app.client_id);
        const tokens = await form(one, '/oauth/token', {
          grant_type: 'authorization_code',
          code: code.token,
          redirect_uri: REDIRECT_URI,
          code_verifier: VERIFIER,
        });
        if (tokens.status !== 200) throw new Error(`code exchange: HTTP ${tokens.status}`);
        const accessToken = String(tokens.body.access_token);
        const refreshToken = String(tokens.body.refresh_token);

        const floorStart = performance.now();
        const live = await form(two, '/oauth/introspect', { token: accessToken });
        if (live.body.active !== true) throw new Error('introspection floor: token not active');
        const introspectFloor = live.at - floorStart;

        const res = await scimFetch(scimBase, token, 'PATCH', `/Users/${userId}`, {
          schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'],
          Operations: [{ op: 'replace', path: 'active', value: false }],
        });
        if (res.status !== 200) throw new Error(`deactivate: HTTP ${res.status}`);
        let answer = await form(two, '/oauth/introspect', { token: accessToken });
        let asks = 1;
        while (answer.body.active !== false) {
          if (performance.now() - res.receivedAt > 10_000) throw new Error('never inactive on node 2');
          answer = await form(two, '/oauth/introspect', { token: accessToken });
          asks++;
        }
        const loggedOut = await receiver.arrivals.when(code.sessionId);
        const notified = await heard.when(userId);
        const refresh = await form(two, '/oauth/token', {
          grant_type: 'refresh_token',
          refresh_token: refreshToken,
        });

        const { notifyFloor, logoutFloor } = await floors(one, receiver, app.client_id, `floor-${i}`, heard);
        if (!record) continue;
        m.introspect.push(answer.at - res.receivedAt);
        m.introspectFloor.push(introspectFloor);
        m.logout.push(Math.max(0, loggedOut - res.receivedAt));
        m.logoutSinceRequest.push(loggedOut - (res.receivedAt - res.ms));
        m.logoutFloor.push(logoutFloor);
        m.notified.push(Math.max(0, notified - res.receivedAt));
        m.notifyFloor.push(notifyFloor);
        m.asks += asks;
        if (refresh.status === 400 && refresh.body.error === 'invalid_grant') m.refreshRefused++;
      }

      const p = (values: number[], q: number) => percentile(sorted(values), q);
      return [
        {
          name: `SCIM active:false on node 1 → introspection on node 2 answers inactive (ms after the SCIM response, ${trials} trials)`,
          unit: 'ms p99',
          value: p(m.introspect, 99),
          baseline: {
            name: 'one introspection call on node 2 (active token), p99',
            value: p(m.introspectFloor, 99),
          },
          extra: {
            p50_ms: p(m.introspect, 50),
            floor_p50_ms: p(m.introspectFloor, 50),
            inactive_at_first_ask: trials / m.asks,
            refresh_refused_on_node2: m.refreshRefused / trials,
          },
        },
        {
          name: `SCIM active:false on node 1 → back-channel logout received by the app (ms after the SCIM response, ${trials} trials)`,
          unit: 'ms p99',
          value: p(m.logout, 99),
          baseline: {
            name: 'signing a logout token and POSTing it to the receiver, p99',
            value: p(m.logoutFloor, 99),
          },
          extra: {
            p50_ms: p(m.logout, 50),
            floor_p50_ms: p(m.logoutFloor, 50),
            p99_ms_since_scim_request: p(m.logoutSinceRequest, 99),
            node2_notified_p50_ms: p(m.notified, 50),
            node2_notified_p99_ms: p(m.notified, 99),
            bare_notify_p99_ms: p(m.notifyFloor, 99),
          },
        },
      ];
    } finally {
      off();
      await one.close();
      await two.close();
      await receiver.close();
      await bench.close();
    }
  },
};

/** The two floors of one trial: a bare committed NOTIFY node 1 → node 2; a direct logout POST. */
async function floors(one: Node, receiver: Receiver, appId: string, marker: string, heard: Arrivals) {
  const start = performance.now();
  await one.db.withPlatform((em) =>
    notifyInTransaction(
      em,
      CHANNELS.sessionsRevoked,
      JSON.stringify({ tenant_id: marker, user_id: marker, session_ids: [] }),
    ),
  );
  const notifyFloor = (await heard.when(marker)) - start;
  const postStart = performance.now();
  const logoutToken = await one.keys.sign(
    logoutTokenClaims({
      issuer: one.baseUrl,
      appId,
      userId: marker,
      sessionId: marker,
      now: new Date(),
      ttlSeconds: 120,
    }),
    { alg: 'ES256', typ: 'logout+jwt' },
  );
  const res = await fetch(receiver.url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ logout_token: logoutToken }).toString(),
  });
  await res.arrayBuffer();
  const logoutFloor = (await receiver.arrivals.when(marker)) - postStart;
  return { notifyFloor, logoutFloor };
}

/** A session and an unused PKCE code for it, as the authorize endpoint leaves them. */
export async function mintCode(db: Database, tenantId: string, userId: string, appId: string) {
  return db.withTenant(tenantId, async (em) => {
    const session = await createSession(em, tenantId, {
      userId,
      appId,
      connectionId: null,
      authTime: new Date(),
      ttlSeconds: 3600,
    });
    const { token, hash } = mintSessionToken(CODE_PREFIX, session.id);
    await em.query(
      `INSERT INTO authorization_codes (tenant_id, id, session_id, app_id, code_hash, redirect_uri, scope,
         code_challenge, code_challenge_method, expires_at)
       VALUES ($1, $2, $3, $4, $5, $6, 'openid email profile', $7, 'S256', now() + interval '1 hour')`,
      [tenantId, randomUUID(), session.id, appId, hash, REDIRECT_URI, CHALLENGE],
    );
    return { token, sessionId: session.id };
  });
}

interface Node {
  url: string;
  baseUrl: string;
  secrets: Secrets;
  db: Database;
  bus: NotificationBus;
  keys: SigningKeyStore;
  close(): Promise<void>;
}

/** A node as main.ts wires it; a second one shares the first's public URL (issuer) and secrets. */
async function startNode(bench: BenchDatabase, first?: Node): Promise<Node> {
  // The port is known only once listening, and the app needs it as its base URL.
  const target: { handler?: http.RequestListener } = {};
  const server: Server = http.createServer((req, res) => target.handler?.(req, res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const config = parseConfig({
    GATEHOUSE_BASE_URL: first?.baseUrl ?? url,
    LOG_LEVEL: 'silent',
    // The benchmark measures propagation, not the limiter.
    GATEHOUSE_SCIM_RATE_LIMIT: '1000000000',
  });
  const secrets = first?.secrets ?? {
    adminToken: generateToken(ADMIN_TOKEN_PREFIX),
    masterKey: randomBytes(32),
    adminTokenGenerated: false,
  };
  const ds = createDataSource({ url: bench.appUrl, entities: ENTITIES, poolSize: 20 });
  await ds.initialize();
  const db = new Database(ds);
  const bus = new NotificationBus({ url: bench.appUrl });
  await bus.start();
  const keys = createSigningKeyStore(config, db, secrets.masterKey);
  const delivery = startLogoutDelivery({
    db,
    signer: keys,
    issuer: config.baseUrl,
    notifications: bus,
    maxAttempts: config.backchannelLogout.maxAttempts,
    timeoutMs: config.backchannelLogout.timeoutSeconds * 1000,
  });
  const logger = createLogger('silent');
  target.handler = createApp({ config, db, secrets, logger, signingKeys: keys, notifications: bus });
  return {
    url,
    baseUrl: config.baseUrl,
    secrets,
    db,
    bus,
    keys,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await delivery.stop();
      await bus.close();
      await db.close();
    },
  };
}

/** When each awaited key arrived (performance.now()), resolved as soon as it does. */
export class Arrivals {
  private readonly times = new Map<string, number>();
  private readonly waiting = new Map<string, (at: number) => void>();
  record(key: string): void {
    const at = performance.now();
    this.times.set(key, at);
    this.waiting.get(key)?.(at);
  }
  when(key: string, ms = 10_000): Promise<number> {
    const at = this.times.get(key);
    if (at !== undefined) return Promise.resolve(at);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`nothing arrived for ${key}`)), ms);
      this.waiting.set(key, (t) => {
        clearTimeout(timer);
        this.waiting.delete(key);
        resolve(t);
      });
    });
  }
}

export interface Receiver {
  url: string;
  arrivals: Arrivals;
  close(): Promise<void>;
}

/** The main app's back-channel logout endpoint: records when each `sid` arrived. */
export async function startReceiver(): Promise<Receiver> {
  const arrivals = new Arrivals();
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      const token = new URLSearchParams(body).get('logout_token') ?? '';
      const sid = jose.decodeJwt(token).sid;
      if (typeof sid === 'string') arrivals.record(sid);
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/backchannel-logout`,
    arrivals,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
