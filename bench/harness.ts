import { performance } from 'node:perf_hooks';

/**
 * Benchmarks report ratios against a baseline measured in the same run (the
 * machine is shared and noisy), never absolute pass/fail thresholds.
 */
export interface BenchResult {
  name: string;
  /** What the figure is, e.g. "ops/s". */
  unit: string;
  value: number;
  /** The floor measured in the same run, with its name; ratio = value / baseline.value. */
  baseline?: { name: string; value: number };
  /** Further figures (p50, p99, shares…). */
  extra?: Record<string, number | string>;
}

export interface Scenario {
  name: string;
  run(): Promise<BenchResult[]>;
}

/** Operations per second of fn over at least `ms` milliseconds (after a warm-up). */
export async function opsPerSecond(fn: () => Promise<unknown>, ms = 2000, concurrency = 1): Promise<number> {
  for (let i = 0; i < 20; i++) await fn();
  let done = 0;
  const start = performance.now();
  const until = start + ms;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < until) {
        await fn();
        done++;
      }
    }),
  );
  return done / ((performance.now() - start) / 1000);
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const index = Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1);
  return sorted[Math.max(0, index)] ?? NaN;
}

export function formatResult(r: BenchResult): string {
  const value = `${r.value.toFixed(1)} ${r.unit}`;
  const ratio = r.baseline
    ? `  ratio ${(r.value / r.baseline.value).toFixed(3)} vs ${r.baseline.name} (${r.baseline.value.toFixed(1)} ${r.unit})`
    : '';
  const extra = r.extra
    ? `  ${Object.entries(r.extra)
        .map(([k, v]) => `${k}=${typeof v === 'number' ? v.toFixed(2) : v}`)
        .join(' ')}`
    : '';
  return `${r.name}: ${value}${ratio}${extra}`;
}

/**
 * Round trips to PostgreSQL made by this process, counted at the driver: a
 * `pg` Client query (pooled or not) sent while none of that client's is
 * unanswered is one wait; one written behind an unanswered one (pipeline mode,
 * src/db/pipelined-transaction.ts) travels in the same trip, as
 * test/support/round-trips.ts counts them. A regression in round trips per
 * request shows here without timing. Servers in other processes
 * (GATEHOUSE_WORKERS rows) are not counted. Work after the answer (the audit
 * sealer, the SCIM request log) is, unlike the tests' bounds.
 */
let roundTripsSoFar = 0;
let counting = false;
export async function roundTrips(): Promise<() => number> {
  if (!counting) {
    counting = true;
    const pg = (await import('pg')).default;
    const proto = pg.Client.prototype as unknown as { query: (...args: unknown[]) => unknown };
    const original = proto.query;
    const inFlight = new WeakMap<object, number>();
    proto.query = function (this: object, ...args: unknown[]) {
      const pending = inFlight.get(this) ?? 0;
      if (pending === 0) roundTripsSoFar++;
      inFlight.set(this, pending + 1);
      const answered = () => inFlight.set(this, (inFlight.get(this) ?? 1) - 1);
      const result = original.apply(this, args) as Promise<unknown> | undefined;
      if (result && typeof result.then === 'function') result.then(answered, answered);
      else answered();
      return result;
    };
  }
  const start = roundTripsSoFar;
  return () => roundTripsSoFar - start;
}

/** Requests `next()` completes in `seconds` with `inFlight` always outstanding (closed loop): a capacity probe. */
export async function closedLoopRate(
  next: () => Promise<unknown>,
  seconds: number,
  inFlight: number,
): Promise<number> {
  let done = 0;
  const until = performance.now() + seconds * 1000;
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (performance.now() < until) {
        await next();
        done += 1;
      }
    }),
  );
  return done / seconds;
}

export interface OpenLoop {
  /** Stop sending, wait for what is in flight; answers how many arrivals were due. */
  stop(): Promise<{ sent: number; dropped: number }>;
}

/**
 * Arrivals at `rate` per second whatever the answers take (open loop: a slow
 * server does not slow the load, as real clients do not wait for each other).
 * An arrival finding `maxInFlight` requests outstanding is counted as dropped,
 * not queued, so an overloaded server shows as drops instead of an unbounded backlog.
 */
export function openLoop(
  rate: number,
  maxInFlight: number,
  send: (issuedAt: number) => Promise<void>,
): OpenLoop {
  let stopped = false;
  let inFlight = 0;
  let dropped = 0;
  let sent = 0;
  const pending = new Set<Promise<void>>();
  const loop = (async () => {
    const start = performance.now();
    while (!stopped) {
      const due = Math.floor(((performance.now() - start) / 1000) * rate) - sent;
      for (let k = 0; k < due; k++) {
        sent += 1;
        if (inFlight >= maxInFlight) {
          dropped += 1;
          continue;
        }
        inFlight += 1;
        const p = send(performance.now()).finally(() => {
          inFlight -= 1;
          pending.delete(p);
        });
        pending.add(p);
      }
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    await Promise.all(pending);
  })();
  return {
    async stop() {
      stopped = true;
      await loop;
      return { sent, dropped };
    },
  };
}
