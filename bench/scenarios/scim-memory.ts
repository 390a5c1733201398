import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import type { BenchResult, Scenario } from '../harness.js';
import { openBenchDatabase } from '../support/bench-db.js';
import { envCount, pool } from './scim-bench-support.js';

const IN_FLIGHT = 8;

/**
 * Resident memory under SCIM load, Gatehouse vs Ory Polis (issue 13: ≤
 * Polis's). Each side runs alone in a child process (memory-child.ts) on the
 * same PostgreSQL; the parent sends GATEHOUSE_BENCH_MEMORY_USERS (default
 * 3,000) SCIM creates, 8 in flight, and samples the child's VmRSS from
 * /proc every 100 ms: the peak and the mean under load are printed, with the
 * RSS after one warm-up request (its bearer verified and cached, as on a node
 * that has served before). Linux only (/proc).
 */
export const scimMemoryScenario: Scenario = {
  name: 'scim-memory',
  async run(): Promise<BenchResult[]> {
    const count = envCount('GATEHOUSE_BENCH_MEMORY_USERS', 3000);
    const bench = await openBenchDatabase('scim_memory');
    try {
      const gatehouse = await measure('gatehouse', bench.appUrl, count);
      const polis = await measure('polis', bench.adminUrl, count);
      const row = (name: string, pick: (m: Memory) => number): BenchResult => ({
        name: `${name}, ${count} SCIM creates, ${IN_FLIGHT} in flight (issue 13: ratio ≤ 1)`,
        unit: 'MiB',
        value: pick(gatehouse),
        baseline: { name: 'Ory Polis, the same load in its own process', value: pick(polis) },
      });
      return [
        {
          ...row('resident memory peak under SCIM load', (m) => m.peak),
          extra: { idle_mib: gatehouse.idle, polis_idle_mib: polis.idle },
        },
        row('resident memory mean under SCIM load', (m) => m.mean),
      ];
    } finally {
      await bench.close();
    }
  },
};

interface Memory {
  idle: number;
  peak: number;
  mean: number;
}

const rssMiB = (pid: number): number => {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m?.[1] ? Number(m[1]) / 1024 : NaN;
};

async function measure(side: 'gatehouse' | 'polis', url: string, count: number): Promise<Memory> {
  const child: ChildProcess = spawn(
    process.execPath,
    [new URL('./memory-child.js', import.meta.url).pathname, side, url],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  try {
    const line = await new Promise<string>((resolve, reject) => {
      const rl = createInterface({ input: child.stdout! });
      rl.once('line', resolve);
      child.once('exit', (code) => reject(new Error(`${side} child exited with ${code}`)));
    });
    const target = JSON.parse(line) as { usersUrl: string; bearer: string };
    const pid = child.pid!;
    const create = async (i: number) => {
      const res = await fetch(target.usersUrl, {
        method: 'POST',
        headers: { authorization: `Bearer ${target.bearer}`, 'content-type': 'application/scim+json' },
        body: JSON.stringify({
          schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'],
          userName: `mem${i}@bench.test`,
          externalId: `mem-${i}`,
          name: { givenName: 'Bench', familyName: `User ${i}` },
          emails: [{ value: `mem${i}@bench.test`, type: 'work', primary: true }],
          active: true,
        }),
      });
      await res.arrayBuffer();
      if (res.status !== 201) throw new Error(`${side} create: HTTP ${res.status}`);
    };
    // One request first: the bearer verified and cached, as on a node that has served before.
    await create(count);
    const idle = rssMiB(pid);
    const samples: number[] = [];
    const timer = setInterval(() => samples.push(rssMiB(pid)), 100);
    try {
      await pool(count, IN_FLIGHT, create);
    } finally {
      clearInterval(timer);
    }
    samples.push(rssMiB(pid));
    return {
      idle,
      peak: Math.max(...samples),
      mean: samples.reduce((a, b) => a + b, 0) / samples.length,
    };
  } finally {
    child.stdin?.end();
    await new Promise((resolve) => {
      if (child.exitCode !== null) resolve(null);
      else child.once('exit', resolve);
    });
  }
}
