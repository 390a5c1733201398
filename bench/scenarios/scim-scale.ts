import type { BenchResult, Scenario } from '../harness.js';
import { percentile, roundTrips } from '../harness.js';
import { openBenchDatabase } from '../support/bench-db.js';
import {
  createTenantWithToken,
  envCount,
  pool,
  scimFetch,
  sorted,
  startScimServer,
  type ScimServer,
} from './scim-bench-support.js';

const IN_FLIGHT = 8;

/**
 * Does SCIM user creation stay flat as a tenant grows, and is one busy tenant
 * as fast as eight (issue 13)? Three targets, created side by side on one
 * node and measured in interleaved rounds (empty, grown, eight, empty, …) so
 * the machine's noise falls on all three alike:
 * - an empty tenant, 8 creates in flight: the reference;
 * - a tenant already holding GATEHOUSE_BENCH_SCIM_SCALE_USERS (default
 *   100,000) users, same load — target: within 10% of the empty tenant
 *   (a lookup that lost its index under row-level security shows here);
 * - eight tenants, one create in flight each — target: within 10% of one
 *   tenant (a per-tenant lock, such as the audit chain's, shows here as one
 *   tenant being slower than eight).
 * Each row prints p50/p99 and PostgreSQL round trips per request.
 * GATEHOUSE_BENCH_SCIM_SCALE_ROUNDS (default 3) rounds of
 * GATEHOUSE_BENCH_SCIM_SCALE_PER_ROUND (default 1,000) creates per target.
 */
export const scimScaleScenario: Scenario = {
  name: 'scim-scale',
  async run(): Promise<BenchResult[]> {
    const grownUsers = envCount('GATEHOUSE_BENCH_SCIM_SCALE_USERS', 100_000);
    const rounds = envCount('GATEHOUSE_BENCH_SCIM_SCALE_ROUNDS', 3);
    const perRound = envCount('GATEHOUSE_BENCH_SCIM_SCALE_PER_ROUND', 1000);
    const bench = await openBenchDatabase('scim_scale');
    const server = await startScimServer(bench);
    try {
      const empty = await target(server, 'empty', 1);
      const grown = await target(server, 'grown', 1);
      await server.db.withTenant(grown.tenants[0]!.tenantId, (em) =>
        em.query(
          `INSERT INTO users (tenant_id, user_name, email, external_id, display_name, given_name, family_name, attributes)
           SELECT $1, 'seed' || n || '@grown.test', 'seed' || n || '@grown.test', 'seed-ext-' || n,
                  'Seed ' || n, 'Seed', 'N' || n,
                  jsonb_build_object('emails', jsonb_build_array(jsonb_build_object(
                    'value', 'seed' || n || '@grown.test', 'type', 'work', 'primary', true)))
             FROM generate_series(1, $2) AS n`,
          [grown.tenants[0]!.tenantId, grownUsers],
        ),
      );
      await bench.db.withPlatform((em) => em.query('ANALYZE users'));
      const eight = await target(server, 'eight', IN_FLIGHT);
      const counted = await roundTrips();

      const runRound = async (t: Target, round: number) => {
        const trips = counted();
        const ms = await pool(perRound, IN_FLIGHT, async (i) => {
          const n = round * perRound + i;
          // Eight tenants: request i goes to tenant i mod 8, so each has one in flight.
          const tenant = t.tenants[i % t.tenants.length]!;
          const res = await scimFetch(tenant.base, tenant.token, 'POST', '/Users', {
            schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'],
            userName: `${t.label}${n}@scale.test`,
            externalId: `${t.label}-ext-${n}`,
            name: { givenName: 'Scale', familyName: `User ${n}` },
            emails: [{ value: `${t.label}${n}@scale.test`, type: 'work', primary: true }],
            active: true,
          });
          if (res.status !== 201)
            throw new Error(`${t.label}: HTTP ${res.status} ${JSON.stringify(res.body)}`);
          t.latencies.push(res.ms);
        });
        t.ms += ms;
        t.trips += counted() - trips;
      };
      for (let round = 0; round < rounds; round++)
        for (const t of [empty, grown, eight]) await runRound(t, round);

      const total = rounds * perRound;
      const row = (t: Target, name: string, baseline?: { name: string; value: number }): BenchResult => {
        const lat = sorted(t.latencies);
        return {
          name,
          unit: 'creates/s',
          value: total / (t.ms / 1000),
          ...(baseline ? { baseline } : {}),
          extra: {
            p50_ms: percentile(lat, 50),
            p99_ms: percentile(lat, 99),
            round_trips: t.trips / total,
          },
        };
      };
      const reference = { name: 'the same load on an empty tenant', value: total / (empty.ms / 1000) };
      return [
        row(empty, `SCIM POST /Users, one empty tenant, ${IN_FLIGHT} in flight (${rounds}×${perRound})`),
        row(
          grown,
          `SCIM POST /Users, one tenant of ${grownUsers} users, ${IN_FLIGHT} in flight (issue 13: ratio ≥ 0.9)`,
          reference,
        ),
        row(
          eight,
          `SCIM POST /Users, ${IN_FLIGHT} tenants with one in flight each (issue 13: one tenant within 10% of this)`,
          reference,
        ),
      ];
    } finally {
      await server.close();
      await bench.close();
    }
  },
};

interface Target {
  label: string;
  tenants: { tenantId: string; token: string; base: string }[];
  latencies: number[];
  ms: number;
  trips: number;
}

async function target(server: ScimServer, label: string, tenants: number): Promise<Target> {
  const made: Target['tenants'] = [];
  for (let i = 0; i < tenants; i++) {
    const { tenantId, token } = await createTenantWithToken(server.db);
    const base = `${server.url}/scim/v2/${tenantId}`;
    // The token verified once (argon2) and cached, as on a warm node.
    await scimFetch(base, token, 'GET', '/ServiceProviderConfig');
    made.push({ tenantId, token, base });
  }
  return { label, tenants: made, latencies: [], ms: 0, trips: 0 };
}
