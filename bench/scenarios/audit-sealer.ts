import { randomUUID } from 'node:crypto';
import { recordAudit } from '../../src/audit/audit.service.js';
import { sealTrail } from '../../src/audit/audit-sealer.js';
import type { Scenario } from '../harness.js';
import { opsPerSecond } from '../harness.js';
import { openBenchDatabase } from '../support/bench-db.js';

/**
 * Does one tenant's audit trail still serialise its writers (issue 13)? Eight
 * transactions in flight, each recording an event and then making one more
 * round trip before COMMIT (as a request does), all in one tenant, against
 * the same spread over eight tenants. With the chain lock held to COMMIT the
 * one-tenant figure was a fraction of the eight-tenant one; sealed after
 * commit the two should be within noise. Also prints how long sealing the
 * whole run's trail took afterwards (what was left for the reads' seal).
 */
export const auditSealerScenario: Scenario = {
  name: 'audit-sealer',
  async run() {
    const bench = await openBenchDatabase('audit_sealer');
    try {
      const { db } = bench;
      const tenants = Array.from({ length: 8 }, () => randomUUID());
      await db.withPlatform(async (em) => {
        for (const [i, id] of tenants.entries())
          await em.query(`INSERT INTO tenants (id, slug, name) VALUES ($1, $2, $2)`, [id, `sealer-${i}`]);
      });
      let next = 0;
      const write = (tenantId: string) =>
        db.withTenant(tenantId, async (em) => {
          await recordAudit(em, tenantId, {
            actor: { type: 'system', id: null },
            action: 'bench.event',
            target: { type: 'thing', id: String(next++) },
            after: { n: next },
          });
          await em.query('SELECT 1');
        });
      const one = tenants[0]!;
      const spread = await opsPerSecond(() => write(tenants[next % tenants.length]!), 3000, 8);
      const single = await opsPerSecond(() => write(one), 3000, 8);
      const started = performance.now();
      await sealTrail(db, one);
      const sealMs = performance.now() - started;
      return [
        {
          name: 'audited writes, one tenant, 8 in flight',
          unit: 'tx/s',
          value: single,
          baseline: { name: 'the same over 8 tenants', value: spread },
        },
        { name: "sealing what was left of the tenant's trail after the run", unit: 'ms', value: sealMs },
      ];
    } finally {
      await bench.close();
    }
  },
};
