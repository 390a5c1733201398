import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { startEmbeddedPostgres, type EmbeddedDatabase } from '../../src/db/embedded.js';

/**
 * The embedded database after an unclean stop (issue 11): a postmaster.pid
 * whose process is gone, or whose PID now names another program, is removed
 * and the start goes on; a data folder a running PostgreSQL still holds is
 * refused with the PID and what to do.
 */

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => resolve(typeof a === 'object' && a ? a.port : 0));
    });
  });
}

let parent: string;
let dir: string;
const password = randomBytes(16).toString('hex');
const logs: string[] = [];

const start = async () =>
  startEmbeddedPostgres({
    dir,
    port: await freePort(),
    password,
    settings: { fsync: 'off' },
    log: (m) => logs.push(m),
  });

async function answers(db: EmbeddedDatabase): Promise<boolean> {
  const client = new pg.Client({ connectionString: db.superuserUrl });
  await client.connect();
  try {
    return (await client.query('SELECT 1 AS one')).rows[0]?.one === 1;
  } finally {
    await client.end();
  }
}

beforeAll(async () => {
  parent = await mkdtemp(path.join(tmpdir(), 'gatehouse-pg-lock-'));
  dir = path.join(parent, 'pg');
});
afterAll(() => rm(parent, { recursive: true, force: true }));

it('refuses a data folder a running PostgreSQL holds, naming its PID', async () => {
  const first = await start();
  try {
    await expect(start()).rejects.toThrow(/data folder .* is in use by PID \d+ .*GATEHOUSE_DATA_DIR/);
    expect(await answers(first)).toBe(true); // the running one is untouched
  } finally {
    await first.stop();
  }
}, 90_000);

it('removes a postmaster.pid whose process is gone, and starts', async () => {
  const gone = spawnSync('true').pid;
  expect(gone).toBeGreaterThan(0);
  await writeFile(path.join(dir, 'postmaster.pid'), `${gone}\n${dir}\n`);
  const db = await start();
  try {
    expect(await answers(db)).toBe(true);
    expect(logs.join('\n')).toMatch(
      new RegExp(`removed a stale postmaster.pid \\(PID ${gone} is not running\\)`),
    );
  } finally {
    await db.stop();
  }
}, 90_000);

it('removes a postmaster.pid whose PID now belongs to another program, and starts', async () => {
  // This test process is alive and is not PostgreSQL: a PID reused after a reboot looks like this.
  await writeFile(path.join(dir, 'postmaster.pid'), `${process.pid}\n${dir}\n`);
  const db = await start();
  try {
    expect(await answers(db)).toBe(true);
  } finally {
    await db.stop();
  }
}, 90_000);
