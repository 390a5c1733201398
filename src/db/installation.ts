import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import argon2 from 'argon2';
import type pg from 'pg';
import type { Config } from '../config/config.js';
import { open, seal } from '../config/secret-box.js';
import { ADMIN_TOKEN_PREFIX, generateToken, readOrCreateSecret, readSecret } from '../config/secrets.js';
import type { Secrets } from '../config/secrets.js';

/**
 * "Which secrets does this database belong with?" — answered once, by the
 * first node, and checked by every later one (issue 11; docs/operations.md,
 * "Many nodes"). The `gatehouse_installation` row holds a key-check value of
 * the master key, an argon2id hash of the operator admin token and the
 * runtime role's password sealed under the master key. A node whose database
 * has that row never generates a master key, an admin token or a role
 * password: it brings the first node's (environment or data folder), they are
 * checked against the row, and a mismatch stops the start with a message that
 * says what to share — instead of re-keying the role under the first node.
 *
 * Runs as the owner, on the bootstrap connection that holds the advisory lock
 * (db/bootstrap.ts), so two nodes starting together cannot both initialise.
 */

/** A start that would damage, or cannot join, the installation: the message says what to do. */
export class InstallationError extends Error {}

const KEY_CHECK_LABEL = 'gatehouse installation key check v1';
const APP_PASSWORD_CONTEXT = 'installation:app_password';

/** A key-check value: an HMAC of a fixed label, so it tells keys apart without revealing one. */
export function masterKeyCheck(masterKey: Buffer): string {
  return `v1.${createHmac('sha256', masterKey).update(KEY_CHECK_LABEL).digest('base64url')}`;
}

function sameText(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

function decodeMasterKey(text: string, from: string): Buffer {
  const key = Buffer.from(text, 'base64url');
  if (key.length !== 32) throw new InstallationError(`the master key in ${from} is not 32 bytes (base64url)`);
  return key;
}

interface InstallationRow {
  master_key_check: string;
  admin_token_hash: string;
  app_password_sealed: string | null;
}

export interface JoinedInstallation {
  secrets: Secrets;
  /** The runtime role's password, when this node connects with the one the installation keeps. */
  appPassword: string | null;
  /** True when this start initialised the database (the first node). */
  initialised: boolean;
}

const SHARE =
  'Start every node after the first with the same GATEHOUSE_MASTER_KEY and GATEHOUSE_ADMIN_TOKEN as the first ' +
  "(its environment, or the files master-key and admin-token in its data folder); the runtime role's password " +
  'then comes from the database.';

/**
 * Joins (or, on an empty database, creates) the installation. `owner` is a
 * connected client as the database owner inside the bootstrap lock;
 * `setAppPassword` gives the runtime role a login password (first node only).
 */
export async function joinInstallation(
  owner: pg.Client,
  config: Pick<Config, 'dataDir' | 'adminToken' | 'masterKey' | 'databaseAppUrl'>,
  setAppPassword: (password: string) => Promise<void>,
): Promise<JoinedInstallation> {
  const { rows } = await owner.query<InstallationRow>(
    'SELECT master_key_check, admin_token_hash, app_password_sealed FROM gatehouse_installation WHERE id = 1',
  );
  const row = rows[0];
  return row ? joinExisting(row, config) : initialise(owner, config, setAppPassword);
}

async function initialise(
  owner: pg.Client,
  config: Pick<Config, 'dataDir' | 'adminToken' | 'masterKey' | 'databaseAppUrl'>,
  setAppPassword: (password: string) => Promise<void>,
): Promise<JoinedInstallation> {
  const masterKey = decodeMasterKey(
    config.masterKey ??
      (await readOrCreateSecret(config.dataDir, 'master-key', () => randomBytes(32).toString('base64url')))
        .value,
    config.masterKey ? 'GATEHOUSE_MASTER_KEY' : 'the data folder',
  );
  let adminToken = config.adminToken;
  let adminTokenGenerated = false;
  if (!adminToken) {
    const stored = await readOrCreateSecret(config.dataDir, 'admin-token', () =>
      generateToken(ADMIN_TOKEN_PREFIX),
    );
    adminToken = stored.value;
    adminTokenGenerated = stored.created;
  }
  let appPassword: string | null = null;
  if (!config.databaseAppUrl) {
    appPassword = (
      await readOrCreateSecret(config.dataDir, 'db-app-password', () => randomBytes(24).toString('base64url'))
    ).value;
    await setAppPassword(appPassword);
  }
  await owner.query(
    `INSERT INTO gatehouse_installation (id, master_key_check, admin_token_hash, app_password_sealed)
     VALUES (1, $1, $2, $3)`,
    [
      masterKeyCheck(masterKey),
      await argon2.hash(adminToken, { type: argon2.argon2id }),
      appPassword === null ? null : seal(masterKey, appPassword, APP_PASSWORD_CONTEXT),
    ],
  );
  return { secrets: { adminToken, masterKey, adminTokenGenerated }, appPassword, initialised: true };
}

async function joinExisting(
  row: InstallationRow,
  config: Pick<Config, 'dataDir' | 'adminToken' | 'masterKey' | 'databaseAppUrl'>,
): Promise<JoinedInstallation> {
  const keyText = config.masterKey ?? (await readSecret(config.dataDir, 'master-key'));
  if (!keyText)
    throw new InstallationError(
      `this database was initialised by another Gatehouse node and this node has no master key. ${SHARE}`,
    );
  const masterKey = decodeMasterKey(keyText, config.masterKey ? 'GATEHOUSE_MASTER_KEY' : 'the data folder');
  if (!sameText(masterKeyCheck(masterKey), row.master_key_check))
    throw new InstallationError(
      `the master key (${config.masterKey ? 'GATEHOUSE_MASTER_KEY' : `${config.dataDir}/master-key`}) is not ` +
        `the one this database was initialised with; this node could not read its signing keys or IdP secrets. ${SHARE}`,
    );
  const adminToken = config.adminToken ?? (await readSecret(config.dataDir, 'admin-token'));
  if (!adminToken)
    throw new InstallationError(
      `this database was initialised by another Gatehouse node and this node has no admin token. ${SHARE}`,
    );
  if (!(await argon2.verify(row.admin_token_hash, adminToken)))
    throw new InstallationError(
      `the admin token (${config.adminToken ? 'GATEHOUSE_ADMIN_TOKEN' : `${config.dataDir}/admin-token`}) is not ` +
        `the one this database was initialised with. ${SHARE}`,
    );
  let appPassword: string | null = null;
  if (!config.databaseAppUrl) {
    if (!row.app_password_sealed)
      throw new InstallationError(
        'this database was initialised with GATEHOUSE_DATABASE_APP_URL (the runtime role is managed outside ' +
          'Gatehouse); set the same GATEHOUSE_DATABASE_APP_URL on this node.',
      );
    appPassword = open(masterKey, row.app_password_sealed, APP_PASSWORD_CONTEXT);
  }
  return {
    secrets: { adminToken, masterKey, adminTokenGenerated: false },
    appPassword,
    initialised: false,
  };
}
