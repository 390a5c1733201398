import { createHash, randomUUID, X509Certificate } from 'node:crypto';
import {
  calculateJwkThumbprint,
  exportJWK,
  exportPKCS8,
  generateKeyPair,
  importJWK,
  importPKCS8,
  type JWK,
} from 'jose';
import type { EntityManager } from 'typeorm';
import { recordAudit, type AuditContext } from '../audit/audit.service.js';
import { open, seal } from '../config/secret-box.js';
import { DomainError, NotFoundError } from '../errors.js';
import type { Connection } from './connection.entity.js';
import { ConnectionClientKey, type ClientKeyAlg, type ClientKeyStatus } from './client-keys.entity.js';
import { selfSignedCertificate } from './sp-keys-certificate.js';

/**
 * Which key does Gatehouse sign its client assertions with at a connection's
 * token endpoint, and which public keys does the IdP see? (private_key_jwt,
 * RFC 7523 §2.2, OIDC Core §9.) Per connection: one `current` key (signs),
 * at most one `next` (published, not yet signing), and the last `previous`
 * (neither: kept for the audit trail's sake until the next activation).
 * Rotation is two steps, like the token signing keys: `rotate` publishes a
 * next key so the IdP's JWKS cache can pick it up; `activate` switches to it.
 * Private keys are PKCS#8 sealed under the master key with tenant, connection
 * and kid as associated data: a ciphertext copied to another row does not open.
 * Each key also has a self-signed certificate (sp-keys-certificate.ts), for
 * IdPs that register client keys only as certificates (Entra ID): the JWKS
 * carries it as `x5c` with its `x5t` / `x5t#S256` thumbprints (RFC 7517
 * §4.7-4.9), the client assertion names it by `x5t` (Entra requires it).
 */
export const CLIENT_KEY_ALGS: readonly ClientKeyAlg[] = ['RS256', 'ES256'];

export const clientKeyContext = (k: Pick<ConnectionClientKey, 'tenantId' | 'connectionId' | 'kid'>) =>
  `connection_client_key:${k.tenantId}:${k.connectionId}:${k.kid}`;

/** Serialises key changes of one connection across nodes (released at commit). */
async function lockConnectionKeys(em: EntityManager, connectionId: string): Promise<void> {
  await em.query(`SELECT pg_advisory_xact_lock(hashtextextended('gatehouse:client_keys:' || $1, 0))`, [
    connectionId,
  ]);
}

async function generateClientKey(
  masterKey: Buffer,
  connection: Pick<Connection, 'tenantId' | 'id'>,
  alg: ClientKeyAlg,
  status: ClientKeyStatus,
  now: Date,
): Promise<ConnectionClientKey> {
  const pair = await generateKeyPair(alg, { extractable: true });
  const jwk = await exportJWK(pair.publicKey);
  const certificatePem = await certificateFor(pair, connection.id, now);
  // RFC 7638 thumbprint: a kid that names the key material itself.
  const kid = await calculateJwkThumbprint(jwk);
  const key = new ConnectionClientKey();
  key.tenantId = connection.tenantId;
  key.id = randomUUID();
  key.connectionId = connection.id;
  key.kid = kid;
  key.alg = alg;
  key.publicJwk = { ...jwk, kid, alg, use: 'sig' };
  key.privateKeyEnc = seal(masterKey, await exportPKCS8(pair.privateKey), clientKeyContext(key));
  key.certificatePem = certificatePem;
  key.status = status;
  key.createdAt = now;
  key.activatedAt = status === 'current' ? now : null;
  return key;
}

function certificateFor(keys: CryptoKeyPair, connectionId: string, now: Date): Promise<string> {
  return selfSignedCertificate({
    keys,
    commonName: `Gatehouse client ${connectionId}`,
    now,
    encipherment: false,
  });
}

/** RFC 7515 §4.1.7-4.1.8: base64url SHA-1 and SHA-256 digests of the certificate's DER. */
export function certificateThumbprints(certificatePem: string): { x5t: string; 'x5t#S256': string } {
  const der = new X509Certificate(certificatePem).raw;
  return {
    x5t: createHash('sha1').update(der).digest('base64url'),
    'x5t#S256': createHash('sha256').update(der).digest('base64url'),
  };
}

/**
 * A key made before certificates existed (migrations/1766700000000) gets one
 * now, signed with its own private key; under the connection lock, so two
 * nodes never make two. Returns the row with its certificate.
 */
async function withCertificate(
  em: EntityManager,
  masterKey: Buffer,
  row: ConnectionClientKey,
  now: Date,
): Promise<ConnectionClientKey> {
  if (row.certificatePem) return row;
  await lockConnectionKeys(em, row.connectionId);
  const fresh = await em.findOneBy(ConnectionClientKey, { tenantId: row.tenantId, id: row.id });
  if (!fresh) return row;
  if (fresh.certificatePem) return fresh;
  const pem = open(masterKey, fresh.privateKeyEnc, clientKeyContext(fresh));
  const keys = {
    privateKey: await importPKCS8(pem, fresh.alg, { extractable: false }),
    publicKey: (await importJWK(fresh.publicJwk, fresh.alg)) as CryptoKey,
  };
  fresh.certificatePem = await certificateFor(keys, fresh.connectionId, now);
  await em.update(
    ConnectionClientKey,
    { tenantId: fresh.tenantId, id: fresh.id },
    { certificatePem: fresh.certificatePem },
  );
  return fresh;
}

/** The public JWK as the IdP sees it: with the certificate chain and thumbprints when the key has one. */
function publishedJwk(k: ConnectionClientKey): JWK {
  if (!k.certificatePem) return k.publicJwk;
  const der = new X509Certificate(k.certificatePem).raw;
  return {
    ...k.publicJwk,
    x5c: [der.toString('base64')],
    ...certificateThumbprints(k.certificatePem),
  };
}

/** A connection switched to private_key_jwt gets a current key if it has none; returns it. */
export async function ensureClientKeys(
  em: EntityManager,
  masterKey: Buffer,
  connection: Pick<Connection, 'tenantId' | 'id'>,
  now: Date,
  alg: ClientKeyAlg = 'RS256',
): Promise<ConnectionClientKey> {
  await lockConnectionKeys(em, connection.id);
  // idor check: RLS scopes the read to the tenant of the transaction; the connection id narrows it.
  const current = await em.findOneBy(ConnectionClientKey, { connectionId: connection.id, status: 'current' });
  if (current) return current;
  const key = await generateClientKey(masterKey, connection, alg, 'current', now);
  await em.insert(ConnectionClientKey, key);
  return key;
}

/** What the admin API shows of a key: never the private part. */
export interface ClientKeyView {
  kid: string;
  alg: ClientKeyAlg;
  status: ClientKeyStatus;
  created_at: string;
  activated_at: string | null;
  public_jwk: JWK;
  /** Self-signed X.509 (PEM) around the public key: what Entra ID's "Certificates" upload takes. */
  certificate_pem: string | null;
  /** base64url SHA-1 of the certificate's DER, as the client assertion's `x5t` header carries it. */
  x5t: string | null;
  /** The same SHA-1 thumbprint in hex, as Entra's "Certificates & secrets" page shows it. */
  certificate_thumbprint: string | null;
}

export function clientKeyView(k: ConnectionClientKey): ClientKeyView {
  return {
    kid: k.kid,
    alg: k.alg,
    status: k.status,
    created_at: k.createdAt.toISOString(),
    activated_at: k.activatedAt?.toISOString() ?? null,
    public_jwk: publishedJwk(k),
    certificate_pem: k.certificatePem,
    x5t: k.certificatePem ? certificateThumbprints(k.certificatePem).x5t : null,
    certificate_thumbprint: k.certificatePem
      ? createHash('sha1').update(new X509Certificate(k.certificatePem).raw).digest('hex').toUpperCase()
      : null,
  };
}

const STATUS_ORDER: Record<ClientKeyStatus, number> = { current: 0, next: 1, previous: 2 };

export async function listClientKeys(
  em: EntityManager,
  connectionId: string,
  /** Given: keys without a certificate get one now (the admin listing, which Entra's upload reads). */
  certify?: { masterKey: Buffer; now: Date },
): Promise<ConnectionClientKey[]> {
  // idor check: RLS scopes the read to the tenant of the transaction
  const found = await em.findBy(ConnectionClientKey, { connectionId });
  const keys: ConnectionClientKey[] = [];
  // One after another: they share the transaction's connection and the connection's lock.
  for (const k of found)
    keys.push(certify ? await withCertificate(em, certify.masterKey, k, certify.now) : k);
  return keys.sort((a, b) => STATUS_ORDER[a.status] - STATUS_ORDER[b.status]);
}

/** The JWKS the IdP fetches (RFC 7517 §5): current and next, public parts only. */
export async function publishedClientJwks(em: EntityManager, connectionId: string): Promise<{ keys: JWK[] }> {
  const keys = await listClientKeys(em, connectionId);
  return { keys: keys.filter((k) => k.status !== 'previous').map(publishedJwk) };
}

/** The key a login signs its client assertion with, opened. */
export async function currentClientKey(
  em: EntityManager,
  masterKey: Buffer,
  connectionId: string,
  now = new Date(),
): Promise<{
  key: CryptoKey;
  kid: string;
  alg: ClientKeyAlg;
  thumbprints: ReturnType<typeof certificateThumbprints>;
} | null> {
  const found = await em.findOneBy(ConnectionClientKey, { connectionId, status: 'current' });
  if (!found) return null;
  const row = await withCertificate(em, masterKey, found, now);
  if (!row.certificatePem) throw new Error(`client key ${row.kid} has no certificate`);
  const pem = open(masterKey, row.privateKeyEnc, clientKeyContext(row));
  return {
    key: await importPKCS8(pem, row.alg),
    kid: row.kid,
    alg: row.alg,
    thumbprints: certificateThumbprints(row.certificatePem),
  };
}

function requirePrivateKeyJwt(connection: Connection): void {
  if (connection.type !== 'oidc' || connection.oidcClientAuthMethod !== 'private_key_jwt') {
    throw new DomainError(
      'conflict',
      'client keys exist only for OIDC connections with client_auth_method private_key_jwt',
    );
  }
}

/**
 * Publishes a new next key (replacing a next key never activated). The IdP
 * sees it at once on our JWKS URL; switch with activateNextClientKey once it
 * has (Okta and Keycloak refetch a client's jwks_uri on an unknown kid;
 * Entra needs the key uploaded by hand, docs/sso.md).
 */
export async function rotateClientKeys(
  em: EntityManager,
  masterKey: Buffer,
  connection: Connection,
  alg: ClientKeyAlg,
  ctx: AuditContext,
  now: Date,
): Promise<ConnectionClientKey> {
  requirePrivateKeyJwt(connection);
  await lockConnectionKeys(em, connection.id);
  const replaced = await em.findOneBy(ConnectionClientKey, { connectionId: connection.id, status: 'next' });
  if (replaced) await em.delete(ConnectionClientKey, { tenantId: replaced.tenantId, id: replaced.id });
  const key = await generateClientKey(masterKey, connection, alg, 'next', now);
  await em.insert(ConnectionClientKey, key);
  await recordAudit(em, connection.tenantId, {
    ...ctx,
    action: 'connection.client_key_published',
    target: { type: 'connection', id: connection.id },
    after: {
      kid: key.kid,
      alg: key.alg,
      status: 'next',
      ...(replaced ? { replaced_kid: replaced.kid } : {}),
    },
  });
  return key;
}

/**
 * The next key signs from now on; the current one becomes previous (no longer
 * published). The connection's updated_at moves, so every node's cached
 * openid-client Configuration for it is rebuilt with the new key.
 */
export async function activateNextClientKey(
  em: EntityManager,
  connection: Connection,
  ctx: AuditContext,
  now: Date,
): Promise<{ activated: ConnectionClientKey; retired: ConnectionClientKey | null }> {
  requirePrivateKeyJwt(connection);
  await lockConnectionKeys(em, connection.id);
  const keys = await em.findBy(ConnectionClientKey, { connectionId: connection.id });
  const next = keys.find((k) => k.status === 'next');
  if (!next) throw new NotFoundError('Next client key');
  const current = keys.find((k) => k.status === 'current') ?? null;
  for (const old of keys.filter((k) => k.status === 'previous'))
    await em.delete(ConnectionClientKey, { tenantId: old.tenantId, id: old.id });
  if (current) {
    await em.update(
      ConnectionClientKey,
      { tenantId: current.tenantId, id: current.id },
      { status: 'previous' },
    );
    current.status = 'previous';
  }
  await em.update(
    ConnectionClientKey,
    { tenantId: next.tenantId, id: next.id },
    { status: 'current', activatedAt: now },
  );
  next.status = 'current';
  next.activatedAt = now;
  await em.query(`UPDATE connections SET updated_at = $2 WHERE id = $1`, [connection.id, now]);
  await recordAudit(em, connection.tenantId, {
    ...ctx,
    action: 'connection.client_key_activated',
    target: { type: 'connection', id: connection.id },
    before: current ? { kid: current.kid } : null,
    after: { kid: next.kid, alg: next.alg },
  });
  return { activated: next, retired: current };
}
