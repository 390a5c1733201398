import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { createApp as registerApp } from '../../src/apps/apps.service.js';
import { ADMIN_TOKEN_PREFIX, generateToken } from '../../src/config/secrets.js';
import type { BenchResult, Scenario } from '../harness.js';
import { closedLoopRate, openLoop, percentile } from '../harness.js';
import { openBenchDatabase } from '../support/bench-db.js';
import { startServer, type ServerProcess } from './cluster-workers.js';
import { envCount, scimFetch, sorted } from './scim-bench-support.js';
import { mintCode, REDIRECT_URI, startReceiver, VERIFIER } from './scim-revocation.js';

const PROBE_IN_FLIGHT = 8;
const MAX_IN_FLIGHT = 64;

/**
 * Revocation while both nodes are busy (issue 13's last row): two servers in
 * processes of their own (`npm start`, one worker each) on one database and
 * one issuer. A background load — SCIM creates and token introspections,
 * half to each node — first runs closed-loop to find the pair's capacity
 * (GATEHOUSE_BENCH_REVOCATION_PROBE_SECONDS, default 10), then arrives
 * open-loop at 80% of it while GATEHOUSE_BENCH_REVOCATION_TRIALS (default 100)
 * trials run: a SCIM-provisioned person with real tokens from node 1, the
 * IdP's `active:false` to node 1, then (a) introspection on node 2 asked until
 * it answers inactive and (b) the app's back-channel logout receiver hearing
 * the session end, both timed from the SCIM response. Target: p99 ≤ 25 ms
 * each. Printed beside: the same introspection on an active token during the
 * load (floor), the background's 5xx and dropped arrivals.
 */
export const revocationUnderLoadScenario: Scenario = {
  name: 'revocation-under-load',
  async run(): Promise<BenchResult[]> {
    const trials = envCount('GATEHOUSE_BENCH_REVOCATION_TRIALS', 100);
    const probeSeconds = envCount('GATEHOUSE_BENCH_REVOCATION_PROBE_SECONDS', 10);
    const bench = await openBenchDatabase('revocation_load');
    const dir = await mkdtemp(path.join(tmpdir(), 'gatehouse-bench-revocation-'));
    const receiver = await startReceiver();
    const adminToken = generateToken(ADMIN_TOKEN_PREFIX);
    const env = {
      DATABASE_URL: bench.ownerUrl,
      GATEHOUSE_DATABASE_APP_URL: bench.appUrl,
      GATEHOUSE_MASTER_KEY: randomBytes(32).toString('base64url'),
      GATEHOUSE_ADMIN_TOKEN: adminToken,
      GATEHOUSE_SCIM_RATE_LIMIT: '1000000000',
      GATEHOUSE_CLIENT_AUTH_FAILURE_LIMIT: '100000000',
      // The app's back-channel logout receiver listens on loopback (the development setting).
      GATEHOUSE_ALLOW_PRIVATE_METADATA_URLS: 'true',
    };
    const servers: ServerProcess[] = [];
    try {
      servers.push(await startServer(1, env, dir, { name: 'one' }));
      const one = servers[0]!;
      // One issuer: tokens node 1 issues are introspected by node 2.
      servers.push(await startServer(1, env, dir, { name: 'two', baseUrl: one.url }));
      const two = servers[1]!;

      const admin = async (pathname: string, body: unknown) => {
        const res = await fetch(`${one.url}/admin/v1${pathname}`, {
          method: 'POST',
          headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
          body: JSON.stringify(body),
        });
        const json = (await res.json()) as Record<string, unknown>;
        if (res.status >= 300) throw new Error(`admin ${pathname}: ${res.status} ${JSON.stringify(json)}`);
        return json;
      };
      const tenantId = String((await admin('/tenants', { slug: 'revocation', name: 'Revocation' })).id);
      const scimToken = String((await admin(`/tenants/${tenantId}/scim-tokens`, {})).token);
      const app = await registerApp(
        bench.db,
        { name: 'Bench app', redirect_uris: [REDIRECT_URI], backchannel_logout_uri: receiver.url },
        { actor: { type: 'operator', id: 'bench' } },
      );
      const basic = `Basic ${Buffer.from(`${app.client_id}:${app.client_secret ?? ''}`).toString('base64')}`;
      const scimBase = (node: ServerProcess) => `${node.url}/scim/v2/${tenantId}`;
      const form = async (node: ServerProcess, pathname: string, fields: Record<string, string>) => {
        const res = await fetch(`${node.url}${pathname}`, {
          method: 'POST',
          headers: { authorization: basic, 'content-type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams(fields).toString(),
        });
        const body = (await res.json()) as Record<string, unknown>;
        return { status: res.status, body, at: performance.now() };
      };
      /** A SCIM-provisioned person with real tokens from node 1's token endpoint. */
      const person = async (userName: string) => {
        const created = await scimFetch(scimBase(one), scimToken, 'POST', '/Users', {
          schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'],
          userName,
        });
        if (created.status !== 201) throw new Error(`SCIM create: HTTP ${created.status}`);
        const userId = String(created.body.id);
        const code = await mintCode(bench.db, tenantId, userId, app.client_id);
        const tokens = await form(one, '/oauth/token', {
          grant_type: 'authorization_code',
          code: code.token,
          redirect_uri: REDIRECT_URI,
          code_verifier: VERIFIER,
        });
        if (tokens.status !== 200) throw new Error(`code exchange: HTTP ${tokens.status}`);
        return { userId, sessionId: code.sessionId, accessToken: String(tokens.body.access_token) };
      };
      // Each node verifies the SCIM bearer once (argon2) and caches it, as a warm node would.
      for (const node of servers) await scimFetch(scimBase(node), scimToken, 'GET', '/ServiceProviderConfig');

      // ---- the background load: half SCIM creates, half introspections, alternating nodes
      const steady = await person('steady@bench.test');
      let n = 0;
      let fivexx = 0;
      const background = async (): Promise<number> => {
        const i = n++;
        const node = servers[i % 2]!;
        if ((i >> 1) % 2 === 0) {
          const res = await scimFetch(scimBase(node), scimToken, 'POST', '/Users', {
            schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'],
            userName: `load${i}@bench.test`,
          });
          return res.status;
        }
        return (await form(node, '/oauth/introspect', { token: steady.accessToken })).status;
      };
      const capacity = await closedLoopRate(background, probeSeconds, PROBE_IN_FLIGHT);
      const rate = capacity * 0.8;
      const load = openLoop(rate, MAX_IN_FLIGHT, async () => {
        if ((await background()) >= 500) fivexx += 1;
      });

      // ---- the trials, under that load
      let dropped = 0;
      const m = { introspect: [] as number[], floor: [] as number[], logout: [] as number[], asks: 0 };
      try {
        for (let i = 0; i < trials; i++) {
          const leaver = await person(`leaver${i}@bench.test`);
          const floorStart = performance.now();
          const live = await form(two, '/oauth/introspect', { token: leaver.accessToken });
          if (live.body.active !== true) throw new Error('floor: token not active on node 2');
          m.floor.push(live.at - floorStart);

          const res = await scimFetch(scimBase(one), scimToken, 'PATCH', `/Users/${leaver.userId}`, {
            schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'],
            Operations: [{ op: 'replace', path: 'active', value: false }],
          });
          if (res.status !== 200) throw new Error(`deactivate: HTTP ${res.status}`);
          let answer = await form(two, '/oauth/introspect', { token: leaver.accessToken });
          m.asks += 1;
          while (answer.body.active !== false) {
            if (performance.now() - res.receivedAt > 10_000) throw new Error('never inactive on node 2');
            answer = await form(two, '/oauth/introspect', { token: leaver.accessToken });
            m.asks += 1;
          }
          const loggedOut = await receiver.arrivals.when(leaver.sessionId);
          m.introspect.push(answer.at - res.receivedAt);
          m.logout.push(Math.max(0, loggedOut - res.receivedAt));
        }
      } finally {
        dropped = (await load.stop()).dropped;
      }

      const p = (values: number[], q: number) => percentile(sorted(values), q);
      const extra = {
        capacity_req_per_s: capacity,
        offered_req_per_s: rate,
        background_5xx: fivexx,
        background_dropped: dropped,
      };
      return [
        {
          name: `under 80% load, two processes: SCIM active:false on node 1 → introspection on node 2 inactive (${trials} trials; issue 13: p99 ≤ 25 ms)`,
          unit: 'ms p99',
          value: p(m.introspect, 99),
          baseline: { name: 'one introspection on node 2 under the same load, p99', value: p(m.floor, 99) },
          extra: { p50_ms: p(m.introspect, 50), inactive_at_first_ask: trials / m.asks, ...extra },
        },
        {
          name: `under 80% load, two processes: SCIM active:false on node 1 → back-channel logout received (${trials} trials; issue 13: p99 ≤ 25 ms)`,
          unit: 'ms p99',
          value: p(m.logout, 99),
          // The same floor as the row above: what one request costs under this load.
          baseline: { name: 'one introspection on node 2 under the same load, p99', value: p(m.floor, 99) },
          extra: { p50_ms: p(m.logout, 50) },
        },
      ];
    } finally {
      for (const s of servers.reverse()) await s.stop();
      await receiver.close();
      await bench.close();
      await rm(dir, { recursive: true, force: true });
    }
  },
};
