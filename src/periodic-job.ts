import type { Logger } from 'pino';

/**
 * How does a node run background work on a schedule? Every sweep and worker
 * (exports, purges, checkpoints, metadata refresh, cleanup) is one pass
 * function run by this loop: at most one pass at a time on this node (a
 * runNow during a pass joins it), a pass that throws is logged and answers
 * null (the next tick tries again), the timer never holds the process open,
 * and stop waits for the pass in flight. Running on many nodes is each pass's
 * own concern (SKIP LOCKED, locks): this loop only paces one node.
 */
export interface PeriodicJob<T> {
  /** Run a pass now, or join the one in flight; null when it failed or the job is stopped. */
  runNow(): Promise<T | null>;
  stop(): Promise<void>;
}

export function startPeriodicJob<T>(options: {
  /** Names the pass in the log line of a failure ("tenant export pass failed"). */
  name: string;
  intervalMs: number;
  pass: () => Promise<T>;
  logger?: Logger;
}): PeriodicJob<T> {
  let running: Promise<T | null> | null = null;
  let stopped = false;
  const runNow = (): Promise<T | null> => {
    if (stopped) return Promise.resolve(null);
    if (running) return running;
    running = options
      .pass()
      .catch((error: unknown) => {
        options.logger?.error({ err: error }, `${options.name} failed`);
        return null;
      })
      .finally(() => {
        running = null;
      });
    return running;
  };
  const timer = setInterval(() => void runNow(), options.intervalMs);
  timer.unref();
  return {
    runNow,
    async stop() {
      stopped = true;
      clearInterval(timer);
      await running;
    },
  };
}
