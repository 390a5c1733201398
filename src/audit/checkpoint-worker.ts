import type { Logger } from 'pino';
import { startPeriodicJob, type PeriodicJob } from '../periodic-job.js';
import type { Database } from '../db/database.js';
import type { CheckpointSigningKey } from './checkpoint-key.js';
import { takeCheckpoint, tenantsDueForCheckpoint, type CheckpointPublisher } from './checkpoints.service.js';
import { sealPendingTenants, setAuditSealerLogger } from './audit-sealer.js';

/**
 * When are checkpoints taken without anyone asking? Every
 * GATEHOUSE_AUDIT_CHECKPOINT_INTERVAL seconds, on every node, for each tenant
 * (and the platform trail) whose chain grew since its latest checkpoint. Safe
 * on many nodes at once, like the cleanup sweep: a checkpoint of an unchanged
 * head is not taken twice (takeCheckpoint is idempotent, the primary key
 * (tenant_id, seq) decides a race), and two nodes signing different heads
 * only add a checkpoint. Each pass first seals every tenant's unsealed events
 * (issue 13: events whose writer's own seal did not run, e.g. it died after
 * COMMIT), so what is signed is everything sealed.
 */
export interface CheckpointWorkerOptions {
  db: Database;
  key: CheckpointSigningKey;
  intervalMs: number;
  publish?: CheckpointPublisher;
  logger?: Logger;
  batchSize?: number;
}

export type CheckpointJob = PeriodicJob<number>;

/** One pass: checkpoints every due tenant; returns how many were signed. */
export async function runCheckpoints(options: Omit<CheckpointWorkerOptions, 'intervalMs'>): Promise<number> {
  const batch = options.batchSize ?? 1000;
  await sealPendingTenants(options.db, batch);
  let signed = 0;
  for (;;) {
    const due = await tenantsDueForCheckpoint(options.db, batch);
    let signedNow = 0;
    for (const tenantId of due) {
      const taken = await takeCheckpoint(options.db, options.key, tenantId, {
        publish: options.publish,
        log: options.logger,
        sealOnce: true,
      });
      if (taken?.created) signedNow += 1;
    }
    signed += signedNow;
    // A full batch that signed nothing would come back the same: stop instead of spinning.
    if (due.length < batch || signedNow === 0) return signed;
  }
}

export function startCheckpoints(options: CheckpointWorkerOptions): CheckpointJob {
  // The node's background seals (audit-sealer.ts) report failures beside this pass, which seals after them.
  setAuditSealerLogger(options.logger?.child({ component: 'audit-sealer' }));
  return startPeriodicJob({
    name: 'audit checkpoint pass',
    intervalMs: options.intervalMs,
    pass: () => runCheckpoints(options),
    logger: options.logger,
  });
}
