import fc from 'fast-check';
import { ConfigError, parseConfig } from '../../src/config/config.js';
import { availableCpus } from '../../src/config/cpu-limit.js';
import { runsAsPrimary } from '../../src/cluster.js';

/**
 * GATEHOUSE_WORKERS (issue 13) is read from the environment: whatever string
 * it holds, the start either gets a whole number of workers in 1..256 or
 * stops with the configuration error naming the variable — never another
 * exception, never 0 or a fraction that would fork nothing or loop.
 */
const RUNS = Number(process.env.GATEHOUSE_FUZZ_RUNS ?? 200);
const SEED = Number(process.env.GATEHOUSE_FUZZ_SEED ?? 13);

it('defaults to the cores this process may use, and 1 runs without a primary', () => {
  // Within a container's CPU quota (src/config/cpu-limit.ts; test/config/cpu-limit.test.ts).
  expect(parseConfig({}).workers).toBe(availableCpus());
  expect(runsAsPrimary(parseConfig({ GATEHOUSE_WORKERS: '1' }))).toBe(false);
  expect(runsAsPrimary(parseConfig({ GATEHOUSE_WORKERS: '2' }))).toBe(true);
});

it('refuses 0, negatives, fractions, words and more than 256 with a configuration error', () => {
  for (const value of ['0', '-1', '1.5', 'two', '257', '1e9', 'NaN'])
    expect(() => parseConfig({ GATEHOUSE_WORKERS: value })).toThrow(/GATEHOUSE_WORKERS/);
});

it('any value: a whole number of workers in 1..256 or a ConfigError naming GATEHOUSE_WORKERS (property)', () => {
  fc.assert(
    fc.property(
      fc.oneof(fc.string({ maxLength: 12 }), fc.integer({ min: -5, max: 300 }).map(String)),
      (value) => {
        let workers: number | undefined;
        try {
          workers = parseConfig({ GATEHOUSE_WORKERS: value }).workers;
        } catch (error) {
          expect(error).toBeInstanceOf(ConfigError);
          expect((error as ConfigError).problems.join('\n')).toMatch(/GATEHOUSE_WORKERS/);
          return;
        }
        expect(Number.isInteger(workers)).toBe(true);
        expect(workers).toBeGreaterThanOrEqual(1);
        expect(workers).toBeLessThanOrEqual(256);
        // An empty value means "not set": the default.
        if (value.trim() === '') expect(workers).toBe(availableCpus());
      },
    ),
    { seed: SEED, numRuns: RUNS },
  );
});
