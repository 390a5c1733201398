import type { EntityManager } from 'typeorm';
import type { Database } from '../db/database.js';
import type { ActorType } from './audit-event.entity.js';
import { sealAfterCommitOf, sealTrail } from './audit-sealer.js';

export interface AuditActor {
  type: ActorType;
  id: string | null;
}

/** Who made a change and from where: what a service needs from its caller to audit the change. */
export interface AuditContext {
  actor: AuditActor;
  requestId?: string;
  sourceIp?: string;
}

export interface AuditInput {
  actor: AuditActor;
  action: string;
  target?: { type: string; id: string };
  requestId?: string;
  sourceIp?: string;
  before?: Record<string, unknown> | null;
  after?: Record<string, unknown> | null;
}

/** Keys whose values are never written to the audit trail, at any depth. */
const SECRET_KEY = /secret|password|token_hash|tokenhash|private|^token$|samlresponse|assertion/i;

export function withoutSecrets(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutSecrets);
  if (value instanceof Date) return value.toISOString();
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [k, SECRET_KEY.test(k) ? '[redacted]' : withoutSecrets(v)]),
    );
  }
  return value;
}

/**
 * Appends an event to the tenant's trail, in the caller's transaction (the one
 * that made the change), so the change and its record commit or roll back
 * together. The `em` must come from withTenant(tenantId). The event is
 * written unchained (issue 13), under the tenant's chain key held shared, which
 * no other writer waits on; the node links it into the chain (seq, prev_hash,
 * hash) once the transaction has committed (audit-sealer.ts).
 */
export async function recordAudit(em: EntityManager, tenantId: string, input: AuditInput): Promise<void> {
  const params: unknown[] = [];
  await em.query(
    auditInsertSql(tenantId, input, (v) => `$${params.push(v)}`),
    params,
  );
  sealAfterCommitOf(em, tenantId);
}

/**
 * recordAudit's INSERT as SQL text, its values bound through `param` (which
 * returns the placeholder): for a caller that sends its change and the event
 * as one statement (issue 13: a SCIM write in one round trip). The event is
 * written unchained like any other; the caller asks for it to be sealed after
 * commit with sealAfterCommitOf (as recordAudit does).
 * `when`, an SQL condition, writes the event only if it holds (a composed
 * statement sent with its COMMIT cannot be rolled back after its answer).
 */
export function auditInsertSql(
  tenantId: string,
  input: AuditInput,
  param: (value: unknown) => string,
  when?: string,
): string {
  const values = [
    tenantId,
    input.actor.type,
    input.actor.id,
    input.action,
    input.target?.type ?? null,
    input.target?.id ?? null,
    input.requestId ?? null,
    input.sourceIp ?? null,
    input.before ? JSON.stringify(withoutSecrets(input.before)) : null,
    input.after ? JSON.stringify(withoutSecrets(input.after)) : null,
  ].map(param);
  return `INSERT INTO audit_events (tenant_id, actor_type, actor_id, action, target_type, target_id,
                               request_id, source_ip, before, after)
     ${when === undefined ? 'VALUES (' : 'SELECT '}${values.join(', ')}${when === undefined ? ')' : ` WHERE ${when}`}`;
}

export interface ChainVerification {
  valid: boolean;
  checked: number;
  firstBrokenSeq: number | null;
}

/** Recomputes every hash of the tenant's chain (audit_verify_chain in SQL). */
export async function verifyAuditChain(db: Database, tenantId: string): Promise<ChainVerification> {
  const { valid, checked, firstBrokenSeq } = await verifyAuditChainListingErased(db, tenantId);
  return { valid, checked, firstBrokenSeq };
}

/** What verification could not yet cover: events held back by a writer of the same tenant still open. */
export interface UnsealedTail {
  unsealed: number;
  oldestUnsealedAt: string | null;
}

/**
 * The same, with the erased events written before chain v2 (issue 12): their hash
 * covered clear values that erasure replaced, so they cannot be checked; they are
 * listed rather than reported as tampering (the link to the next event still is).
 * Seals first (issue 13), so the answer covers every event that can be sealed, and
 * reports the unsealed tail.
 */
export async function verifyAuditChainListingErased(
  db: Database,
  tenantId: string,
): Promise<ChainVerification & { erasedUnverifiableSeqs: number[] } & UnsealedTail> {
  await sealTrail(db, tenantId);
  return db.withTenant(tenantId, async (em) => {
    const rows = await em.query<
      {
        checked: string;
        first_broken_seq: string | null;
        erased_unverifiable_seqs: string[] | null;
        unsealed: string | null;
        oldest_unsealed_at: Date | null;
      }[]
    >(
      `SELECT checked, first_broken_seq, erased_unverifiable_seqs, unsealed, oldest_unsealed_at
         FROM audit_verify_chain($1)`,
      [tenantId],
    );
    const row = rows[0];
    const firstBrokenSeq = row?.first_broken_seq == null ? null : Number(row.first_broken_seq);
    return {
      valid: firstBrokenSeq === null,
      checked: Number(row?.checked ?? 0),
      firstBrokenSeq,
      erasedUnverifiableSeqs: (row?.erased_unverifiable_seqs ?? []).map(Number),
      unsealed: Number(row?.unsealed ?? 0),
      oldestUnsealedAt: row?.oldest_unsealed_at ? row.oldest_unsealed_at.toISOString() : null,
    };
  });
}
