import { calculateJwkThumbprint, exportJWK, exportPKCS8, generateKeyPair, type JWK } from 'jose';
import { In, type EntityManager } from 'typeorm';
import { seal } from '../../config/secret-box.js';
import type { SigningAlg } from '../../apps/app.entity.js';
import { SigningKey } from './signing-key.entity.js';

/**
 * Signing keys in the database (platform table signing_keys). Each algorithm
 * has one `active` key (signs) and one `next` key (published in the JWKS, not
 * yet signing). Rotation retires the active key, promotes the next one, and
 * publishes a fresh next key; a retired key stays published until everything
 * it signed has expired. Private keys are sealed under the master key with the
 * kid as associated data, so a ciphertext moved to another row fails to open.
 */

export const SIGNING_ALGS: readonly SigningAlg[] = ['ES256', 'EdDSA', 'RS256'];

/** The context (AAD) a private key is sealed under. */
export const privateKeyContext = (kid: string) => `signing_key:${kid}`;

/** Serialises key creation and rotation across nodes (released at commit). */
const LOCK_SQL = `SELECT pg_advisory_xact_lock(hashtextextended('gatehouse:signing_keys', 0))`;

export async function generateSigningKey(
  masterKey: Buffer,
  alg: SigningAlg,
  status: 'active' | 'next',
  now: Date,
): Promise<SigningKey> {
  const pair = await generateKeyPair(alg, {
    extractable: true,
    ...(alg === 'EdDSA' ? { crv: 'Ed25519' } : {}),
  });
  const jwk = await exportJWK(pair.publicKey);
  // RFC 7638 thumbprint: a kid that names the key material itself.
  const kid = await calculateJwkThumbprint(jwk);
  const publicJwk: JWK = { ...jwk, kid, alg, use: 'sig' };
  const key = new SigningKey();
  key.kid = kid;
  key.alg = alg;
  key.publicJwk = publicJwk;
  key.privateKeyEnc = seal(masterKey, await exportPKCS8(pair.privateKey), privateKeyContext(kid));
  key.status = status;
  key.createdAt = now;
  key.activatedAt = status === 'active' ? now : null;
  key.retiredAt = null;
  key.expiresAt = null;
  return key;
}

async function insertKey(em: EntityManager, key: SigningKey): Promise<void> {
  await em.query(
    `INSERT INTO signing_keys (kid, alg, public_jwk, private_key_enc, status, created_at, activated_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7)`,
    [
      key.kid,
      key.alg,
      JSON.stringify(key.publicJwk),
      key.privateKeyEnc,
      key.status,
      key.createdAt,
      key.activatedAt,
    ],
  );
}

/** Creates whatever active/next key is missing for each algorithm; returns the kids created. */
export async function ensureSigningKeys(em: EntityManager, masterKey: Buffer, now: Date): Promise<string[]> {
  await em.query(LOCK_SQL);
  const current = await em.find(SigningKey, { where: { status: In(['active', 'next']) } });
  const created: string[] = [];
  for (const alg of SIGNING_ALGS) {
    for (const status of ['active', 'next'] as const) {
      if (current.some((k) => k.alg === alg && k.status === status)) continue;
      const key = await generateSigningKey(masterKey, alg, status, now);
      await insertKey(em, key);
      created.push(key.kid);
    }
  }
  return created;
}

export interface RotationOptions {
  now: Date;
  /** A retired key stays in the JWKS this long: the longest lifetime of anything it signed. */
  publishRetiredForSeconds: number;
  /** Retired rows are deleted this long after they left the JWKS (id_token_hint still verifies meanwhile). */
  keepRetiredForSeconds: number;
  /** Checked again under the lock, so two nodes never rotate the same schedule twice. */
  onlyIf?: (active: SigningKey[]) => boolean;
}

export interface RotationResult {
  rotated: boolean;
  activated: { kid: string; alg: SigningAlg }[];
  retired: { kid: string; alg: SigningAlg; publishedUntil: Date }[];
  published: { kid: string; alg: SigningAlg }[];
  deleted: string[];
}

/** Retires every active key, promotes every next key, publishes a new next key per algorithm. */
export async function rotateSigningKeys(
  em: EntityManager,
  masterKey: Buffer,
  options: RotationOptions,
): Promise<RotationResult> {
  const { now } = options;
  await em.query(LOCK_SQL);
  const current = await em.find(SigningKey, { where: { status: In(['active', 'next']) } });
  const result: RotationResult = { rotated: false, activated: [], retired: [], published: [], deleted: [] };
  if (options.onlyIf && !options.onlyIf(current.filter((k) => k.status === 'active'))) return result;

  const publishedUntil = new Date(now.getTime() + options.publishRetiredForSeconds * 1000);
  for (const alg of SIGNING_ALGS) {
    const active = current.find((k) => k.alg === alg && k.status === 'active');
    let next = current.find((k) => k.alg === alg && k.status === 'next');
    // Order matters: one active and one next per alg (partial unique indexes).
    if (active) {
      await em.update(
        SigningKey,
        { kid: active.kid, status: 'active' },
        { status: 'retired', retiredAt: now, expiresAt: publishedUntil },
      );
      result.retired.push({ kid: active.kid, alg, publishedUntil });
    }
    if (!next) {
      next = await generateSigningKey(masterKey, alg, 'next', now);
      await insertKey(em, next);
    }
    await em.update(SigningKey, { kid: next.kid, status: 'next' }, { status: 'active', activatedAt: now });
    result.activated.push({ kid: next.kid, alg });
    const fresh = await generateSigningKey(masterKey, alg, 'next', now);
    await insertKey(em, fresh);
    result.published.push({ kid: fresh.kid, alg });
  }
  const deleted = await em.query<[{ kid: string }[], number]>(
    `DELETE FROM signing_keys WHERE status = 'retired' AND expires_at < $1 RETURNING kid`,
    [new Date(now.getTime() - options.keepRetiredForSeconds * 1000)],
  );
  result.deleted = deleted[0].map((r) => r.kid);
  result.rotated = true;
  return result;
}
