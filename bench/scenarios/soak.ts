import { performance } from 'node:perf_hooks';
import type { BenchResult, Scenario } from '../harness.js';
import { closedLoopRate, openLoop, percentile } from '../harness.js';
import { openBenchDatabase } from '../support/bench-db.js';
import {
  createTenantWithToken,
  envCount,
  scimFetch,
  sorted,
  startScimServer,
  type ScimServer,
} from './scim-bench-support.js';

const TENANTS = 4;
const PROBE_IN_FLIGHT = 8;
/** Open-loop arrivals never pile up past this: a backlog beyond it is counted as dropped, not queued. */
const MAX_IN_FLIGHT = 64;

/**
 * Does a node hold its pace for ten minutes (issue 13's soak row)? Four
 * tenants, a mix of what Okta and an admin console send: SCIM user creates
 * (40%), `userName eq` filters (30%), reads by id (20%) and the admin API's
 * audit-event page (10%). First a closed-loop probe finds the capacity (8 in
 * flight, GATEHOUSE_BENCH_SOAK_PROBE_SECONDS, default 20); then requests
 * arrive open-loop at 80% of it for GATEHOUSE_BENCH_SOAK_SECONDS (default
 * 600). Printed: throughput and p99 of the last minute as ratios of the first
 * (target: within 10%), 5xx count (target 0), arrivals dropped because 64
 * were already in flight (target 0), and "nothing lost": every create that
 * answered 201 is in the database at the end. To tell where a change of p99
 * comes from: each window's p99 and its longest event-loop stall (this
 * process's own pauses), and each kind's p99 in the first and last windows.
 */
export const soakScenario: Scenario = {
  name: 'soak',
  async run(): Promise<BenchResult[]> {
    const probeSeconds = envCount('GATEHOUSE_BENCH_SOAK_PROBE_SECONDS', 20);
    const soakSeconds = envCount('GATEHOUSE_BENCH_SOAK_SECONDS', 600);
    const windowSeconds = Math.min(60, Math.max(5, Math.floor(soakSeconds / 5)));
    const bench = await openBenchDatabase('soak');
    const server = await startScimServer(bench);
    try {
      const mix = await prepare(server);
      const capacity = await closedLoopRate(() => mix.next(), probeSeconds, PROBE_IN_FLIGHT);
      const rate = capacity * 0.8;

      // ---- soak (open loop at 80%)
      const windows = new Map<number, Window>();
      let fivexx = 0;
      const start = performance.now();
      // The event loop's longest stall in each window: a stall of this process (GC, synchronous work)
      // shows here; a slow database or a busy machine does not.
      const stalls = new Map<number, number>();
      let lastTick = performance.now();
      const ticker = setInterval(() => {
        const now = performance.now();
        const w = Math.floor((now - start) / 1000 / windowSeconds);
        stalls.set(w, Math.max(stalls.get(w) ?? 0, now - lastTick - 10));
        lastTick = now;
      }, 10);
      const load = openLoop(rate, MAX_IN_FLIGHT, async (issued) => {
        const { status, kind } = await mix.next();
        if (status >= 500) fivexx += 1;
        const w = Math.floor((issued - start) / 1000 / windowSeconds);
        const bucket: Window = windows.get(w) ?? { done: 0, latencies: [], byKind: new Map() };
        const ms = performance.now() - issued;
        bucket.done += 1;
        bucket.latencies.push(ms);
        const ofKind = bucket.byKind.get(kind);
        if (ofKind) ofKind.push(ms);
        else bucket.byKind.set(kind, [ms]);
        windows.set(w, bucket);
      });
      await new Promise((resolve) => setTimeout(resolve, soakSeconds * 1000));
      const { dropped } = await load.stop();
      clearInterval(ticker);

      const lost = await mix.lost();
      const keys = [...windows.keys()].sort((a, b) => a - b);
      // The last window may be cut short by the end of the run: compare the first full and last full ones.
      const full = keys.filter((k) => (k + 1) * windowSeconds <= soakSeconds);
      const none: Window = { done: 0, latencies: [], byKind: new Map() };
      const first = windows.get(full[0] ?? 0) ?? none;
      const last = windows.get(full[full.length - 1] ?? 0) ?? none;
      const p99 = (w: { latencies: number[] }) => percentile(sorted(w.latencies), 99);
      // Where a change comes from: each window's p99, and each kind's p99 in the first and last windows.
      const trend = full.map((k) => Math.round(p99(windows.get(k) ?? none))).join(' ');
      const stallTrend = full.map((k) => Math.round(stalls.get(k) ?? 0)).join(' ');
      const kinds = Object.fromEntries(
        KINDS.flatMap((kind) => [
          [`${kind}_p99_first`, percentile(sorted(first.byKind.get(kind) ?? []), 99)],
          [`${kind}_p99_last`, percentile(sorted(last.byKind.get(kind) ?? []), 99)],
        ]),
      );
      const label = `${TENANTS} tenants, 40% create / 30% userName eq / 20% read / 10% audit page`;
      return [
        {
          name: `soak ${soakSeconds}s at 80% of capacity (${label}): last ${windowSeconds}s throughput (issue 13: ratio ≥ 0.9)`,
          unit: 'req/s',
          value: last.done / windowSeconds,
          baseline: { name: `the first ${windowSeconds}s`, value: first.done / windowSeconds },
          extra: { capacity_req_per_s: capacity, offered_req_per_s: rate, fivexx, dropped, lost },
        },
        {
          name: `soak ${soakSeconds}s: last ${windowSeconds}s p99 (issue 13: ratio ≤ 1.1)`,
          unit: 'ms p99',
          value: p99(last),
          baseline: { name: `the first ${windowSeconds}s`, value: p99(first) },
          extra: {
            windows: full.length,
            users_created: mix.created(),
            window_p99_ms: trend,
            window_max_stall_ms: stallTrend,
            ...kinds,
          },
        },
      ];
    } finally {
      await server.close();
      await bench.close();
    }
  },
};

const KINDS = ['create', 'filter', 'read', 'audit'] as const;
type Kind = (typeof KINDS)[number];
interface Window {
  done: number;
  latencies: number[];
  byKind: Map<Kind, number[]>;
}

/** The mixed load: each next() sends one request of the mix and answers its kind and status. */
async function prepare(server: ScimServer) {
  const tenants: { tenantId: string; token: string; base: string; ids: string[]; created: number }[] = [];
  for (let i = 0; i < TENANTS; i++) {
    const { tenantId, token } = await createTenantWithToken(server.db);
    const base = `${server.url}/scim/v2/${tenantId}`;
    await scimFetch(base, token, 'GET', '/ServiceProviderConfig');
    tenants.push({ tenantId, token, base, ids: [], created: 0 });
  }
  let n = 0;
  const adminGet = async (path: string) => {
    const res = await fetch(`${server.url}/admin/v1${path}`, {
      headers: { authorization: `Bearer ${server.adminToken}` },
    });
    await res.arrayBuffer();
    return res.status;
  };
  const create = async (t: (typeof tenants)[number], i: number) => {
    const res = await scimFetch(t.base, t.token, 'POST', '/Users', {
      schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'],
      userName: `soak${i}@soak.test`,
      externalId: `soak-ext-${i}`,
      name: { givenName: 'Soak', familyName: `User ${i}` },
      emails: [{ value: `soak${i}@soak.test`, type: 'work', primary: true }],
      active: true,
    });
    if (res.status === 201) {
      t.ids.push(String(res.body.id));
      t.created += 1;
    }
    return res.status;
  };
  // Every tenant starts with some users, so filters and reads have targets.
  for (const t of tenants) for (let k = 0; k < 20; k++) await create(t, n++);
  return {
    async next(): Promise<{ kind: Kind; status: number }> {
      const i = n++;
      const t = tenants[i % TENANTS]!;
      const pick = (i * 7) % 10;
      if (pick < 4) return { kind: 'create', status: await create(t, i) };
      const known = t.ids[(i * 7919) % t.ids.length]!;
      if (pick < 7) {
        const userName = `soak${(i * 104_729) % n}@soak.test`;
        const filter = encodeURIComponent(`userName eq "${userName}"`);
        const { status } = await scimFetch(t.base, t.token, 'GET', `/Users?filter=${filter}`);
        return { kind: 'filter', status };
      }
      if (pick < 9)
        return { kind: 'read', status: (await scimFetch(t.base, t.token, 'GET', `/Users/${known}`)).status };
      return { kind: 'audit', status: await adminGet(`/tenants/${t.tenantId}/audit-events?limit=25`) };
    },
    created: () => tenants.reduce((sum, t) => sum + t.created, 0),
    /** Creates that answered 201 but are not in the database. */
    async lost(): Promise<number> {
      let missing = 0;
      for (const t of tenants) {
        const [row] = await server.db.withTenant(t.tenantId, (em) =>
          em.query<{ n: number }[]>(
            `SELECT count(*)::int AS n FROM users WHERE user_name LIKE 'soak%@soak.test'`,
          ),
        );
        missing += Math.max(0, t.created - (row?.n ?? 0));
      }
      return missing;
    },
  };
}
