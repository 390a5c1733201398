import type { JWK } from 'jose';
import { openCheckpoint } from './checkpoint-key.js';

/**
 * Does a tenant's chain agree with its signed checkpoints? One rule for both
 * verifiers: the server's (rows read from the database) and the CLI's
 * (events fetched over the admin API, checkpoints from a file kept elsewhere).
 * The signed claims are the truth; a row's own columns are only compared to
 * them.
 */
export interface CheckpointView {
  tenant_id: string;
  seq: number;
  hash: string;
  created_at: string;
  /** Compact JWS (EdDSA) over {tenant_id, seq, hash, time}. */
  signature: string;
  key_id: string;
}

export interface CheckpointFindings {
  checkpoints_checked: number;
  /**
   * The lowest checkpoint whose signature does not verify under the key, or whose row (tenant, seq,
   * hash, created_at, key_id) differs from what was signed.
   */
  forged_checkpoint_seq: number | null;
  /** The lowest genuine checkpoint whose hash differs from the chain's hash at that seq. */
  checkpoint_mismatch_seq: number | null;
  /** Set when a genuine checkpoint lies past the chain's end: the last seq still there (0: none). */
  truncated_after_seq: number | null;
}

export interface CheckpointCheckInput {
  tenantId: string;
  publicJwk: JWK;
  checkpoints: readonly CheckpointView[];
  /** The chain's stored hash at a seq, undefined when there is no such event. */
  hashAt(seq: number): string | undefined;
  /** The highest seq of the chain (0 when it is empty). */
  lastSeq: number;
}

export async function checkAgainstCheckpoints(input: CheckpointCheckInput): Promise<CheckpointFindings> {
  const findings: CheckpointFindings = {
    checkpoints_checked: 0,
    forged_checkpoint_seq: null,
    checkpoint_mismatch_seq: null,
    truncated_after_seq: null,
  };
  const ordered = [...input.checkpoints].sort((a, b) => seqKey(a.seq) - seqKey(b.seq));
  for (const cp of ordered) {
    findings.checkpoints_checked += 1;
    const claims = await openCheckpoint(input.publicJwk, cp.signature);
    const genuine =
      claims !== null &&
      claims.tenant_id === input.tenantId &&
      cp.tenant_id === input.tenantId &&
      claims.seq === cp.seq &&
      claims.hash === cp.hash &&
      claims.time === cp.created_at &&
      (input.publicJwk.kid === undefined || cp.key_id === input.publicJwk.kid);
    if (!genuine) {
      // A row whose seq is not even a number (a hand-edited file) is still named: as 0.
      findings.forged_checkpoint_seq ??= Number.isSafeInteger(cp.seq) ? cp.seq : 0;
      continue;
    }
    if (claims.seq > input.lastSeq) {
      findings.truncated_after_seq ??= input.lastSeq;
      continue;
    }
    if (input.hashAt(claims.seq) !== claims.hash) findings.checkpoint_mismatch_seq ??= claims.seq;
  }
  return findings;
}

/** A sort key that survives a seq that is not a number (input from outside is not trusted to be well-formed). */
export const seqKey = (seq: unknown): number => (typeof seq === 'number' && Number.isFinite(seq) ? seq : 0);

export const checkpointsHold = (f: CheckpointFindings): boolean =>
  f.forged_checkpoint_seq === null && f.checkpoint_mismatch_seq === null && f.truncated_after_seq === null;
