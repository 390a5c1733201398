/**
 * GATEHOUSE_WORKERS' default within a container's CPU quota (src/config/cpu-limit.ts): the cgroup
 * v2 and v1 file contents a container would show, computed without a container.
 */
import { availableParallelism } from 'node:os';
import { parseConfig } from '../../src/config/config.js';
import {
  availableCpus,
  cgroupCpuLimit,
  defaultWorkerCount,
  readCgroupCpuFiles,
} from '../../src/config/cpu-limit.js';

describe('GATEHOUSE_WORKERS default within a cgroup CPU quota', () => {
  it.each([
    ['v2 "max 100000": no quota', { cpuMax: 'max 100000\n' }, undefined],
    ['v2 "max" alone: no quota', { cpuMax: 'max\n' }, undefined],
    ['v2 two CPUs', { cpuMax: '200000 100000\n' }, 2],
    ['v2 one and a half CPUs, rounded up', { cpuMax: '150000 100000\n' }, 2],
    ['v2 a tenth of a CPU, rounded up to one', { cpuMax: '10000 100000' }, 1],
    ['v1 -1: no quota', { cfsQuotaUs: '-1\n', cfsPeriodUs: '100000\n' }, undefined],
    ['v1 four CPUs', { cfsQuotaUs: '400000\n', cfsPeriodUs: '100000\n' }, 4],
    ['v1 with a 50 ms period', { cfsQuotaUs: '125000', cfsPeriodUs: '50000' }, 3],
    ['v1 quota without its period', { cfsQuotaUs: '400000' }, undefined],
    [
      'both (hybrid hierarchy): the smaller',
      { cpuMax: '300000 100000', cfsQuotaUs: '100000', cfsPeriodUs: '100000' },
      1,
    ],
    ['no files', {}, undefined],
    ['garbage in cpu.max', { cpuMax: 'lots of cpus' }, undefined],
    ['a negative v2 quota', { cpuMax: '-5 100000' }, undefined],
    ['a zero period', { cpuMax: '200000 0' }, undefined],
    ['a zero quota', { cfsQuotaUs: '0', cfsPeriodUs: '100000' }, undefined],
    ['fractional numbers', { cpuMax: '1.5e5 1e5' }, undefined],
    ['three fields', { cpuMax: '200000 100000 7' }, undefined],
    ['an empty file', { cpuMax: '' }, undefined],
  ])('%s', (_, files, expected) => {
    expect(cgroupCpuLimit(files)).toBe(expected);
  });

  it('defaults to min(available parallelism, the quota), at least 1', () => {
    // The case: 2 CPUs of quota on a 64-core host.
    expect(defaultWorkerCount(64, { cpuMax: '200000 100000' })).toBe(2);
    expect(defaultWorkerCount(64, { cfsQuotaUs: '200000', cfsPeriodUs: '100000' })).toBe(2);
    // A quota above the cores the process may use changes nothing.
    expect(defaultWorkerCount(2, { cpuMax: '800000 100000' })).toBe(2);
    expect(defaultWorkerCount(8, { cpuMax: 'max 100000' })).toBe(8);
    expect(defaultWorkerCount(8, {})).toBe(8);
    expect(defaultWorkerCount(8, { cpuMax: 'garbage' })).toBe(8);
    expect(defaultWorkerCount(0, {})).toBe(1);
  });

  it('reads this machine without failing, and the config default is that figure', () => {
    const files = readCgroupCpuFiles();
    for (const v of Object.values(files)) expect(['string', 'undefined']).toContain(typeof v);
    const cpus = availableCpus();
    expect(cpus).toBe(defaultWorkerCount(availableParallelism(), files));
    expect(cpus).toBeGreaterThanOrEqual(1);
    expect(cpus).toBeLessThanOrEqual(availableParallelism());
    expect(parseConfig({}).workers).toBe(cpus);
    expect(parseConfig({ GATEHOUSE_WORKERS: '3' }).workers).toBe(3);
  });
});
