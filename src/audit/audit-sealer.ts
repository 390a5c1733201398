import type {
  DataSource,
  EntityManager,
  EntitySubscriberInterface,
  TransactionCommitEvent,
  TransactionRollbackEvent,
} from 'typeorm';
import type { Database } from '../db/database.js';
import { isUuid } from '../db/database.js';

/**
 * Who links a tenant's audit events into its hash chain, and when (issue 13)?
 * A writer inserts its event unchained (no lock: one tenant's writers never
 * queue); audit_seal (migrations/1767200000000-audit-sealer.ts) chains it:
 *
 * - right after the writer's COMMIT, on the writer's own connection before it
 *   goes back to the pool (one statement, no lock wait: a try-lock; nothing
 *   holds a lock across a trip to Node). recordAudit marks the transaction; a
 *   TypeORM subscriber on the DataSource runs the seal once it committed.
 * - again, with backoff, when that seal found the tenant busy (another node or
 *   request sealing) or an older transaction still open (events wait for every
 *   transaction with a smaller xid to end, so the chain's order never changes);
 * - by the periodic pass (checkpoint-worker.ts), for events whose writer died
 *   between COMMIT and its seal;
 * - by every read that needs hashes (verify, checkpoint, export, the audit
 *   events page, erasure): sealTrail waits for the lock and seals all it can.
 */

/** How many events one audit_seal call chains at most (a backlog takes several calls). */
export const SEAL_BATCH = 1000;

/** Retries after a seal that could not finish: doubling from 5 ms, up to 1 s, then the periodic pass. */
const RETRY_FIRST_MS = 5;
const RETRY_MAX_MS = 1000;
const RETRY_ATTEMPTS = 16;

/** How long a read waits for older transactions to end before it reports the tail as unsealed. */
const READ_SEAL_BOUND_MS = 2000;

export interface SealResult {
  /** Events chained by this call. */
  sealed: number;
  /** Events of the tenant still unsealed afterwards (written by transactions not yet ended, or a backlog). */
  unsealed: number;
  /** Another sealer held the tenant's lock: nothing was sealed by this call. */
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

/** One audit_seal call in the caller's withTenant transaction (erasure: seal before rewriting). */
export async function sealInTransaction(em: EntityManager, tenantId: string): Promise<SealResult> {
  const rows = await em.query<SealRow[]>(
    'SELECT sealed, unsealed, busy, head_seq FROM audit_seal($1, $2, true)',
    [tenantId, SEAL_BATCH],
  );
  return result(rows[0]);
}

/**
 * Seals everything of the tenant that can be sealed, waiting for another
 * sealer's short transaction rather than skipping, and for older open
 * transactions up to a bound (READ_SEAL_BOUND_MS): what reads call before
 * they read hashes, so their answer does not depend on timing. Returns what
 * is still unsealed (a transaction open longer than the bound).
 */
export async function sealTrail(db: Database, tenantId: string): Promise<SealResult> {
  const deadline = Date.now() + READ_SEAL_BOUND_MS;
  let total = 0;
  let delay = 1;
  for (;;) {
    const r = await db.withTenant(tenantId, (em) => sealInTransaction(em, tenantId));
    total += r.sealed;
    if (r.unsealed === 0 || Date.now() >= deadline) return { ...r, sealed: total };
    if (r.sealed < SEAL_BATCH) {
      // Nothing more is ready: an older transaction is still open somewhere. Its end is not
      // announced, so look again shortly.
      await sleep(delay);
      delay = Math.min(delay * 2, 50);
    }
  }
}

/**
 * Seals everything of the tenant that is ready now (a backlog in batches), waiting only for
 * another sealer's lock, never for open transactions: the audit-events page and the periodic pass.
 */
export async function sealReady(db: Database, tenantId: string): Promise<SealResult> {
  let total = 0;
  for (;;) {
    const r = await db.withTenant(tenantId, (em) => sealInTransaction(em, tenantId));
    total += r.sealed;
    if (r.sealed < SEAL_BATCH) return { ...r, sealed: total };
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
  query(sql: string): Promise<unknown>;
}

/** Per DataSource: a pending retry per tenant (coalesced) and its attempt count. */
type Pending = Map<string, { timer: NodeJS.Timeout; attempt: number }>;
const retries = new WeakMap<DataSource, Pending>();
const attached = new WeakSet<DataSource>();

async function sealOn(run: (sql: string) => Promise<unknown>, tenantId: string): Promise<SealResult> {
  const rows = (await run(sealStatement(tenantId, false))) as SealRow[];
  return result(rows[0]);
}

function scheduleRetry(ds: DataSource, tenantId: string, attempt: number): void {
  if (attempt >= RETRY_ATTEMPTS || !ds.isInitialized) return;
  let pending = retries.get(ds);
  if (!pending) {
    pending = new Map() as Pending;
    retries.set(ds, pending);
  }
  if (pending.has(tenantId)) return;
  const delay = Math.min(RETRY_FIRST_MS * 2 ** attempt, RETRY_MAX_MS);
  const timer = setTimeout(() => {
    pending.delete(tenantId);
    if (!ds.isInitialized) return;
    sealOn((sql) => ds.query(sql), tenantId).then(
      (r) => {
        if (r.busy || r.unsealed > 0) scheduleRetry(ds, tenantId, attempt + 1);
      },
      // The pool closing, a failover: the periodic pass seals what this missed.
      () => undefined,
    );
  }, delay);
  timer.unref();
  pending.set(tenantId, { timer, attempt });
}

/** After COMMIT (not a savepoint's release): seal the tenants the transaction wrote events for. */
const sealAfterCommit: EntitySubscriberInterface = {
  afterTransactionRollback(event: TransactionRollbackEvent): void {
    // Rolled back: the events are gone with it; nothing to seal.
    const runner = event.queryRunner as unknown as RunnerLike;
    if (!runner.isTransactionActive) delete runner.data?.[WROTE];
  },
  async afterTransactionCommit(event: TransactionCommitEvent): Promise<void> {
    const runner = event.queryRunner as unknown as RunnerLike;
    const tenants = runner.data?.[WROTE];
    if (runner.isTransactionActive || !(tenants instanceof Set)) return;
    delete runner.data?.[WROTE];
    for (const tenantId of tenants as Set<string>) {
      try {
        const r = await sealOn((sql) => runner.query(sql), tenantId);
        if (r.busy || r.unsealed > 0) scheduleRetry(event.connection, tenantId, 0);
      } catch {
        // The writer's change is committed: its request must not fail for the seal. Retried.
        scheduleRetry(event.connection, tenantId, 0);
      }
    }
  },
};

/**
 * Called by recordAudit in the writer's transaction: asks for a seal of the
 * tenant's chain once the transaction commits (nothing happens on rollback:
 * the event is gone with it).
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
    scheduleRetry(ds, tenantId, 0);
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
