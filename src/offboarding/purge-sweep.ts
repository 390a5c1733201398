import type { Logger } from 'pino';
import { startPeriodicJob, type PeriodicJob } from '../periodic-job.js';
import { tenantsDueForPurge } from '../tenants/tenants.service.js';
import { purgeTenant, type PurgeDeps } from './purge.js';

/**
 * When are deleted tenants purged without anyone asking? Every
 * GATEHOUSE_CLEANUP_INTERVAL seconds, on every node, each tenant whose
 * `purge_after` has passed (issue 12). Safe on many nodes at once, like the
 * cleanup sweep: the purge locks the tenant row, and a node that waited finds
 * it purged and moves on.
 */
export interface PurgeSweepOptions extends PurgeDeps {
  intervalMs: number;
  logger?: Logger;
  batchSize?: number;
}

export type PurgeSweep = PeriodicJob<number>;

/** One pass: purges every due tenant; returns how many this node purged. */
export async function runPurgeSweep(options: Omit<PurgeSweepOptions, 'intervalMs'>): Promise<number> {
  let purged = 0;
  for (const tenantId of await tenantsDueForPurge(options.db, options.batchSize ?? 100)) {
    try {
      await purgeTenant(options, tenantId, {
        force: false,
        ctx: { actor: { type: 'system', id: 'purge-sweep' } },
      });
      purged += 1;
      options.logger?.info({ tenant_id: tenantId }, 'tenant purged');
    } catch (error) {
      // Purged meanwhile by another node (409) or failing: the next pass tries again.
      options.logger?.warn({ err: error, tenant_id: tenantId }, 'tenant purge skipped');
    }
  }
  return purged;
}

export function startPurgeSweep(options: PurgeSweepOptions): PurgeSweep {
  return startPeriodicJob({
    name: 'tenant purge pass',
    intervalMs: options.intervalMs,
    pass: () => runPurgeSweep(options),
    logger: options.logger,
  });
}
