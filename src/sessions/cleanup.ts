import type { Logger } from 'pino';
import type { Database } from '../db/database.js';
import { tenantsWithExpiredRows } from '../db/resolvers.js';
import { startPeriodicJob, type PeriodicJob } from '../periodic-job.js';

/**
 * The periodic cleanup of what sign-in leaves behind: expired authorization
 * requests (a platform table) and, per tenant, expired authorization codes and
 * refresh tokens (used or not: reuse detection only matters while a token
 * could still have been valid), pending SAML requests, OIDC login states,
 * assertion-id replay entries (their expiry is the assertion's NotOnOrAfter
 * plus skew, so a replay stays refused as long as it could be accepted), and
 * finished rows (delivered or given up) of both outboxes — back-channel
 * logouts and webhooks — past the outbox retention (the delivery workers do
 * not purge on their own), and SCIM provisioning log rows past their
 * retention (scim_requests.expires_at), login traces past their retention
 * and the raw responses some keep, at their 24 hours (login_traces).
 *
 * Every node runs it. Deletes are small batches of `… WHERE expires_at < cutoff
 * … FOR UPDATE SKIP LOCKED`: two nodes cleaning at once skip each other's rows
 * instead of waiting, and a row deleted twice is simply not there the second
 * time. Tenant tables are reached only through withTenant; the tenants to visit
 * come from the cleanup_due_tenants() resolver (tenant ids and nothing else).
 */
export interface CleanupOptions {
  db: Database;
  logger?: Logger;
  intervalMs: number;
  /** Rows go this long after they expired. */
  graceMs: number;
  /** Delivered / given-up rows of both outboxes (logout_outbox, webhook_outbox) are kept this long. */
  outboxRetentionMs: number;
  batchSize?: number;
}

export interface CleanupCounts {
  authorization_requests: number;
  authorization_codes: number;
  refresh_tokens: number;
  saml_requests: number;
  saml_assertion_ids: number;
  oidc_login_states: number;
  logout_outbox: number;
  webhook_outbox: number;
  scim_requests: number;
  saml_sessions: number;
  saml_logout_requests: number;
  login_traces: number;
  /** Raw SAMLResponses of failed logins cleared at their 24 hours (the trace itself stays). */
  login_trace_raw_responses: number;
  tenants: number;
}

const OUTBOX_FINISHED = `status <> 'pending' AND COALESCE(delivered_at, next_attempt_at) < $1`;

/** Per tenant table: its key after tenant_id, and which rows are done with ($1: the cutoff). */
const TENANT_TABLES = {
  authorization_codes: { key: 'id', expired: 'expires_at < $1', outbox: false },
  refresh_tokens: { key: 'id', expired: 'expires_at < $1', outbox: false },
  saml_requests: { key: 'id', expired: 'expires_at < $1', outbox: false },
  saml_assertion_ids: { key: 'connection_id, assertion_id', expired: 'expires_at < $1', outbox: false },
  oidc_login_states: { key: 'state', expired: 'expires_at < $1', outbox: false },
  // Delivered, or given up (next_attempt_at is then the last attempt plus its lease).
  logout_outbox: { key: 'id', expired: OUTBOX_FINISHED, outbox: true },
  webhook_outbox: { key: 'id', expired: OUTBOX_FINISHED, outbox: true },
  // The SCIM provisioning log: expires_at is fixed at write (GATEHOUSE_SCIM_REQUEST_LOG_DAYS).
  scim_requests: { key: 'id', expired: 'expires_at < $1', outbox: false },
  // SAML Single Logout (issue 16): a session's NameID row goes when the session has expired
  // (expires_at is the session's); our LogoutRequests when their answer can no longer come.
  saml_sessions: { key: 'session_id', expired: 'expires_at < $1', outbox: false },
  saml_logout_requests: { key: 'id', expired: 'expires_at < $1', outbox: false },
  // Login traces (issue 15): expires_at is fixed at write (GATEHOUSE_LOGIN_TRACE_RETENTION).
  login_traces: { key: 'id', expired: 'expires_at < $1', outbox: false },
} as const;

type TenantTable = keyof typeof TENANT_TABLES;
const TENANTS_PER_SWEEP = 1000;

/** One sweep over everything expired at `now`; returns what it deleted. */
export async function runCleanup(
  options: Omit<CleanupOptions, 'intervalMs' | 'logger'>,
  now: Date,
): Promise<CleanupCounts> {
  const batchSize = options.batchSize ?? 500;
  const cutoff = new Date(now.getTime() - options.graceMs);
  const outboxCutoff = new Date(now.getTime() - options.outboxRetentionMs);
  const counts: CleanupCounts = {
    authorization_requests: 0,
    authorization_codes: 0,
    refresh_tokens: 0,
    saml_requests: 0,
    saml_assertion_ids: 0,
    oidc_login_states: 0,
    logout_outbox: 0,
    webhook_outbox: 0,
    scim_requests: 0,
    saml_sessions: 0,
    saml_logout_requests: 0,
    login_traces: 0,
    login_trace_raw_responses: 0,
    tenants: 0,
  };

  // Platform table: the tenant is not known while a login is pending.
  for (;;) {
    const deleted = await options.db.withPlatform(async (em) => {
      const [, n] = await em.query<[unknown[], number]>(
        `DELETE FROM authorization_requests WHERE id IN (
           SELECT id FROM authorization_requests WHERE expires_at < $1 LIMIT $2 FOR UPDATE SKIP LOCKED)`,
        [cutoff, batchSize],
      );
      return n;
    });
    counts.authorization_requests += deleted;
    if (deleted < batchSize) break;
  }

  const due = await tenantsWithExpiredRows(options.db, cutoff, outboxCutoff, TENANTS_PER_SWEEP);
  for (const tenantId of due) {
    counts.tenants += 1;
    for (const table of Object.keys(TENANT_TABLES) as TenantTable[]) {
      const { key, expired, outbox } = TENANT_TABLES[table];
      for (;;) {
        const deleted = await options.db.withTenant(tenantId, async (em) => {
          const [, n] = await em.query<[unknown[], number]>(
            `DELETE FROM ${table} WHERE (tenant_id, ${key}) IN (
               SELECT tenant_id, ${key} FROM ${table} WHERE ${expired} LIMIT $2 FOR UPDATE SKIP LOCKED)`,
            [outbox ? outboxCutoff : cutoff, batchSize],
          );
          return n;
        });
        counts[table] += deleted;
        if (deleted < batchSize) break;
      }
    }
    // A kept raw response goes at its expiry itself, not after the grace: "at most 24 hours" (issue 15).
    counts.login_trace_raw_responses += await options.db.withTenant(tenantId, async (em) => {
      const [, n] = await em.query<[unknown[], number]>(
        `UPDATE login_traces SET raw_response_enc = NULL, raw_response_expires_at = NULL
          WHERE raw_response_expires_at < $1`,
        [now],
      );
      return n;
    });
  }
  return counts;
}

/** runNow runs a sweep now (tests, and the first sweep at start) or joins the one in flight. */
export type CleanupJob = PeriodicJob<CleanupCounts>;

/** Starts the periodic sweep on this node through the one loop (periodic-job.ts); stop() waits for a sweep in progress. */
export function startCleanup(options: CleanupOptions): CleanupJob {
  return startPeriodicJob({
    name: 'cleanup sweep',
    intervalMs: options.intervalMs,
    pass: async () => {
      const counts = await runCleanup(options, new Date());
      const { tenants: _tenants, ...deleted } = counts;
      const total = Object.values(deleted).reduce((sum, n) => sum + n, 0);
      if (total > 0) options.logger?.info({ deleted: counts }, 'expired sign-in state cleaned up');
      return counts;
    },
    logger: options.logger,
  });
}
