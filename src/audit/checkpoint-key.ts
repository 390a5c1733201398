import { createPrivateKey, createPublicKey, hkdfSync, type KeyObject } from 'node:crypto';
import { calculateJwkThumbprint, CompactSign, compactVerify, importJWK, type JWK } from 'jose';

/**
 * Which key signs audit checkpoints, and how does anyone check a checkpoint?
 *
 * An Ed25519 key derived from the master key with HKDF-SHA256 (RFC 5869) under
 * a fixed label, rather than generated and stored: nothing of it is in the
 * database, sealed or not, so a database owner (or a copy of the database)
 * can neither read it nor forge a checkpoint; every node derives the same key
 * from the same master key, with no row to share or rotate. The public half is
 * published as a JWK (GET /admin/v1/audit-checkpoint-key) so an auditor
 * verifies checkpoints without the master key.
 *
 * A checkpoint is a compact JWS (RFC 7515, alg EdDSA per RFC 8037) over
 * {tenant_id, seq, hash, time}; signing and verifying are jose's.
 */
const HKDF_INFO = 'gatehouse/audit-checkpoint/ed25519/v1';
/** RFC 8410 PKCS#8 prefix of an Ed25519 private key; the 32-byte seed follows. */
const ED25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
export const CHECKPOINT_JWS_TYPE = 'gatehouse-audit-checkpoint+jws';

/** What a checkpoint signs. */
export interface CheckpointClaims {
  tenant_id: string;
  seq: number;
  hash: string;
  /** RFC 3339, when it was signed. */
  time: string;
}

export interface CheckpointSigningKey {
  kid: string;
  publicJwk: JWK;
  sign(claims: CheckpointClaims): Promise<string>;
}

export async function deriveCheckpointKey(masterKey: Buffer): Promise<CheckpointSigningKey> {
  const seed = Buffer.from(hkdfSync('sha256', masterKey, Buffer.alloc(0), HKDF_INFO, 32));
  const privateKey: KeyObject = createPrivateKey({
    key: Buffer.concat([ED25519_PKCS8_PREFIX, seed]),
    format: 'der',
    type: 'pkcs8',
  });
  const exported = createPublicKey(privateKey).export({ format: 'jwk' }) as JWK;
  const kid = await calculateJwkThumbprint({ kty: exported.kty, crv: exported.crv, x: exported.x });
  const publicJwk: JWK = { kty: 'OKP', crv: 'Ed25519', x: exported.x, kid, alg: 'EdDSA', use: 'sig' };
  return {
    kid,
    publicJwk,
    sign: (claims) =>
      new CompactSign(new TextEncoder().encode(JSON.stringify(claims)))
        .setProtectedHeader({ alg: 'EdDSA', kid, typ: CHECKPOINT_JWS_TYPE })
        .sign(privateKey),
  };
}

/** One derivation per master key and process: the admin API, the worker and tenant deletion share it. */
const derived = new WeakMap<Buffer, Promise<CheckpointSigningKey>>();
export function checkpointKey(masterKey: Buffer): Promise<CheckpointSigningKey> {
  let key = derived.get(masterKey);
  if (!key) {
    key = deriveCheckpointKey(masterKey);
    derived.set(masterKey, key);
  }
  return key;
}

/**
 * The claims of a genuine checkpoint, or null when the signature does not
 * verify under `publicJwk` (another key, altered bytes, wrong algorithm, not a
 * JWS at all) or the claims are malformed. Only EdDSA is accepted.
 */
export async function openCheckpoint(publicJwk: JWK, jws: string): Promise<CheckpointClaims | null> {
  try {
    const key = await importJWK({ kty: publicJwk.kty, crv: publicJwk.crv, x: publicJwk.x }, 'EdDSA');
    const { payload, protectedHeader } = await compactVerify(jws, key, { algorithms: ['EdDSA'] });
    if (protectedHeader.typ !== CHECKPOINT_JWS_TYPE) return null;
    const claims = JSON.parse(new TextDecoder().decode(payload)) as Partial<CheckpointClaims>;
    if (
      typeof claims.tenant_id !== 'string' ||
      !Number.isSafeInteger(claims.seq) ||
      (claims.seq as number) < 1 ||
      typeof claims.hash !== 'string' ||
      typeof claims.time !== 'string'
    )
      return null;
    return claims as CheckpointClaims;
  } catch {
    return null;
  }
}
