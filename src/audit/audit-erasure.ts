import type { EntityManager } from 'typeorm';
import type { CheckpointView } from './checkpoint-verify.js';
import { sealInTransaction } from './audit-sealer.js';

/**
 * Which audit events does erasing a person rewrite, and how (issue 12)? Every
 * event of the current tenant whose actor id or target id equals one of the
 * person's values, or whose before/after holds one of them as a string at any
 * depth (case-insensitively): its personal fields (actor_id, target_id,
 * source_ip, before, after) become markers and its salt is dropped
 * (audit_erase_subject, migrations/1766000000000-…). A v2 event still verifies
 * through the digest it stored; a v1 event is listed as unverifiable. The
 * runtime role cannot do this itself: the function is SECURITY DEFINER and
 * owned by the tables' owner. The trail is sealed first (issue 13), so the
 * seqs returned name every erased event that could be sealed; an event still
 * unsealed is erased all the same (its digest was fixed when it was written)
 * and gets its seq when sealed.
 */
export async function eraseAuditSubject(
  em: EntityManager,
  tenantId: string,
  values: readonly string[],
): Promise<number[]> {
  await sealInTransaction(em, tenantId);
  const rows = await em.query<{ seqs: (string | null)[] | null }[]>(
    'SELECT audit_erase_subject($1, $2::text[]) AS seqs',
    [tenantId, values],
  );
  return (rows[0]?.seqs ?? []).filter((s): s is string => s !== null).map(Number);
}

interface CheckpointRow {
  tenant_id: string;
  seq: string;
  head_hash: string;
  created_at: Date;
  signature: string;
  key_id: string;
}

/** The newest signed checkpoint of the tenant's chain (the tombstone keeps it), in the caller's transaction. */
export async function latestCheckpoint(em: EntityManager, tenantId: string): Promise<CheckpointView | null> {
  const [row] = await em.query<CheckpointRow[]>(
    `SELECT tenant_id, seq, head_hash, created_at, signature, key_id FROM audit_checkpoints
      WHERE tenant_id = $1 ORDER BY seq DESC LIMIT 1`,
    [tenantId],
  );
  return row
    ? {
        tenant_id: row.tenant_id,
        seq: Number(row.seq),
        hash: row.head_hash,
        created_at: row.created_at.toISOString(),
        signature: row.signature,
        key_id: row.key_id,
      }
    : null;
}
