import { randomBytes } from 'node:crypto';
import { chmod, mkdir, mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { letTraverse, startEmbeddedPostgres } from '../../src/db/embedded.js';
import { freePort } from '../cluster/cluster-process.js';

/**
 * The folder around the embedded database's data folder (src/db/embedded.ts): as root the server runs
 * as the `postgres` user, which must traverse it. A folder Gatehouse makes becomes 0711; a folder that
 * was there only gains the search bits. Before, any existing parent was set to 0711, so
 * GATEHOUSE_DATA_DIR=/tmp/gatehouse turned /tmp (1777: sticky, writable by all) into 0711 for every
 * program on the machine.
 */
let root: string;
beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'gatehouse-pg-folder-'));
  // mkdtemp makes it 0700; the `postgres` user must reach the folders below, as it reaches /tmp's.
  await chmod(root, 0o711);
});
afterAll(() => rm(root, { recursive: true, force: true }));

const modeOf = async (folder: string) => (await stat(folder)).mode & 0o7777;

async function folder(name: string, mode: number): Promise<string> {
  const f = path.join(root, name);
  await mkdir(f);
  await chmod(f, mode);
  return f;
}

describe('letTraverse', () => {
  it('leaves a shared temporary folder (1777) as it is', async () => {
    const shared = await folder('shared', 0o1777);
    await letTraverse(shared, false);
    expect(await modeOf(shared)).toBe(0o1777);
  });

  it('adds only the search bits to an existing folder that lacks them', async () => {
    const privateOne = await folder('private', 0o700);
    await letTraverse(privateOne, false);
    expect(await modeOf(privateOne)).toBe(0o711);
    const listed = await folder('listed', 0o754);
    await letTraverse(listed, false);
    expect(await modeOf(listed)).toBe(0o755);
  });

  it('makes a folder it created traversable but not listable (0711)', async () => {
    const made = await folder('made', 0o755);
    await letTraverse(made, true);
    expect(await modeOf(made)).toBe(0o711);
  });
});

it('starts a database inside a shared folder and leaves that folder 1777', async () => {
  const shared = await folder('shared-start', 0o1777);
  const db = await startEmbeddedPostgres({
    dir: path.join(shared, 'pg'),
    port: await freePort(),
    password: randomBytes(16).toString('hex'),
    settings: { fsync: 'off' },
  });
  try {
    expect(db.superuserUrl).toMatch(/^postgres:\/\//);
  } finally {
    await db.stop();
  }
  // As root (the server then runs as `postgres`), the old code set it to 0711 here.
  expect(await modeOf(shared)).toBe(0o1777);
});
