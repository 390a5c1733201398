import { createHash, randomUUID, X509Certificate } from 'node:crypto';
import type { EntityManager } from 'typeorm';
import { recordAudit, type AuditContext } from '../audit/audit.service.js';
import { open, seal } from '../config/secret-box.js';
import type { Database } from '../db/database.js';
import { ConflictError, NotFoundError } from '../errors.js';
import { requireLiveTenant } from '../tenants/tenant-guard.js';
import { Connection } from './connection.entity.js';
import { generateSpKey } from './sp-keys-certificate.js';
import { ConnectionSpKey, type SpKeyStatus, type SpKeyUse } from './sp-keys.entity.js';

/**
 * Which SP keys does a SAML connection sign with, decrypt with and publish?
 * (issue 16; table connection_sp_keys). Per connection and use there is at
 * most one key in each role:
 *
 * - `current` signs AuthnRequests (signing) or is the first tried to decrypt
 *   (encryption);
 * - `next` is published in the SP metadata at once, so the IdP can import it
 *   before it is used (rotate), and becomes current on activate;
 * - `previous` is the key activation replaced: still published and still
 *   decrypts (the IdP may not have moved yet), until retire;
 * - `retired` keeps its certificate for the record and no private key.
 *
 * Every published encryption key decrypts (current, next, previous): an IdP
 * may encrypt to any certificate the metadata lists. Signing precedence: the
 * connection's own current signing key; else the deployment-wide key from
 * the operator's PEM files (GATEHOUSE_SAML_SP_SIGNING_KEY_FILE); else a key of
 * its own is created on first need. Encryption keys are always the
 * connection's own, created on first need (SP metadata, admin list).
 */

/** The context (AAD) a private key is sealed under: moved to another row, it does not open. */
export const spKeyContext = (tenantId: string, connectionId: string, id: string) =>
  `connection_sp_key:${tenantId}:${connectionId}:${id}`;

/** Serialises creation and rotation of one connection's keys across nodes (released at commit). */
const LOCK_SQL = `SELECT pg_advisory_xact_lock(hashtextextended('gatehouse:connection_sp_keys:' || $1, 0))`;

/** Published order: the IdP picks the first certificate it understands, so current leads. */
const PUBLISHED: readonly SpKeyStatus[] = ['current', 'next', 'previous'];

export interface SpKeyView {
  id: string;
  use: SpKeyUse;
  status: SpKeyStatus;
  certificate_pem: string;
  fingerprint_sha256: string;
  not_after: string;
  created_at: string;
  activated_at: string | null;
  retired_at: string | null;
}

/** A key as the admin API shows it: certificate and dates, never the private key. */
export function spKeyView(k: ConnectionSpKey): SpKeyView {
  return {
    id: k.id,
    use: k.use,
    status: k.status,
    certificate_pem: k.certificatePem,
    fingerprint_sha256: createHash('sha256').update(new X509Certificate(k.certificatePem).raw).digest('hex'),
    not_after: k.notAfter.toISOString(),
    created_at: k.createdAt.toISOString(),
    activated_at: k.activatedAt?.toISOString() ?? null,
    retired_at: k.retiredAt?.toISOString() ?? null,
  };
}

/** What the audit trail keeps of a key: which one, never a PEM body. */
const auditOf = (k: ConnectionSpKey) => ({
  id: k.id,
  use: k.use,
  fingerprint_sha256: spKeyView(k).fingerprint_sha256,
  not_after: k.notAfter.toISOString(),
});

export interface SpKeyOptions {
  masterKey: Buffer;
  /** The operator configured the deployment-wide signing key: no own signing key is made on first need. */
  deploymentSigningKey: boolean;
}

async function liveKeys(em: EntityManager, connectionId: string): Promise<ConnectionSpKey[]> {
  // idor check: RLS scopes the read to the transaction's tenant; the connection id is that tenant's.
  // A query builder, not find options: a find's `where` is walked with for…in (docs/security.md §3).
  return em
    .createQueryBuilder(ConnectionSpKey, 'k')
    .where('k.connectionId = :connectionId', { connectionId })
    .andWhere("k.status <> 'retired'")
    .getMany();
}

const find = (keys: ConnectionSpKey[], use: SpKeyUse, status: SpKeyStatus) =>
  keys.find((k) => k.use === use && k.status === status);

async function insertKey(
  em: EntityManager,
  masterKey: Buffer,
  input: { tenantId: string; connectionId: string; use: SpKeyUse; status: 'current' | 'next'; now: Date },
): Promise<ConnectionSpKey> {
  const generated = await generateSpKey({ commonName: `Gatehouse SP ${input.connectionId}`, now: input.now });
  const key = new ConnectionSpKey();
  key.tenantId = input.tenantId;
  key.id = randomUUID();
  key.connectionId = input.connectionId;
  key.use = input.use;
  key.status = input.status;
  key.certificatePem = generated.certificatePem;
  key.privateKeyEnc = seal(
    masterKey,
    generated.privateKeyPem,
    spKeyContext(input.tenantId, input.connectionId, key.id),
  );
  key.notAfter = generated.notAfter;
  key.createdAt = input.now;
  key.activatedAt = input.status === 'current' ? input.now : null;
  key.retiredAt = null;
  await em.insert(ConnectionSpKey, key);
  return key;
}

/** Signing keys are needed only by connections that sign AuthnRequests, and only without a deployment key. */
type KeyedConnection = Pick<Connection, 'tenantId' | 'id' | 'samlSignAuthnRequests'>;

function missingKeys(
  keys: ConnectionSpKey[],
  connection: KeyedConnection,
  options: SpKeyOptions,
): SpKeyUse[] {
  const missing: SpKeyUse[] = [];
  if (!find(keys, 'encryption', 'current')) missing.push('encryption');
  if (connection.samlSignAuthnRequests && !options.deploymentSigningKey && !find(keys, 'signing', 'current'))
    missing.push('signing');
  return missing;
}

/**
 * The connection's live keys, creating the current ones it lacks (first
 * need). Runs in the caller's tenant transaction; creation is audited
 * (`connection.sp_keys_created`) in it.
 */
export async function ensureSpKeys(
  em: EntityManager,
  connection: KeyedConnection,
  options: SpKeyOptions,
  now: Date,
): Promise<ConnectionSpKey[]> {
  let keys = await liveKeys(em, connection.id);
  if (missingKeys(keys, connection, options).length === 0) return keys;
  await em.query(LOCK_SQL, [connection.id]);
  keys = await liveKeys(em, connection.id);
  const created: ConnectionSpKey[] = [];
  for (const use of missingKeys(keys, connection, options)) {
    created.push(
      await insertKey(em, options.masterKey, {
        tenantId: connection.tenantId,
        connectionId: connection.id,
        use,
        status: 'current',
        now,
      }),
    );
  }
  await recordAudit(em, connection.tenantId, {
    actor: { type: 'system', id: 'gatehouse' },
    action: 'connection.sp_keys_created',
    target: { type: 'connection', id: connection.id },
    after: { keys: created.map(auditOf) },
  });
  return [...keys, ...created];
}

/** The certificates the SP metadata lists, per use: current, next, previous. */
export function publishedCertificates(keys: ConnectionSpKey[], use: SpKeyUse): string[] {
  return PUBLISHED.map((status) => find(keys, use, status)?.certificatePem).filter(
    (pem): pem is string => pem !== undefined,
  );
}

/** SP metadata: the connection's published certificates, its keys created on first need. */
export async function spMetadataCertificates(
  db: Database,
  connection: KeyedConnection,
  options: SpKeyOptions & { deploymentSigningCertificatePem: string | null },
): Promise<{ signing: string[]; encryption: string[] }> {
  const keys = await db.withTenant(connection.tenantId, (em) =>
    ensureSpKeys(em, connection, options, new Date()),
  );
  const own = publishedCertificates(keys, 'signing');
  const signing =
    find(keys, 'signing', 'current') || !options.deploymentSigningCertificatePem
      ? own
      : [options.deploymentSigningCertificatePem, ...own];
  return { signing, encryption: publishedCertificates(keys, 'encryption') };
}

export interface SpPrivateKey {
  id: string;
  status: SpKeyStatus;
  privateKeyPem: string;
}

function openKey(masterKey: Buffer, k: ConnectionSpKey): SpPrivateKey {
  if (!k.privateKeyEnc) throw new Error(`SP key ${k.id} has no private key`);
  return {
    id: k.id,
    status: k.status,
    privateKeyPem: open(masterKey, k.privateKeyEnc, spKeyContext(k.tenantId, k.connectionId, k.id)),
  };
}

/** The key that signs this connection's AuthnRequests now: its own current one (null: none of its own). */
export async function currentSigningKey(
  db: Database,
  connection: KeyedConnection,
  options: SpKeyOptions,
): Promise<SpPrivateKey | null> {
  const keys = await db.withTenant(connection.tenantId, (em) =>
    ensureSpKeys(em, connection, options, new Date()),
  );
  const current = find(keys, 'signing', 'current');
  return current ? openKey(options.masterKey, current) : null;
}

/** The keys an EncryptedAssertion may be encrypted to, in the order they are tried: current, next, previous. */
export async function decryptionKeys(
  db: Database,
  connection: Pick<Connection, 'tenantId' | 'id'>,
  masterKey: Buffer,
): Promise<SpPrivateKey[]> {
  // No creation here: an assertion encrypted before the connection had a key cannot be for us.
  const keys = await db.withTenant(connection.tenantId, (em) => liveKeys(em, connection.id));
  return PUBLISHED.map((status) => find(keys, 'encryption', status))
    .filter((k): k is ConnectionSpKey => k !== undefined)
    .map((k) => openKey(masterKey, k));
}

async function samlConnection(
  em: EntityManager,
  tenantId: string,
  connectionId: string,
): Promise<Connection> {
  await requireLiveTenant(em, tenantId);
  // idor check: RLS scopes the read to tenantId, so another tenant's connection id is not found.
  const connection = await em
    .createQueryBuilder(Connection, 'c')
    .where('c.id = :connectionId', { connectionId })
    .andWhere("c.type = 'saml'")
    .getOne();
  if (!connection) throw new NotFoundError('Connection');
  return connection;
}

/** GET …/sp-keys: every key of the connection, retired ones included, newest first. */
export async function listSpKeys(
  db: Database,
  tenantId: string,
  connectionId: string,
  options: SpKeyOptions,
): Promise<SpKeyView[]> {
  return db.withTenant(tenantId, async (em) => {
    const connection = await samlConnection(em, tenantId, connectionId);
    await ensureSpKeys(em, connection, options, new Date());
    const rows = await em
      .createQueryBuilder(ConnectionSpKey, 'k')
      .where('k.connectionId = :connectionId', { connectionId })
      .orderBy('k.createdAt', 'DESC')
      .addOrderBy('k.id', 'ASC')
      .getMany();
    return rows.map(spKeyView);
  });
}

export type SpKeyChange = 'rotate' | 'activate' | 'retire';

/**
 * rotate: publish a new `next` key (409 when one is already waiting);
 * activate: previous → retired, current → previous, next → current (409
 * without a next key); retire: previous → retired (409 without one). Each in
 * one transaction under the connection's lock, audited in it.
 */
export async function changeSpKeys(
  db: Database,
  tenantId: string,
  connectionId: string,
  change: { action: SpKeyChange; use: SpKeyUse },
  options: SpKeyOptions,
  ctx: AuditContext,
  now = new Date(),
): Promise<SpKeyView[]> {
  return db.withTenant(tenantId, async (em) => {
    const connection = await samlConnection(em, tenantId, connectionId);
    await em.query(LOCK_SQL, [connectionId]);
    await applySpKeyChange(em, connection, change, options, ctx, now);
    const rows = await em
      .createQueryBuilder(ConnectionSpKey, 'k')
      .where('k.connectionId = :connectionId', { connectionId })
      .orderBy('k.createdAt', 'DESC')
      .addOrderBy('k.id', 'ASC')
      .getMany();
    return rows.map(spKeyView);
  });
}

/** One step on the connection's keys, the lock held: the admin routes and the automatic rollover share it. */
async function applySpKeyChange(
  em: EntityManager,
  connection: Connection,
  change: { action: SpKeyChange; use: SpKeyUse },
  options: SpKeyOptions,
  ctx: AuditContext,
  now: Date,
): Promise<void> {
  const { tenantId, id: connectionId } = connection;
  const keys = await liveKeys(em, connectionId);
  const { use } = change;
  const next = find(keys, use, 'next');
  const current = find(keys, use, 'current');
  const previous = find(keys, use, 'previous');
  const retire = async (k: ConnectionSpKey) => {
    await em.update(
      ConnectionSpKey,
      { tenantId, id: k.id },
      { status: 'retired', privateKeyEnc: null, retiredAt: now },
    );
  };
  let after: Record<string, unknown>;
  let action: string;
  if (change.action === 'rotate') {
    if (next) throw new ConflictError(`a next ${use} key is already published; activate it first`);
    const created = await insertKey(em, options.masterKey, {
      tenantId,
      connectionId,
      use,
      status: 'next',
      now,
    });
    action = 'connection.sp_key_rotated';
    after = { use, next: auditOf(created) };
  } else if (change.action === 'activate') {
    if (!next) throw new ConflictError(`no next ${use} key to activate; rotate first`);
    // Order matters: one key per role (partial unique index).
    if (previous) await retire(previous);
    if (current) await em.update(ConnectionSpKey, { tenantId, id: current.id }, { status: 'previous' });
    await em.update(ConnectionSpKey, { tenantId, id: next.id }, { status: 'current', activatedAt: now });
    action = 'connection.sp_key_activated';
    after = {
      use,
      current: auditOf(next),
      previous: current ? auditOf(current) : null,
      retired: previous ? auditOf(previous) : null,
    };
  } else {
    if (!previous) throw new ConflictError(`no previous ${use} key to retire`);
    await retire(previous);
    action = 'connection.sp_key_retired';
    after = { use, retired: auditOf(previous) };
  }
  await recordAudit(em, tenantId, {
    ...ctx,
    action,
    target: { type: 'connection', id: connection.id },
    after,
  });
}

/** GATEHOUSE_SP_KEY_ROLLOVER and its delay, in milliseconds. */
export interface SpKeyRolloverPolicy {
  /** A current encryption key created longer ago than this is rotated. */
  rotateAfterMs: number;
  /** A next key is activated this long after it was published; a previous one retired this long after. */
  activateAfterMs: number;
}

/**
 * Which step of the automatic rollover is due for one use's keys, if any?
 * Pure, the clock as an argument. Retire first (the previous key's successor
 * has been current for the delay), then activate (the next key has been
 * published for the delay, so IdPs that read the metadata have it), then
 * rotate (the current key is older than the rollover age and no next waits).
 */
export function rolloverStep(
  keys: readonly Pick<ConnectionSpKey, 'status' | 'createdAt' | 'activatedAt'>[],
  policy: SpKeyRolloverPolicy,
  now: Date,
): SpKeyChange | null {
  const of = (status: SpKeyStatus) => keys.find((k) => k.status === status);
  const current = of('current');
  const next = of('next');
  const previous = of('previous');
  const age = (d: Date | null | undefined) => (d ? now.getTime() - d.getTime() : -Infinity);
  if (previous && current && age(current.activatedAt ?? current.createdAt) >= policy.activateAfterMs)
    return 'retire';
  if (next && age(next.createdAt) >= policy.activateAfterMs) return 'activate';
  if (current && !next && age(current.createdAt) >= policy.rotateAfterMs) return 'rotate';
  return null;
}

const ROLLOVER: AuditContext = { actor: { type: 'system', id: 'sp-key-rollover' } };

/**
 * The automatic rollover of one connection's SP encryption key (the
 * metadata-refresh sweep calls it): every step due now, through the same
 * change and audit events as the admin routes (connection.sp_key_rotated /
 * _activated / _retired), in one transaction under the connection's lock.
 * Returns the steps taken.
 */
export async function rollOverSpKeys(
  db: Database,
  tenantId: string,
  connectionId: string,
  policy: SpKeyRolloverPolicy,
  options: SpKeyOptions,
  now: Date,
): Promise<SpKeyChange[]> {
  return db.withTenant(tenantId, async (em) => {
    // idor check: RLS scopes the read to tenantId (the sweep's row names both).
    const connection = await em
      .createQueryBuilder(Connection, 'c')
      .where('c.id = :connectionId', { connectionId })
      .andWhere("c.type = 'saml'")
      .getOne();
    if (!connection) return [];
    await em.query(LOCK_SQL, [connectionId]);
    const steps: SpKeyChange[] = [];
    // At most retire then rotate in one pass; an activation always waits for the delay after a rotation.
    for (let i = 0; i < 3; i += 1) {
      const keys = (await liveKeys(em, connectionId)).filter((k) => k.use === 'encryption');
      const step = rolloverStep(keys, policy, now);
      if (!step) break;
      await applySpKeyChange(em, connection, { action: step, use: 'encryption' }, options, ROLLOVER, now);
      steps.push(step);
    }
    return steps;
  });
}
