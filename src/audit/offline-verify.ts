import { createHash } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import type { JWK } from 'jose';
import type { AuditEventView } from './audit-events.service.js';
import {
  checkAgainstCheckpoints,
  checkpointsHold,
  seqKey,
  type CheckpointView,
} from './checkpoint-verify.js';
import type { TrailVerification } from './checkpoints.service.js';

/**
 * Is a trail, as the admin API showed it, the one the checkpoints kept outside
 * the database signed? Trusts neither the database's functions nor its
 * checkpoint rows: every hash is recomputed here (SHA-256 of `hash_input`),
 * each `hash_input` must say what the event's fields say, the chain must link
 * from seq 1 without a gap, and every checkpoint must carry a valid signature
 * under the given public key and agree with the chain.
 */
const GENESIS = '0'.repeat(64);

type Event = Pick<
  AuditEventView,
  | 'seq'
  | 'id'
  | 'occurred_at'
  | 'actor'
  | 'action'
  | 'target'
  | 'request_id'
  | 'source_ip'
  | 'before'
  | 'after'
  | 'prev_hash'
  | 'hash'
  | 'hash_input'
>;

/** The event's fields as audit_event_hash_input orders them. */
function fieldsOf(e: Event, tenantId: string, prevHash: string): unknown[] {
  return [
    prevHash,
    tenantId,
    e.seq,
    e.id,
    null, // occurred_at: compared separately (the input has microseconds, the view milliseconds)
    e.actor.type,
    e.actor.id,
    e.action,
    e.target?.type ?? null,
    e.target?.id ?? null,
    e.request_id,
    e.source_ip,
    e.before,
    e.after,
  ];
}

function eventHolds(e: Event, tenantId: string, prevHash: string, expectedSeq: number): boolean {
  if (typeof e.hash_input !== 'string' || e.seq !== expectedSeq || e.prev_hash !== prevHash) return false;
  if (createHash('sha256').update(e.hash_input, 'utf8').digest('hex') !== e.hash) return false;
  let hashed: unknown;
  try {
    hashed = JSON.parse(e.hash_input);
  } catch {
    return false;
  }
  if (!Array.isArray(hashed) || hashed.length !== 14) return false;
  const fields = hashed as unknown[];
  const time = fields[4];
  // `2026-01-02T03:04:05.123456Z` is what the view shows as `2026-01-02T03:04:05.123Z`.
  if (typeof time !== 'string' || `${time.slice(0, 23)}Z` !== e.occurred_at) return false;
  let shown: unknown[];
  try {
    shown = fieldsOf(e, tenantId, prevHash);
  } catch {
    return false; // not even the shape of an event (no actor…): an answer not to trust
  }
  return isDeepStrictEqual([...fields.slice(0, 4), null, ...fields.slice(5)], shown);
}

export async function verifyTrailOffline(input: {
  tenantId: string;
  events: readonly Event[];
  checkpoints: readonly CheckpointView[];
  publicJwk: JWK;
}): Promise<TrailVerification> {
  const events = [...input.events].sort((a, b) => seqKey(a.seq) - seqKey(b.seq));
  let prev = GENESIS;
  let checked = 0;
  let firstBroken: number | null = null;
  for (const e of events) {
    if (!eventHolds(e, input.tenantId, prev, checked + 1)) {
      // Named by its position when its seq is not even a number.
      firstBroken = Number.isSafeInteger(e.seq) ? e.seq : checked + 1;
      break;
    }
    checked += 1;
    prev = e.hash;
  }
  const hashes = new Map(events.map((e) => [e.seq, e.hash]));
  const findings = await checkAgainstCheckpoints({
    tenantId: input.tenantId,
    publicJwk: input.publicJwk,
    checkpoints: input.checkpoints,
    hashAt: (seq) => hashes.get(seq),
    lastSeq: Math.max(0, ...events.map((e) => (Number.isSafeInteger(e.seq) ? e.seq : 0))),
  });
  return {
    valid: firstBroken === null && checkpointsHold(findings),
    checked,
    first_broken_seq: firstBroken,
    ...findings,
  };
}
