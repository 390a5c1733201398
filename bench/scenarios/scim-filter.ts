import type { BenchResult, Scenario } from '../harness.js';
import { percentile } from '../harness.js';
import { openBenchDatabase } from '../support/bench-db.js';
import {
  createTenantWithToken,
  envCount,
  pool,
  scimFetch,
  sorted,
  startScimServer,
} from './scim-bench-support.js';

const CONCURRENCY = 4;

/**
 * Filtered lists over a large directory: GATEHOUSE_BENCH_SCIM_FILTER_USERS
 * (default 100000) users spread over GATEHOUSE_BENCH_SCIM_FILTER_TENANTS
 * (default 100) tenants, written in bulk; then the lookups Okta and Entra make
 * (userName eq, externalId eq, emails[type eq "work"].value eq) through HTTP
 * against random users of random tenants. Floor: GET /Users/{id} (a primary-key
 * read through the same HTTP stack), in the same run.
 */
export const scimFilterScenario: Scenario = {
  name: 'scim-filter',
  async run(): Promise<BenchResult[]> {
    const total = envCount('GATEHOUSE_BENCH_SCIM_FILTER_USERS', 100_000);
    const tenantCount = envCount('GATEHOUSE_BENCH_SCIM_FILTER_TENANTS', 100);
    const requests = envCount('GATEHOUSE_BENCH_SCIM_FILTER_REQUESTS', 1500);
    const perTenant = Math.max(1, Math.floor(total / tenantCount));
    const bench = await openBenchDatabase('scim_filter');
    const server = await startScimServer(bench);
    try {
      const tenants: { tenantId: string; token: string; ids: string[] }[] = [];
      for (let i = 0; i < tenantCount; i++) {
        const { tenantId, token } = await createTenantWithToken(server.db);
        const ids = await server.db.withTenant(tenantId, (em) =>
          em.query<{ id: string }[]>(
            `INSERT INTO users (tenant_id, user_name, email, external_id, display_name, given_name, family_name, attributes)
             SELECT $1, 'user' || n || '@t' || $2 || '.test', 'user' || n || '@t' || $2 || '.test', 'ext-' || n,
                    'User ' || n, 'User', 'N' || n,
                    jsonb_build_object('emails', jsonb_build_array(jsonb_build_object(
                      'value', 'user' || n || '@t' || $2 || '.test', 'type', 'work', 'primary', true)))
               FROM generate_series(1, $3) AS n
             RETURNING id`,
            [tenantId, i, perTenant],
          ),
        );
        tenants.push({ tenantId, token, ids: ids.map((r) => r.id) });
      }
      await bench.db.withPlatform((em) => em.query('ANALYZE users'));
      // Every tenant's token verified once (argon2), then cached like on a warm node.
      for (const t of tenants)
        await scimFetch(`${server.url}/scim/v2/${t.tenantId}`, t.token, 'GET', '/ServiceProviderConfig');

      const pick = (i: number) => {
        const tenantIndex = (i * 7919) % tenants.length;
        const t = tenants[tenantIndex] as (typeof tenants)[number];
        const n = ((i * 104_729) % perTenant) + 1;
        return { t, n, tenantIndex, base: `${server.url}/scim/v2/${t.tenantId}` };
      };
      const measure = async (path: (p: ReturnType<typeof pick>) => string, expectOne: boolean) => {
        const latencies: number[] = [];
        const ms = await pool(requests, CONCURRENCY, async (i) => {
          const p = pick(i);
          const res = await scimFetch(p.base, p.t.token, 'GET', path(p));
          if (res.status !== 200) throw new Error(`HTTP ${res.status} ${JSON.stringify(res.body)}`);
          if (expectOne && res.body.totalResults !== 1) throw new Error(`expected one match for ${path(p)}`);
          latencies.push(res.ms);
        });
        return { sorted: sorted(latencies), perSecond: requests / (ms / 1000) };
      };
      const filter = (f: string) => `/Users?filter=${encodeURIComponent(f)}&startIndex=1&count=100`;
      const floor = await measure((p) => `/Users/${p.t.ids[p.n - 1] ?? ''}`, false);
      const byUserName = await measure(
        (p) => filter(`userName eq "user${p.n}@t${p.tenantIndex}.test"`),
        true,
      );
      const byExternalId = await measure((p) => filter(`externalId eq "ext-${p.n}"`), true);
      const byWorkEmail = await measure(
        (p) => filter(`emails[type eq "work"].value eq "user${p.n}@t${p.tenantIndex}.test"`),
        true,
      );
      const floorP99 = percentile(floor.sorted, 99);
      const result = (name: string, r: typeof floor) => ({
        name: `${name} over ${perTenant * tenantCount} users in ${tenantCount} tenants`,
        unit: 'ms p99',
        value: percentile(r.sorted, 99),
        baseline: { name: 'GET /Users/{id} p99', value: floorP99 },
        extra: { p50_ms: percentile(r.sorted, 50), req_per_s: r.perSecond },
      });
      return [
        result('filter userName eq', byUserName),
        result('filter externalId eq', byExternalId),
        result('filter emails[type eq "work"].value eq', byWorkEmail),
      ];
    } finally {
      await server.close();
      await bench.close();
    }
  },
};
