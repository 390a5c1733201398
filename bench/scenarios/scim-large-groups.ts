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

const CONCURRENCY = 2;

/**
 * Issue 10, large groups: how much does listing a page of big groups cost,
 * compared with listing a page of users? GATEHOUSE_BENCH_SCIM_GROUPS (default
 * 100) groups of GATEHOUSE_BENCH_SCIM_GROUP_MEMBERS (default 2,000) members
 * each, written in bulk; then `GET /Groups?count=100` with
 * `excludedAttributes=members` (what Entra and Okta send: no member is read)
 * and without it (members are returned, the page cut at the member budget,
 * scim-groups.resource.ts). Floor: `GET /Users?count=100` in the same run.
 */
export const scimLargeGroupsScenario: Scenario = {
  name: 'scim-large-groups',
  async run(): Promise<BenchResult[]> {
    const groupCount = envCount('GATEHOUSE_BENCH_SCIM_GROUPS', 100);
    const memberCount = envCount('GATEHOUSE_BENCH_SCIM_GROUP_MEMBERS', 2000);
    const requests = envCount('GATEHOUSE_BENCH_SCIM_GROUPS_REQUESTS', 200);
    const bench = await openBenchDatabase('scim_large_groups');
    const server = await startScimServer(bench);
    try {
      const { tenantId, token } = await createTenantWithToken(server.db);
      await server.db.withTenant(tenantId, async (em) => {
        await em.query(
          `INSERT INTO users (tenant_id, user_name, display_name)
           SELECT $1, 'member' || n || '@acme.test', 'Member ' || n FROM generate_series(1, $2) AS n`,
          [tenantId, Math.max(memberCount, 100)],
        );
        await em.query(
          `INSERT INTO groups (tenant_id, display_name) SELECT $1, 'group ' || n FROM generate_series(1, $2) AS n`,
          [tenantId, groupCount],
        );
        // Every group holds the same `memberCount` users: groups × members membership rows.
        await em.query(
          `INSERT INTO group_members (tenant_id, group_id, user_id)
           SELECT $1, g.id, u.id FROM groups g
             CROSS JOIN (SELECT id FROM users ORDER BY user_name LIMIT $2) u`,
          [tenantId, memberCount],
        );
      });
      await bench.db.withPlatform((em) => em.query('ANALYZE users; ANALYZE groups; ANALYZE group_members'));
      const base = `${server.url}/scim/v2/${tenantId}`;
      // The token verified once (argon2), then cached like on a warm node.
      await scimFetch(base, token, 'GET', '/ServiceProviderConfig');

      const measure = async (path: string, check: (body: Record<string, unknown>) => void) => {
        const latencies: number[] = [];
        let last: Record<string, unknown> = {};
        for (let i = 0; i < 5; i++) await scimFetch(base, token, 'GET', path); // warm-up
        const ms = await pool(requests, CONCURRENCY, async () => {
          const res = await scimFetch(base, token, 'GET', path);
          if (res.status !== 200) throw new Error(`HTTP ${res.status} ${JSON.stringify(res.body)}`);
          check(res.body);
          last = res.body;
          latencies.push(res.ms);
        });
        return { sorted: sorted(latencies), perSecond: requests / (ms / 1000), last };
      };
      const resources = (body: Record<string, unknown>) =>
        Array.isArray(body.Resources) ? (body.Resources as Record<string, unknown>[]) : [];
      const members = (body: Record<string, unknown>) =>
        resources(body).reduce((n, r) => n + (Array.isArray(r.members) ? r.members.length : 0), 0);

      const floor = await measure('/Users?count=100', (body) => {
        if (resources(body).length !== 100) throw new Error('expected a full page of users');
      });
      const excluded = await measure('/Groups?count=100&excludedAttributes=members', (body) => {
        if (resources(body).length !== Math.min(100, groupCount) || members(body) !== 0)
          throw new Error('expected a full page of groups without members');
      });
      const included = await measure('/Groups?count=100', (body) => {
        if (resources(body).length === 0) throw new Error('expected groups with their members');
      });
      const floorP50 = percentile(floor.sorted, 50);
      const size = `${groupCount} groups × ${memberCount} members`;
      const result = (name: string, r: typeof floor) => ({
        name: `${name} (${size})`,
        unit: 'ms p50',
        value: percentile(r.sorted, 50),
        baseline: { name: 'GET /Users?count=100 p50', value: floorP50 },
        extra: {
          p99_ms: percentile(r.sorted, 99),
          req_per_s: r.perSecond,
          groups_per_page: resources(r.last).length,
          members_per_page: members(r.last),
        },
      });
      return [
        result('GET /Groups?count=100&excludedAttributes=members', excluded),
        result('GET /Groups?count=100 (members, page cut at the member budget)', included),
      ];
    } finally {
      await server.close();
      await bench.close();
    }
  },
};
