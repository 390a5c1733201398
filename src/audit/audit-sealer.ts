import type {
  DataSource,
  EntityManager,
  EntitySubscriberInterface,
  TransactionCommitEvent,
  TransactionRollbackEvent,
} from 'typeorm';
import { AsyncResource } from 'node:async_hooks';
import type { Logger } from 'pino';
import type { Database } from '../db/database.js';
import { isUuid } from '../db/database.js';

/**
 * Who links a tenant's audit events into its hash chain, and when (issue 13)?
 * A writer inserts its event unchained, holding the tenant's chain key SHARED
 * to its COMMIT (writers never queue behind each other); audit_seal
 * (migrations/1767200000000-audit-sealer.ts) takes the key EXCLUSIVELY and
 * chains every event it can see, in insert_no order:
 *
 * - after the writer's COMMIT, in the background on this node: single-flight
 *   per tenant (a commit during a seal asks for one more run), never awaited
 *   by the request, and outside the request's async context (the seal is the
 *   node's work for every writer of the tenant, not one request's trip).
 *   Try-lock first; after SEAL_TRIES busy answers, the blocking form bounded
 *   by the function's lock_timeout, so a tenant with writers always in flight
 *   is still sealed; after SEAL_ATTEMPTS, the periodic pass takes over.
 * - by the periodic pass (checkpoint-worker.ts), for events whose node died
 *   between COMMIT and its seal;
 * - by every read that needs hashes (verify, checkpoint, export, the audit
 *   events page, erasure): sealTrail, awaited, up to READ_SEAL_BOUND_MS.
 */

/** How many events one audit_seal call chains at most (a backlog takes several calls). */
export const SEAL_BATCH = 1000;

/** Background seal: try-lock answers "busy" this many times before the blocking (lock_timeout) form. */
const SEAL_TRIES = 3;
/** Background seal: attempts in all before leaving the tenant to the periodic pass. */
const SEAL_ATTEMPTS = 12;
/** Pause after a busy answer: doubling from 5 ms, at most 200 ms. */
const RETRY_FIRST_MS = 5;
const RETRY_MAX_MS = 200;

/** How long a read keeps trying to seal before it reports the tail as unsealed. */
const READ_SEAL_BOUND_MS = 2000;

export interface SealResult {
  /** Events chained by this call. */
  sealed: number;
  /** Events of the tenant still unsealed afterwards (busy: a writer still open; else a backlog over SEAL_BATCH). */
  unsealed: number;
  /** A writer or another sealer of the tenant held its key (beyond the lock_timeout if waiting): nothing sealed. */
  busy: boolean;
  /** The sealed head's seq (0: none). */
  headSeq: number;
}

interface SealRow {
  sealed: number;
  unsealed: string;
  busy: boolean;
  head_seq: string;
}

const result = (row: SealRow | undefined): SealResult => ({
  sealed: Number(row?.sealed ?? 0),
  unsealed: Number(row?.unsealed ?? 0),
  busy: row?.busy ?? false,
  headSeq: Number(row?.head_seq ?? 0),
});

/**
 * One seal in its own single-statement transaction: the tenant is set for that
 * statement only (is_local), so nothing lingers on the pooled connection, and
 * an error rolls back on its own. The id is a validated UUID.
 */
function sealStatement(tenantId: string, wait: boolean): string {
  if (!isUuid(tenantId)) throw new Error(`not a tenant id: ${tenantId}`);
  // audit_seal takes the tenant from set_config's result, so it cannot run before the tenant is set.
  return `SELECT s.sealed, s.unsealed, s.busy, s.head_seq
            FROM (SELECT set_config('app.tenant_id', '${tenantId}', true)::uuid AS tenant_id) c,
                 LATERAL audit_seal(c.tenant_id, ${SEAL_BATCH}, ${wait}) s`;
}

/**
 * One audit_seal call in the caller's withTenant transaction (erasure: seal
 * before rewriting). wait: the blocking form, bounded by lock_timeout.
 */
export async function sealInTransaction(
  em: EntityManager,
  tenantId: string,
  wait = true,
): Promise<SealResult> {
  const rows = await em.query<SealRow[]>(
    'SELECT sealed, unsealed, busy, head_seq FROM audit_seal($1, $2, $3)',
    [tenantId, SEAL_BATCH, wait],
  );
  return result(rows[0]);
}

/**
 * Seals everything of the tenant, waiting for its writers' short
 * transactions (each attempt bounded by lock_timeout, with pauses between so
 * writers queued behind the attempt go through), up to READ_SEAL_BOUND_MS:
 * what reads call before they read hashes, so their answer does not depend
 * on when the writer's background seal ran. Returns what is still unsealed (a
 * writer of this tenant open longer than the bound).
 */
export async function sealTrail(db: Database, tenantId: string): Promise<SealResult> {
  const deadline = Date.now() + READ_SEAL_BOUND_MS;
  let total = 0;
  let delay = 1;
  for (let attempt = 0; ; attempt += 1) {
    const r = await db.withTenant(tenantId, (em) => sealInTransaction(em, tenantId, attempt > 0));
    total += r.sealed;
    if (r.unsealed === 0 || Date.now() >= deadline) return { ...r, sealed: total };
    if (r.busy) {
      await sleep(delay);
      delay = Math.min(delay * 2, 50);
    }
  }
}

/**
 * Seals everything of the tenant that one blocking attempt can (a backlog in
 * batches), not retrying when its writers stay busy: the periodic pass, which
 * would otherwise wait per tenant; the next pass or read picks up the rest.
 */
export async function sealReady(db: Database, tenantId: string): Promise<SealResult> {
  let total = 0;
  for (;;) {
    const r = await db.withTenant(tenantId, (em) => sealInTransaction(em, tenantId));
    total += r.sealed;
    if (r.busy || r.sealed < SEAL_BATCH) return { ...r, sealed: total };
  }
}

/** Tenants (and the platform trail) with unsealed events, for the periodic pass (pre-tenant lookup). */
export async function tenantsWithUnsealedEvents(db: Database, limit: number): Promise<string[]> {
  const rows = await db.queryOutsideTenant<{ tenant_id: string }>(
    'SELECT audit_unsealed_tenants($1) AS tenant_id',
    [limit],
  );
  return rows.map((r) => r.tenant_id);
}

/** The periodic pass: one seal (waiting for the lock) per tenant with unsealed events; returns how many sealed. */
export async function sealPendingTenants(db: Database, limit = 1000): Promise<number> {
  let sealed = 0;
  for (const tenantId of await tenantsWithUnsealedEvents(db, limit)) {
    sealed += (await sealReady(db, tenantId)).sealed;
  }
  return sealed;
}

// ---- sealing after the writer's commit ----

/** queryRunner.data key under which recordAudit lists the tenants a transaction wrote events for. */
const WROTE = 'gatehouseAuditTenants';

interface RunnerLike {
  data?: Record<string, unknown>;
  isTransactionActive?: boolean;
}

/** Where the background seal reports a failure (set by startCheckpoints; tests leave it unset). */
let log: Pick<Logger, 'warn'> | undefined;
export function setAuditSealerLogger(logger: Pick<Logger, 'warn'> | undefined): void {
  log = logger;
}

/**
 * Created at module load, outside any request: the background seal runs in
 * this (root) async context, so it is not attributed to the request whose
 * commit started it (AsyncLocalStorage stores, such as the round-trip
 * counter's or a request logger's, are those of module load: none).
 */
const detached = new AsyncResource('gatehouse.audit-seal');

/** Per DataSource: the tenants with a background seal running, and whether a commit asked again meanwhile. */
const running = new WeakMap<DataSource, Map<string, { again: boolean }>>();
const attached = new WeakSet<DataSource>();

async function sealOn(ds: DataSource, tenantId: string, wait: boolean): Promise<SealResult> {
  const rows = await ds.query<SealRow[]>(sealStatement(tenantId, wait));
  return result(rows[0]);
}

/** Starts (or asks the running one for one more pass) the node's background seal of the tenant. */
function requestSeal(ds: DataSource, tenantId: string): void {
  let tenants = running.get(ds);
  if (!tenants) {
    tenants = new Map();
    running.set(ds, tenants);
  }
  const current = tenants.get(tenantId);
  if (current) {
    current.again = true;
    return;
  }
  const state = { again: false };
  tenants.set(tenantId, state);
  detached.runInAsyncScope(() => {
    void backgroundSeal(ds, tenantId, state).finally(() => tenants.delete(tenantId));
  });
}

async function backgroundSeal(ds: DataSource, tenantId: string, state: { again: boolean }): Promise<void> {
  let busyCount = 0;
  for (let attempt = 0; attempt < SEAL_ATTEMPTS && ds.isInitialized; attempt += 1) {
    state.again = false;
    let r: SealResult;
    try {
      r = await sealOn(ds, tenantId, busyCount >= SEAL_TRIES);
    } catch (error) {
      // The writer's change is committed; the periodic pass or the next read seals it. The
      // SQLSTATE and the tenant id only: no event content reaches the log.
      log?.warn({ tenantId, code: (error as { code?: unknown }).code }, 'audit seal failed');
      return;
    }
    if (r.busy) {
      busyCount += 1;
      await sleepUnref(Math.min(RETRY_FIRST_MS * 2 ** (busyCount - 1), RETRY_MAX_MS));
      continue;
    }
    busyCount = 0;
    // A backlog over one batch, or a commit that asked while this seal ran: once more.
    if (r.unsealed === 0 && !state.again) return;
  }
}

/** After COMMIT (not a savepoint's release): seal the tenants the transaction wrote events for. */
const sealAfterCommit: EntitySubscriberInterface = {
  afterTransactionRollback(event: TransactionRollbackEvent): void {
    // Rolled back: the events are gone with it; nothing to seal.
    const runner = event.queryRunner as unknown as RunnerLike;
    if (!runner.isTransactionActive) delete runner.data?.[WROTE];
  },
  afterTransactionCommit(event: TransactionCommitEvent): void {
    const runner = event.queryRunner as unknown as RunnerLike;
    const tenants = runner.data?.[WROTE];
    if (runner.isTransactionActive || !(tenants instanceof Set)) return;
    delete runner.data?.[WROTE];
    // Not awaited: the request answers without waiting for the seal (issue 13).
    for (const tenantId of tenants as Set<string>) requestSeal(event.connection, tenantId);
  },
};

/**
 * Called by recordAudit (and the SCIM writes that insert their event inside
 * one statement) in the writer's transaction: asks for a seal of the tenant's
 * chain once the transaction commits (nothing happens on rollback: the event
 * is gone with it).
 */
export function sealAfterCommitOf(em: EntityManager, tenantId: string): void {
  const ds = em.connection;
  if (!attached.has(ds)) {
    attached.add(ds);
    ds.subscribers.push(sealAfterCommit);
  }
  const runner = em.queryRunner as unknown as RunnerLike | undefined;
  if (runner?.isTransactionActive && runner.data) {
    const tenants = runner.data[WROTE];
    if (tenants instanceof Set) tenants.add(tenantId);
    else runner.data[WROTE] = new Set([tenantId]);
  } else {
    // Outside a transaction (autocommit): the insert has committed already.
    requestSeal(ds, tenantId);
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
/** The background seal's pauses do not keep a stopping process alive (the periodic pass covers it). */
const sleepUnref = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms).unref());
