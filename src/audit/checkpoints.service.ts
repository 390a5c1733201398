import type { EntityManager } from 'typeorm';
import type { Database } from '../db/database.js';
import { verifyAuditChainListingErased } from './audit.service.js';
import { sealReady, sealTrail } from './audit-sealer.js';
import type { CheckpointSigningKey } from './checkpoint-key.js';
import {
  checkAgainstCheckpoints,
  checkpointsHold,
  type CheckpointFindings,
  type CheckpointView,
} from './checkpoint-verify.js';

/**
 * Signed checkpoints of a tenant's audit chain (issue 12): take one, list
 * them, and verify the chain against every one. A checkpoint is not itself an
 * audit event: recording one would move the head it just signed, so a trail
 * would never be "checkpointed at its head" and the periodic worker would
 * sign forever.
 */

/** Called in the checkpoint's transaction (the webhook outbox row commits with it). */
export type CheckpointPublisher = (em: EntityManager, checkpoint: CheckpointView) => Promise<void>;

export interface CheckpointLog {
  info(fields: Record<string, unknown>, message: string): void;
}

interface Row {
  tenant_id: string;
  seq: string;
  head_hash: string;
  created_at: Date;
  signature: string;
  key_id: string;
}

const view = (r: Row): CheckpointView => ({
  tenant_id: r.tenant_id,
  seq: Number(r.seq),
  hash: r.head_hash,
  created_at: r.created_at.toISOString(),
  signature: r.signature,
  key_id: r.key_id,
});

const COLUMNS = 'tenant_id, seq, head_hash, created_at, signature, key_id';

export interface TakeCheckpointOptions {
  publish?: CheckpointPublisher;
  log?: CheckpointLog;
  now?: Date;
  /**
   * One sealing attempt instead of sealTrail's bounded retries (issue 13): the periodic pass,
   * which would otherwise wait per busy tenant; what a busy tenant holds back is signed next time.
   */
  sealOnce?: boolean;
}

/**
 * Signs the current head of the tenant's chain. Idempotent for an unchanged
 * head: the existing checkpoint is returned (`created: false`), also when
 * another node signed the same head a moment earlier (the primary key decides).
 * Null when the trail is empty.
 */
export async function takeCheckpoint(
  db: Database,
  key: CheckpointSigningKey,
  tenantId: string,
  options: TakeCheckpointOptions = {},
): Promise<{ checkpoint: CheckpointView; created: boolean } | null> {
  // The head signed is the sealed head (issue 13): seal first, so an operator's checkpoint (or a
  // deletion's final one) covers every event committed before it was asked for.
  await (options.sealOnce ? sealReady(db, tenantId) : sealTrail(db, tenantId));
  const result = await db.withTenant(tenantId, async (em) => {
    const [head] = await em.query<{ seq: string; hash: string }[]>(
      'SELECT seq, hash FROM audit_events WHERE tenant_id = $1 AND seq IS NOT NULL ORDER BY seq DESC LIMIT 1',
      [tenantId],
    );
    if (!head) return null;
    const existing = async () =>
      (
        await em.query<Row[]>(`SELECT ${COLUMNS} FROM audit_checkpoints WHERE tenant_id = $1 AND seq = $2`, [
          tenantId,
          head.seq,
        ])
      )[0];
    const found = await existing();
    if (found) return { checkpoint: view(found), created: false };
    const now = options.now ?? new Date();
    const signature = await key.sign({
      tenant_id: tenantId,
      seq: Number(head.seq),
      hash: head.hash,
      time: now.toISOString(),
    });
    const [inserted] = await em.query<Row[]>(
      `INSERT INTO audit_checkpoints (${COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)
       ON CONFLICT (tenant_id, seq) DO NOTHING RETURNING ${COLUMNS}`,
      [tenantId, head.seq, head.hash, now, signature, key.kid],
    );
    if (!inserted) {
      const raced = await existing();
      return raced ? { checkpoint: view(raced), created: false } : null;
    }
    const checkpoint = view(inserted);
    await options.publish?.(em, checkpoint);
    return { checkpoint, created: true };
  });
  if (result?.created) {
    // The log is one of the places checkpoints leave the building: ids, seq, hash and
    // signature only (no personal data), written once the checkpoint has committed.
    const cp = result.checkpoint;
    options.log?.info(
      {
        audit_checkpoint: {
          tenant_id: cp.tenant_id,
          seq: cp.seq,
          hash: cp.hash,
          created_at: cp.created_at,
          key_id: cp.key_id,
          signature: cp.signature,
        },
      },
      'audit checkpoint',
    );
  }
  return result;
}

/** A tenant's checkpoints, oldest first. */
export async function listCheckpoints(
  db: Database,
  tenantId: string,
  page: { limit: number; offset: number },
): Promise<{ data: CheckpointView[]; total: number }> {
  return db.withTenant(tenantId, async (em) => {
    const rows = await em.query<Row[]>(
      `SELECT ${COLUMNS} FROM audit_checkpoints WHERE tenant_id = $1 ORDER BY seq LIMIT $2 OFFSET $3`,
      [tenantId, page.limit, page.offset],
    );
    const [count] = await em.query<{ n: string }[]>(
      'SELECT count(*) AS n FROM audit_checkpoints WHERE tenant_id = $1',
      [tenantId],
    );
    return { data: rows.map(view), total: Number(count?.n ?? 0) };
  });
}

export interface TrailVerification extends CheckpointFindings {
  valid: boolean;
  checked: number;
  first_broken_seq: number | null;
  /** Erased events written before chain v2: their hash cannot be recomputed (issue 12). */
  erased_unverifiable_seqs: number[];
  /**
   * Events not yet sealed into the chain after this verification sealed what it could (issue 13):
   * their writer's transaction, or an older one, is still open. Not covered by `valid`. Online
   * only: the offline verifier sees the sealed events the admin API lists.
   */
  unsealed?: number;
  /** When the oldest of them was written (null: none). Online only, like `unsealed`. */
  oldest_unsealed_at?: string | null;
}

/**
 * The chain recomputed (audit_verify_chain) and compared with every stored
 * checkpoint: a rewrite before a checkpoint, a truncated tail or a forged
 * checkpoint each make `valid` false and name the seq.
 */
export async function verifyAuditTrail(
  db: Database,
  key: Pick<CheckpointSigningKey, 'publicJwk'>,
  tenantId: string,
): Promise<TrailVerification> {
  const chain = await verifyAuditChainListingErased(db, tenantId);
  const { checkpoints, hashes, lastSeq } = await db.withTenant(tenantId, async (em) => {
    const rows = await em.query<(Row & { event_hash: string | null })[]>(
      `SELECT c.tenant_id, c.seq, c.head_hash, c.created_at, c.signature, c.key_id, e.hash AS event_hash
         FROM audit_checkpoints c
         LEFT JOIN audit_events e ON e.tenant_id = c.tenant_id AND e.seq = c.seq
        WHERE c.tenant_id = $1 ORDER BY c.seq`,
      [tenantId],
    );
    const [last] = await em.query<{ seq: string | null }[]>(
      'SELECT max(seq) AS seq FROM audit_events WHERE tenant_id = $1',
      [tenantId],
    );
    return {
      checkpoints: rows.map(view),
      hashes: new Map(rows.map((r) => [Number(r.seq), r.event_hash ?? undefined])),
      lastSeq: Number(last?.seq ?? 0),
    };
  });
  const findings = await checkAgainstCheckpoints({
    tenantId,
    publicJwk: key.publicJwk,
    checkpoints,
    hashAt: (seq) => hashes.get(seq),
    lastSeq,
  });
  return {
    valid: chain.valid && checkpointsHold(findings),
    checked: chain.checked,
    first_broken_seq: chain.firstBrokenSeq,
    erased_unverifiable_seqs: chain.erasedUnverifiableSeqs,
    unsealed: chain.unsealed,
    oldest_unsealed_at: chain.oldestUnsealedAt,
    ...findings,
  };
}

/** Tenants (and the platform trail) whose head is past their latest checkpoint. */
export async function tenantsDueForCheckpoint(db: Database, limit: number): Promise<string[]> {
  const rows = await db.queryOutsideTenant<{ tenant_id: string }>(
    'SELECT audit_checkpoint_due_tenants($1) AS tenant_id',
    [limit],
  );
  return rows.map((r) => r.tenant_id);
}
