import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';

/**
 * How many CPUs may this process use, counting a container's CPU quota? The default of
 * GATEHOUSE_WORKERS. `os.availableParallelism()` sees the host's cores (or the affinity mask),
 * not a cgroup CPU quota: a container limited to 2 CPUs on a 64-core host would fork 64
 * workers, each with its own pool. The quota is read from cgroup v2 (`cpu.max`) and v1
 * (`cpu.cfs_quota_us` / `cpu.cfs_period_us`); the computation is pure so it is tested on
 * file contents, without a container.
 */

/** The cgroup files' contents, undefined where a file is absent or unreadable. */
export interface CgroupCpuFiles {
  /** cgroup v2 `cpu.max`: "max 100000" (no limit) or "<quota> <period>" in microseconds. */
  cpuMax?: string | undefined;
  /** cgroup v1 `cpu.cfs_quota_us`: "-1" (no limit) or microseconds per period. */
  cfsQuotaUs?: string | undefined;
  /** cgroup v1 `cpu.cfs_period_us`. */
  cfsPeriodUs?: string | undefined;
}

const MICROSECONDS = /^\d{1,15}$/;

function cpusOf(quota: string, period: string): number | undefined {
  if (!MICROSECONDS.test(quota) || !MICROSECONDS.test(period)) return undefined;
  const q = Number(quota);
  const p = Number(period);
  // A quota of 1.5 periods lets 2 workers run (each less than a full core), so round up.
  return q > 0 && p > 0 ? Math.ceil(q / p) : undefined;
}

/** The CPUs a cgroup quota allows (ceil(quota / period)), or undefined: no quota, no file, or garbage. */
export function cgroupCpuLimit(files: CgroupCpuFiles): number | undefined {
  const limits: number[] = [];
  const v2 = files.cpuMax?.trim().split(/\s+/);
  // "max" alone is also a valid cpu.max (the period left at its default): no limit either way.
  if (v2 && v2.length === 2 && v2[0] !== 'max') {
    const cpus = cpusOf(v2[0]!, v2[1]!);
    if (cpus !== undefined) limits.push(cpus);
  }
  if (files.cfsQuotaUs !== undefined && files.cfsPeriodUs !== undefined) {
    // "-1" is v1's "no limit"; it fails the digits test and counts as none.
    const cpus = cpusOf(files.cfsQuotaUs.trim(), files.cfsPeriodUs.trim());
    if (cpus !== undefined) limits.push(cpus);
  }
  return limits.length ? Math.min(...limits) : undefined;
}

/** min(parallelism, the cgroup limit), at least 1. */
export function defaultWorkerCount(parallelism: number, files: CgroupCpuFiles): number {
  const limit = cgroupCpuLimit(files);
  return Math.max(1, Math.min(parallelism, limit ?? parallelism));
}

function readIfPresent(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/** The cgroup files as this process sees them (its own cgroup inside a container's cgroup namespace). */
export function readCgroupCpuFiles(): CgroupCpuFiles {
  const v1 = ['/sys/fs/cgroup/cpu', '/sys/fs/cgroup/cpu,cpuacct'].find(
    (dir) => readIfPresent(`${dir}/cpu.cfs_quota_us`) !== undefined,
  );
  return {
    cpuMax: readIfPresent('/sys/fs/cgroup/cpu.max'),
    cfsQuotaUs: v1 === undefined ? undefined : readIfPresent(`${v1}/cpu.cfs_quota_us`),
    cfsPeriodUs: v1 === undefined ? undefined : readIfPresent(`${v1}/cpu.cfs_period_us`),
  };
}

/** GATEHOUSE_WORKERS' default: the cores the process may use, within a container's CPU quota. */
export function availableCpus(): number {
  return defaultWorkerCount(availableParallelism(), readCgroupCpuFiles());
}
