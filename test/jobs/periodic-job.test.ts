import { pino } from 'pino';
import { startPeriodicJob } from '../../src/periodic-job.js';

/**
 * The one loop every background pass runs through (src/periodic-job.ts):
 * what the sweeps (cleanup, metadata refresh, exports, purges) rely on. No
 * database here: the pass is a plain function, so each property is shown on
 * its own. Nothing waits on the clock beyond "until the next tick happened".
 */

interface LogLine {
  level: number;
  msg: string;
  err?: { message: string };
}

/** A real pino logger whose lines land in an array. */
function capturedLogger() {
  const lines: LogLine[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
  return { logger, lines };
}

/** Resolves when `check` holds, polling every few milliseconds (the test's own timeout bounds it). */
async function until(check: () => boolean): Promise<void> {
  while (!check()) await new Promise((resolve) => setTimeout(resolve, 5));
}

/** A promise with its resolve at hand. */
function gate() {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { opened, open };
}

describe('startPeriodicJob', () => {
  it('logs a pass that throws under its name, answers null, and runs the pass again at the next tick', async () => {
    const { logger, lines } = capturedLogger();
    let calls = 0;
    const job = startPeriodicJob({
      name: 'test sweep',
      intervalMs: 10,
      logger,
      pass: () => {
        calls += 1;
        return calls === 1 ? Promise.reject(new Error('database went away')) : Promise.resolve(calls);
      },
    });
    try {
      expect(await job.runNow()).toBeNull();
      expect(lines).toEqual([
        expect.objectContaining({
          level: 50,
          msg: 'test sweep failed',
          err: expect.objectContaining({ message: 'database went away' }),
        }),
      ]);
      // Not stuck after the failure: the timer's next pass runs and succeeds.
      await until(() => calls >= 2);
      expect(await job.runNow()).toBeGreaterThanOrEqual(2);
      expect(lines).toHaveLength(1);
    } finally {
      await job.stop();
    }
  });

  it('runs one pass at a time: runNow during a pass joins it', async () => {
    const release = gate();
    let calls = 0;
    const job = startPeriodicJob({
      name: 'slow sweep',
      intervalMs: 3600_000,
      pass: async () => {
        calls += 1;
        await release.opened;
        return 'done';
      },
    });
    const first = job.runNow();
    const second = job.runNow();
    release.open();
    expect(await Promise.all([first, second])).toEqual(['done', 'done']);
    expect(calls).toBe(1);
    await job.stop();
  });

  it('stop waits for the pass in flight, and a stopped job runs no pass', async () => {
    const release = gate();
    let finished = false;
    let calls = 0;
    const job = startPeriodicJob({
      name: 'slow sweep',
      intervalMs: 10,
      pass: async () => {
        calls += 1;
        await release.opened;
        finished = true;
        return 1;
      },
    });
    const inFlight = job.runNow();
    let stopped = false;
    const stopping = job.stop().then(() => (stopped = true));
    await new Promise((resolve) => setImmediate(resolve));
    expect(stopped).toBe(false);
    release.open();
    await stopping;
    expect(finished).toBe(true);
    expect(await inFlight).toBe(1);
    expect(await job.runNow()).toBeNull();
    // Several intervals later the cleared timer has started nothing.
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(calls).toBe(1);
  });
});
