import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { parseConfig } from '../../src/config/config.js';
import { ADMIN_TOKEN_PREFIX, generateToken } from '../../src/config/secrets.js';
import { APP_ROLE, provisionOwner, withCredentials } from '../../src/db/bootstrap.js';
import { startEmbeddedPostgres, type EmbeddedDatabase } from '../../src/db/embedded.js';
import { InstallationError } from '../../src/db/installation.js';
import { openDatabase, type DatabaseRuntime } from '../../src/db/runtime.js';
import { ENTITIES } from '../../src/entities.js';
import { startService } from '../support/server-process.js';

/**
 * Many nodes on one database (issue 11, "Shared secrets are explicit"): the
 * first node initialises the installation, later ones join it with the first
 * node's secrets or refuse to start — and never re-key the runtime role under
 * the first. A private cluster: the runtime role is cluster-wide, and these
 * tests set its password.
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
let cluster: EmbeddedDatabase;
let ownerUrl: string;
const masterKey = randomBytes(32).toString('base64url');
const adminToken = generateToken(ADMIN_TOKEN_PREFIX);
const opened: DatabaseRuntime[] = [];

function nodeConfig(name: string, env: Record<string, string> = {}) {
  return parseConfig({
    DATABASE_URL: ownerUrl,
    GATEHOUSE_DATA_DIR: path.join(parent, name),
    GATEHOUSE_BASE_URL: 'http://localhost:3000',
    ...env,
  });
}

async function open(name: string, env: Record<string, string> = {}): Promise<DatabaseRuntime> {
  const runtime = await openDatabase(nodeConfig(name, env), ENTITIES, () => undefined);
  opened.push(runtime);
  return runtime;
}

/** A new connection as the runtime role with the password node `name`'s data folder holds. */
async function appConnects(name: string): Promise<boolean> {
  const password = (await readFile(path.join(parent, name, 'db-app-password'), 'utf8')).trim();
  const client = new pg.Client({ connectionString: withCredentials(ownerUrl, APP_ROLE, password) });
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

beforeAll(async () => {
  parent = await mkdtemp(path.join(tmpdir(), 'gatehouse-installation-'));
  cluster = await startEmbeddedPostgres({
    dir: path.join(parent, 'pg'),
    port: await freePort(),
    password: randomBytes(16).toString('hex'),
    settings: { fsync: 'off' },
  });
  ownerUrl = await provisionOwner(cluster.superuserUrl, {
    database: 'gatehouse',
    ownerPassword: randomBytes(16).toString('hex'),
  });
}, 120_000);

afterAll(async () => {
  for (const r of opened) await r.db.close();
  await cluster?.stop();
  await rm(parent, { recursive: true, force: true });
});

describe('many nodes on one database', () => {
  it('two nodes starting together: exactly one initialises, the other joins under the bootstrap lock', async () => {
    const shared = { GATEHOUSE_MASTER_KEY: masterKey, GATEHOUSE_ADMIN_TOKEN: adminToken };
    const [a, b] = await Promise.all([open('node-a', shared), open('node-b', shared)]);
    expect([a.installationCreated, b.installationCreated].sort()).toEqual([false, true]);
    // Both pools work: the joiner connects with the password the first one set, taken from the database.
    for (const r of [a, b]) {
      const rows = await r.db.withPlatform((em) => em.query<{ one: number }[]>('SELECT 1 AS one'));
      expect(rows).toEqual([{ one: 1 }]);
    }
    expect(a.secrets.masterKey.equals(b.secrets.masterKey)).toBe(true);
    // Only the first node wrote a role password into its data folder; the joiner generated none.
    const first = a.installationCreated ? 'node-a' : 'node-b';
    const joiner = a.installationCreated ? 'node-b' : 'node-a';
    await expect(readFile(path.join(parent, joiner, 'db-app-password'), 'utf8')).rejects.toMatchObject({
      code: 'ENOENT',
    });
    expect(await appConnects(first)).toBe(true);
  }, 60_000);

  it('a node without the master key, or with another one, or another admin token, refuses and changes nothing', async () => {
    const first = opened.find((r) => r.installationCreated);
    const firstName = (await readFile(path.join(parent, 'node-a', 'db-app-password'), 'utf8').catch(
      () => null,
    ))
      ? 'node-a'
      : 'node-b';
    expect(first).toBeDefined();
    const attempts: [string, Record<string, string>, RegExp][] = [
      ['no-key', {}, /initialised by another Gatehouse node and this node has no master key/],
      [
        'wrong-key',
        { GATEHOUSE_MASTER_KEY: randomBytes(32).toString('base64url'), GATEHOUSE_ADMIN_TOKEN: adminToken },
        /master key \(GATEHOUSE_MASTER_KEY\) is not the one this database was initialised with/,
      ],
      [
        'no-token',
        { GATEHOUSE_MASTER_KEY: masterKey },
        /initialised by another Gatehouse node and this node has no admin token/,
      ],
      [
        'wrong-token',
        { GATEHOUSE_MASTER_KEY: masterKey, GATEHOUSE_ADMIN_TOKEN: generateToken(ADMIN_TOKEN_PREFIX) },
        /admin token \(GATEHOUSE_ADMIN_TOKEN\) is not the one/,
      ],
    ];
    for (const [name, env, message] of attempts) {
      const error = await openDatabase(nodeConfig(name, env), ENTITIES, () => undefined).then(
        () => null,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(InstallationError);
      expect((error as Error).message).toMatch(message);
      expect((error as Error).message).toMatch(/GATEHOUSE_MASTER_KEY and GATEHOUSE_ADMIN_TOKEN/);
      // It generated no secret of its own…
      for (const file of ['master-key', 'admin-token', 'db-app-password'])
        await expect(readFile(path.join(parent, name, file), 'utf8')).rejects.toMatchObject({
          code: 'ENOENT',
        });
      // …and the first node's runtime role password still works for new connections.
      expect(await appConnects(firstName)).toBe(true);
    }
    const { rows } = await withOwner((c) => c.query('SELECT count(*)::int AS n FROM gatehouse_installation'));
    expect(rows).toEqual([{ n: 1 }]);
  }, 60_000);

  it('the built server, started the wrong way, exits with the message instead of serving', async () => {
    const service = startService({
      DATABASE_URL: ownerUrl,
      PORT: String(await freePort()),
      HOST: '127.0.0.1',
      GATEHOUSE_DATA_DIR: path.join(parent, 'spawned'),
      GATEHOUSE_MASTER_KEY: randomBytes(32).toString('base64url'),
      GATEHOUSE_ADMIN_TOKEN: adminToken,
    });
    const exit = await service.exited;
    expect(exit.code).not.toBe(0);
    expect(exit.stderr).toMatch(/failed to start: the master key \(GATEHOUSE_MASTER_KEY\) is not the one/);
    expect(exit.stdout).not.toMatch(/listening on/);
  }, 60_000);
});

async function withOwner<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: ownerUrl });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}
