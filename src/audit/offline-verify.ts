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
 * under the given public key and agree with the chain. Chain v2 events
 * (issue 12) commit to a salted digest of their personal fields: with its
 * salt the digest is recomputed too; an erased event must hold only the
 * markers; an erased v1 event cannot be checked and is listed in
 * `erased_unverifiable_seqs`.
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
> &
  Partial<Pick<AuditEventView, 'hash_version' | 'pii_salt' | 'content_digest' | 'digest_input' | 'erased'>>;

/** What an erased field holds instead of its value (migrations/1766000000000). */
const ERASED_TEXT = '[erased]';
const ERASED_JSON = { erased: true };

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

/** The time of the hash input, `2026-01-02T03:04:05.123456Z`, is what the view shows as `…05.123Z`. */
const sameTime = (time: unknown, shown: string): boolean =>
  typeof time === 'string' && `${time.slice(0, 23)}Z` === shown;

function parsedInput(e: Event): unknown[] | null {
  if (typeof e.hash_input !== 'string') return null;
  if (createHash('sha256').update(e.hash_input, 'utf8').digest('hex') !== e.hash) return null;
  try {
    const hashed: unknown = JSON.parse(e.hash_input);
    return Array.isArray(hashed) ? (hashed as unknown[]) : null;
  } catch {
    return null;
  }
}

/** The personal fields as the digest input orders them (audit_event_digest_input). */
const personalFields = (e: Event): unknown[] => [
  e.actor.id,
  e.target?.id ?? null,
  e.source_ip,
  e.before,
  e.after,
];

const redacted = (e: Event): boolean =>
  [e.actor.id, e.target?.id ?? null, e.source_ip].every((v) => v === null || v === ERASED_TEXT) &&
  [e.before, e.after].every((v) => v === null || isDeepStrictEqual(v, ERASED_JSON));

/** v1: the hash covers the clear values. An erased v1 event cannot be checked: reported, not broken. */
function v1Holds(e: Event, tenantId: string, prevHash: string): 'ok' | 'erased' | 'broken' {
  if (e.erased === true) return redacted(e) ? 'erased' : 'broken';
  const fields = parsedInput(e);
  if (!fields || fields.length !== 14 || !sameTime(fields[4], e.occurred_at)) return 'broken';
  let shown: unknown[];
  try {
    shown = fieldsOf(e, tenantId, prevHash);
  } catch {
    return 'broken'; // not even the shape of an event (no actor…): an answer not to trust
  }
  return isDeepStrictEqual([...fields.slice(0, 4), null, ...fields.slice(5)], shown) ? 'ok' : 'broken';
}

/**
 * v2: the hash covers content_digest; with its salt the digest is recomputed from the
 * shown personal fields, and once erased those fields must hold only the markers.
 */
function v2Holds(e: Event, tenantId: string, prevHash: string): boolean {
  const fields = parsedInput(e);
  if (!fields || fields.length !== 11 || fields[0] !== 'v2' || !sameTime(fields[5], e.occurred_at))
    return false;
  const digest = e.content_digest;
  if (typeof digest !== 'string' || !/^[0-9a-f]{64}$/.test(digest)) return false;
  let shown: unknown[];
  try {
    shown = [
      'v2',
      prevHash,
      tenantId,
      e.seq,
      e.id,
      null,
      e.actor.type,
      e.action,
      e.target?.type ?? null,
      e.request_id,
      digest,
    ];
  } catch {
    return false;
  }
  if (!isDeepStrictEqual([...fields.slice(0, 5), null, ...fields.slice(6)], shown)) return false;
  if (e.pii_salt === null || e.pii_salt === undefined) return redacted(e);
  if (typeof e.pii_salt !== 'string' || !/^(?:[0-9a-f]{2})+$/.test(e.pii_salt)) return false;
  if (typeof e.digest_input !== 'string') return false;
  const recomputed = createHash('sha256')
    .update(Buffer.from(e.pii_salt, 'hex'))
    .update(e.digest_input, 'utf8')
    .digest('hex');
  if (recomputed !== digest) return false;
  try {
    return isDeepStrictEqual(JSON.parse(e.digest_input), personalFields(e));
  } catch {
    return false;
  }
}

function eventHolds(
  e: Event,
  tenantId: string,
  prevHash: string,
  expectedSeq: number,
): 'ok' | 'erased' | 'broken' {
  if (e.seq !== expectedSeq || e.prev_hash !== prevHash || typeof e.hash !== 'string') return 'broken';
  // A trail saved before chain v2 carries no hash_version: v1.
  if (e.hash_version === 2) return v2Holds(e, tenantId, prevHash) ? 'ok' : 'broken';
  if (e.hash_version !== undefined && e.hash_version !== 1) return 'broken';
  return v1Holds(e, tenantId, prevHash);
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
  const erasedUnverifiable: number[] = [];
  for (const e of events) {
    const held = eventHolds(e, input.tenantId, prev, checked + 1);
    if (held === 'erased') erasedUnverifiable.push(e.seq);
    if (held === 'broken') {
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
    erased_unverifiable_seqs: erasedUnverifiable,
    ...findings,
  };
}
