import { randomUUID } from 'node:crypto';
import type { Scenario } from '../harness.js';
import { opsPerSecond } from '../harness.js';
import { openBenchDatabase } from '../support/bench-db.js';

/**
 * The cost of tenant isolation on the hottest path: a primary-key read of a
 * tenant table inside withTenant (transaction + tenant setting + RLS policy)
 * against a primary-key read in a plain transaction of a platform table, which
 * has no RLS (the runtime role cannot read a tenant table without a tenant).
 */
export const withTenantScenario: Scenario = {
  name: 'withTenant',
  async run() {
    const bench = await openBenchDatabase('with_tenant');
    try {
      const { db } = bench;
      const tenantId = randomUUID();
      const userId = randomUUID();
      await db.withTenant(tenantId, async (em) => {
        await em.query(`INSERT INTO tenants (id, slug, name) VALUES ($1, 'bench', 'Bench')`, [tenantId]);
        await em.query(`INSERT INTO users (tenant_id, id, user_name) VALUES ($1, $2, 'u@bench.test')`, [
          tenantId,
          userId,
        ]);
      });
      const scoped = () =>
        db.withTenant(tenantId, (em) =>
          em.query('SELECT * FROM users WHERE tenant_id = $1 AND id = $2', [tenantId, userId]),
        );
      const plain = () =>
        db.withPlatform((em) => em.query('SELECT * FROM tenants WHERE id = $1', [tenantId]));
      const baseline = await opsPerSecond(plain, 2000, 4);
      const value = await opsPerSecond(scoped, 2000, 4);
      return [
        {
          name: 'primary-key read inside withTenant',
          unit: 'reads/s',
          value,
          baseline: {
            name: 'a primary-key read of a platform table (no RLS) in a plain transaction',
            value: baseline,
          },
        },
      ];
    } finally {
      await bench.close();
    }
  },
};
