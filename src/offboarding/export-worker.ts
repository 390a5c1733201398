import type { Logger } from 'pino';
import { startPeriodicJob, type PeriodicJob } from '../periodic-job.js';
import { produceNextExport, tenantsWithDueExports, type ProduceOptions } from './exports.service.js';

/**
 * When is a requested export produced? On every node, every few seconds (and
 * on runNow), for each tenant the tenant_export_due_tenants resolver names.
 * Safe on many nodes: each export is claimed with FOR UPDATE SKIP LOCKED
 * (exports.service.ts produceNextExport), so a node skips what another is
 * producing, and a produced export is no longer pending.
 */
export interface ExportWorkerOptions extends ProduceOptions {
  intervalMs: number;
  logger?: Logger;
  batchSize?: number;
}

export type ExportJob = PeriodicJob<number>;

/** How often each node looks for pending exports. */
export const EXPORT_POLL_MS = 5_000;

/** One pass: every due tenant's pending exports; returns how many were produced. */
export async function runExports(options: Omit<ExportWorkerOptions, 'intervalMs'>): Promise<number> {
  const due = await tenantsWithDueExports(options.db, options.batchSize ?? 100);
  let produced = 0;
  for (const tenantId of due) {
    try {
      // A tenant may have several pending exports; each is claimed on its own.
      while (await produceNextExport(options, tenantId)) produced += 1;
    } catch (error) {
      options.logger?.error({ err: error, tenant_id: tenantId }, 'tenant export failed');
    }
  }
  return produced;
}

export function startExportWorker(options: ExportWorkerOptions): ExportJob {
  return startPeriodicJob({
    name: 'tenant export pass',
    intervalMs: options.intervalMs,
    pass: () => runExports(options),
    logger: options.logger,
  });
}
