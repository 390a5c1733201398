import type { Logger } from 'pino';
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

export interface PurgeSweep {
  runNow(): Promise<number | null>;
  stop(): Promise<void>;
}

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
  let running: Promise<number | null> | null = null;
  let stopped = false;
  const pass = (): Promise<number | null> => {
    if (stopped) return Promise.resolve(null);
    if (running) return running;
    running = runPurgeSweep(options)
      .catch((error: unknown) => {
        options.logger?.error({ err: error }, 'tenant purge pass failed');
        return null;
      })
      .finally(() => {
        running = null;
      });
    return running;
  };
  const timer = setInterval(() => void pass(), options.intervalMs);
  timer.unref();
  return {
    runNow: pass,
    async stop() {
      stopped = true;
      clearInterval(timer);
      await running;
    },
  };
}
