import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import * as jose from 'jose';
import { CHANNELS, notifyInTransaction } from '../../src/db/notification-bus.js';
import { logoutTokenClaims, startLogoutDelivery } from '../../src/sessions/backchannel-logout.js';
import { parseSessionsRevoked } from '../../src/sessions/session-events.js';
import { createSession, findActiveSession } from '../../src/sessions/sessions.service.js';
import type { TokenSigner } from '../../src/tokens/token-signer.js';
import type { BenchResult, Scenario } from '../harness.js';
import { percentile } from '../harness.js';
import { openBenchDatabase } from '../support/bench-db.js';
import { createTenantWithToken, envCount, scimFetch, sorted, startScimServer } from './scim-bench-support.js';

const ISSUER = 'http://127.0.0.1';

/**
 * Revocation propagation across two nodes (GATEHOUSE_BENCH_SCIM_TRIALS trials,
 * default 200): a SCIM `active:false` through node 1; node 2 hears it over
 * LISTEN/NOTIFY, and its delivery worker (woken by NOTIFY, no polling) POSTs
 * the back-channel logout to a receiver on loopback. Floors, same run: a bare
 * committed NOTIFY between the two nodes; signing and POSTing a logout token
 * directly to the same receiver.
 */
export const scimRevocationScenario: Scenario = {
  name: 'scim-revocation',
  async run(): Promise<BenchResult[]> {
    const trials = envCount('GATEHOUSE_BENCH_SCIM_TRIALS', 200);
    const bench = await openBenchDatabase('scim_revocation');
    const one = await startScimServer(bench);
    const two = await startScimServer(bench);
    const receiver = await startReceiver();
    const { privateKey } = await jose.generateKeyPair('ES256');
    const signer: TokenSigner = {
      sign: (payload, { alg, typ }) =>
        new jose.SignJWT(payload).setProtectedHeader({ alg, typ }).sign(privateKey),
    };
    const worker = startLogoutDelivery({
      db: two.db,
      signer,
      issuer: ISSUER,
      notifications: two.bus,
      pollIntervalMs: 600_000,
    });
    const heard = new Arrivals();
    const off = two.bus.on(CHANNELS.sessionsRevoked, (payload) => {
      const event = parseSessionsRevoked(payload);
      if (event) heard.record(event.user_id);
    });
    try {
      const { tenantId, token } = await createTenantWithToken(one.db);
      const base = `${one.url}/scim/v2/${tenantId}`;
      const appId = await one.db.withPlatform(async (em) => {
        const rows = await em.query<{ id: string }[]>(
          `INSERT INTO apps (name, backchannel_logout_uri) VALUES ('Bench app', $1) RETURNING id`,
          [receiver.url],
        );
        return rows[0]?.id ?? '';
      });

      const floorNotify: number[] = [];
      const floorPost: number[] = [];
      for (let i = 0; i < trials; i++) {
        const marker = `floor-${i}`;
        const start = performance.now();
        await one.db.withPlatform((em) =>
          notifyInTransaction(
            em,
            CHANNELS.sessionsRevoked,
            JSON.stringify({ tenant_id: marker, user_id: marker, session_ids: [] }),
          ),
        );
        floorNotify.push((await heard.when(marker)) - start);
        const postStart = performance.now();
        const logoutToken = await signer.sign(
          logoutTokenClaims({
            issuer: ISSUER,
            appId,
            userId: marker,
            sessionId: marker,
            now: new Date(),
            ttlSeconds: 120,
          }),
          { alg: 'ES256', typ: 'logout+jwt' },
        );
        await fetch(receiver.url, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams({ logout_token: logoutToken }).toString(),
        });
        floorPost.push((await receiver.arrivals.when(marker)) - postStart);
      }

      const notifyAfterResponse: number[] = [];
      const notifyAfterRequest: number[] = [];
      const logoutAfterResponse: number[] = [];
      let inactiveAtResponse = 0;
      for (let i = 0; i < trials; i++) {
        const created = await scimFetch(base, token, 'POST', '/Users', {
          schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'],
          userName: `leaver${i}@bench.test`,
        });
        const userId = String(created.body.id);
        const session = await one.db.withTenant(tenantId, (em) =>
          createSession(em, tenantId, {
            userId,
            appId,
            connectionId: null,
            authTime: new Date(),
            ttlSeconds: 3600,
          }),
        );
        const sent = performance.now();
        const res = await scimFetch(base, token, 'PATCH', `/Users/${userId}`, {
          schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'],
          Operations: [{ op: 'replace', path: 'active', value: false }],
        });
        if (res.status !== 200) throw new Error(`deactivate: HTTP ${res.status}`);
        const live = await two.db.withTenant(tenantId, (em) => findActiveSession(em, session.id, new Date()));
        if (!live) inactiveAtResponse++;
        const notified = await heard.when(userId);
        const loggedOut = await receiver.arrivals.when(session.id);
        notifyAfterRequest.push(notified - sent);
        notifyAfterResponse.push(Math.max(0, notified - res.receivedAt));
        logoutAfterResponse.push(Math.max(0, loggedOut - res.receivedAt));
      }
      const n = sorted(notifyAfterResponse);
      const l = sorted(logoutAfterResponse);
      return [
        {
          name: `SCIM active:false on node 1 → node 2 notified (ms after the response, ${trials} trials)`,
          unit: 'ms p99',
          value: percentile(n, 99),
          baseline: {
            name: 'a bare committed NOTIFY node 1 → node 2, p99',
            value: percentile(sorted(floorNotify), 99),
          },
          extra: {
            p50_ms: percentile(n, 50),
            p99_ms_since_request: percentile(sorted(notifyAfterRequest), 99),
            inactive_on_node2_at_response: inactiveAtResponse / trials,
          },
        },
        {
          name: `SCIM active:false on node 1 → back-channel logout received (ms after the response, ${trials} trials)`,
          unit: 'ms p99',
          value: percentile(l, 99),
          baseline: {
            name: 'signing and POSTing a logout token directly, p99',
            value: percentile(sorted(floorPost), 99),
          },
          extra: { p50_ms: percentile(l, 50) },
        },
      ];
    } finally {
      off();
      await worker.stop();
      await receiver.close();
      await one.close();
      await two.close();
      await bench.close();
    }
  },
};

/** When each awaited key arrived (performance.now()), resolved as soon as it does. */
class Arrivals {
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

/** The main app's back-channel logout endpoint: records when each `sid` arrived. */
async function startReceiver(): Promise<{ url: string; arrivals: Arrivals; close(): Promise<void> }> {
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
