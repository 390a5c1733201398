import type { EntityManager } from 'typeorm';
import { auditInsertSql } from '../audit/audit.service.js';
import { sealAfterCommitOf } from '../audit/audit-sealer.js';
import type { Connection } from '../connections/connection.entity.js';
import type { Database } from '../db/database.js';
import { finalStatement } from '../db/pipelined-transaction.js';
import {
  identityTouchSql,
  jitPreludeSql,
  provisionFromLogin,
  type JitPrelude,
  type LoginProfile,
} from '../directory/jit.service.js';
import { rolesForLogin } from '../directory/roles.service.js';
import { loginRefusalSettings } from '../tenants/tenants.service.js';
import { emailDomain } from '../tenants/domain-name.js';
import { inSpan } from '../observability/spans.js';
import type { LoginResult } from './login-handoff.js';
import { traceKindOf } from './login-trace-kind.js';
import { STAGES, type LoginTraceRecorder } from './login-trace-steps.js';
import { loginTraceInsertSql } from './login-trace-store.js';
import { LoginRefusedError, type ReasonCode } from './reasons.js';

export interface LoginContext {
  requestId: string;
  sourceIp?: string;
  /** Issue 15: the login's trace, stored in the same transaction as its outcome. */
  trace?: TraceSink;
}

/** Where a login's trace goes: its recorder and the settings of the store. */
export interface TraceSink {
  recorder: LoginTraceRecorder;
  retentionMs: number;
  masterKey: Buffer;
}

/** The trace shows the profile the login is provisioned from (after attribute mapping). */
function traceProfile(trace: TraceSink | undefined, profile: LoginProfile): void {
  if (!trace) return;
  trace.recorder.profile = {
    subject: profile.subject,
    email: profile.email,
    given_name: profile.givenName,
    family_name: profile.familyName,
    display_name: profile.displayName,
    groups: profile.groups,
    attribute_names: trace.recorder.profile?.attribute_names ?? [],
  };
}

/**
 * Where SAML and OIDC logins end (docs/architecture.md): the profile the IdP vouched
 * for becomes a user of the connection's tenant, in one transaction with its
 * audit event. Throws LoginRefusedError (nothing written but the failure's
 * audit event) when the person may not sign in.
 */
export async function completeLogin(
  db: Database,
  connection: Connection,
  profile: LoginProfile,
  authTime: Date,
  ctx: LoginContext,
  now: Date = new Date(),
): Promise<LoginResult> {
  return db.withTenant(connection.tenantId, async (em) => {
    const checks = await readLoginChecks(em, connection.tenantId, profile);
    return completeLoginIn(em, connection, profile, authTime, ctx, checks, now);
  });
}

/**
 * LoginChecks in one statement, the first of the login's transaction (issue
 * 13): the cross-tenant domain check (db/resolvers.ts's SECURITY DEFINER
 * function) and the JIT prelude (the person's lock, the own-domain check).
 */
async function readLoginChecks(
  em: EntityManager,
  tenantId: string,
  profile: LoginProfile,
): Promise<LoginChecks> {
  const params: unknown[] = [];
  const p = (value: unknown) => `$${params.push(value)}`;
  const domain = profile.email ? emailDomain(profile.email) : null;
  const otherTenant =
    domain === null ? 'false' : `domain_verified_by_other_tenant(${p(domain)}::text, ${p(tenantId)}::uuid)`;
  const jit = jitPreludeSql(tenantId, profile, p);
  const [row] = await em.query<{ other_tenant: boolean; domain_verified: boolean }[]>(
    `SELECT ${otherTenant} AS other_tenant, ${jit.domainVerified} AS domain_verified, ${jit.lock}::text AS jit_locked`,
    params,
  );
  return {
    domainOfOtherTenant: row?.other_tenant === true,
    jit: { domainVerified: row?.domain_verified === true },
  };
}

/**
 * What the caller's first statement already read for completeLoginIn (the
 * SAML ACS reads them with its replay insert, saml-acs-statement.ts).
 */
export interface LoginChecks {
  /** The email's domain is verified by another tenant (domain_verified_by_other_tenant). */
  domainOfOtherTenant: boolean;
  /** The person's JIT lock is held and the own-domain check made (jitPreludeSql). */
  jit?: JitPrelude;
}

/**
 * completeLogin inside the caller's transaction of the connection's tenant:
 * provisioning, then the audit event and the trace as one statement, the
 * transaction's last (sent with COMMIT: the caller runs nothing after it). A
 * refusal (LoginRefusedError) is thrown before anything is written, so a
 * caller may still commit its own earlier work (the SAML ACS's replay insert).
 */
export async function completeLoginIn(
  em: EntityManager,
  connection: Connection,
  profile: LoginProfile,
  authTime: Date,
  ctx: LoginContext,
  checks: LoginChecks,
  now: Date = new Date(),
): Promise<LoginResult> {
  const tenantId = connection.tenantId;
  const trace = ctx.trace;
  traceProfile(trace, profile);
  // Cross-tenant: an IdP of tenant B vouching for an address in a domain tenant A
  // verified is refused, whatever B's connection allows.
  if (checks.domainOfOtherTenant) {
    const refusal = new LoginRefusedError(
      'email_domain_of_other_tenant',
      `${profile.email ? emailDomain(profile.email) : ''} belongs to another tenant`,
    );
    trace?.recorder.refusedIn(STAGES.provision, refusal);
    throw refusal;
  }
  // issue 11: the JIT step as a span of the login's trace (observability/spans.ts).
  const outcome = await inSpan('gatehouse.login.provision', { 'tenant.id': tenantId }, () =>
    provisionFromLogin(
      em,
      tenantId,
      { jitEnabled: connection.jitEnabled, allowUnverifiedEmail: connection.allowUnverifiedEmail },
      profile,
      now,
      ctx,
      checks.jit,
    ),
  );
  if (!outcome.ok) {
    const refusal = new LoginRefusedError(outcome.refusal, outcome.detail);
    trace?.recorder.refusedIn(STAGES.provision, refusal);
    throw refusal;
  }
  const params: unknown[] = [];
  const p = (value: unknown) => `$${params.push(value)}`;
  // A returning person's identity is marked as used in the same last statement.
  const touch = outcome.touchIdentity ? `t AS (${identityTouchSql(outcome.touchIdentity, now, p)}), ` : '';
  // The event is sealed into the tenant's chain once this transaction commits (audit/audit-sealer.ts).
  sealAfterCommitOf(em, tenantId);
  const audit = auditInsertSql(
    tenantId,
    {
      actor: { type: 'user', id: outcome.userId },
      action: 'login.succeeded',
      target: { type: 'user', id: outcome.userId },
      requestId: ctx.requestId,
      sourceIp: ctx.sourceIp,
      after: {
        connection_id: connection.id,
        protocol: connection.type,
        user_created: outcome.created,
        identity_linked: outcome.linked,
      },
    },
    p,
  );
  if (trace) {
    trace.recorder.pass(...STAGES.provision.completes);
    // The roles a test sign-in shows; a real login's are in its tokens (two statements saved per login).
    const roles =
      trace.recorder.kind === 'test' ? await rolesForLogin(em, outcome.userId, connection.id) : [];
    const { sql } = loginTraceInsertSql(
      {
        tenantId,
        connectionId: connection.id,
        supportRef: ctx.requestId,
        trace: trace.recorder,
        outcome: 'success',
        userId: outcome.userId,
        roles,
        retentionMs: trace.retentionMs,
        now,
      },
      p,
    );
    // Issue 13: the event and the trace in one statement, sent with COMMIT (finalStatement): the
    // audit chain's per-tenant lock, taken by its trigger, is held for that one trip only.
    await finalStatement(em, `WITH ${touch}a AS (${audit}) ${sql}`, params);
  } else {
    await finalStatement(em, touch ? `WITH ${touch.slice(0, -2)} ${audit}` : audit, params);
  }
  return { tenantId, userId: outcome.userId, connectionId: connection.id, authTime };
}

/**
 * The audit trail of a refused login: the reason code and where it came from,
 * never the SAMLResponse, a token or the person's attributes. Answers the
 * tenant's display name, for the error page.
 */
export async function recordLoginFailure(
  db: Database,
  tenantId: string,
  connectionId: string,
  reason: ReasonCode,
  ctx: LoginContext & { loginId?: string | null },
  now: Date = new Date(),
): Promise<{ tenantName: string | null }> {
  return db.withTenant(tenantId, async (em) => {
    // The name for the page and the opt-in to keep the raw response (one read).
    const settings = await loginRefusalSettings(em, tenantId);
    const params: unknown[] = [];
    const p = (value: unknown) => `$${params.push(value)}`;
    sealAfterCommitOf(em, tenantId);
    const audit = auditInsertSql(
      tenantId,
      {
        actor: { type: 'system', id: `connection:${connectionId}` },
        action: 'login.failed',
        target: { type: 'connection', id: connectionId },
        requestId: ctx.requestId,
        sourceIp: ctx.sourceIp,
        after: { reason, connection_id: connectionId },
      },
      p,
    );
    const trace = ctx.trace;
    if (!trace) {
      await finalStatement(em, audit, params);
      return { tenantName: settings.name };
    }
    const recorder = trace.recorder;
    if (recorder.kind === 'unknown' && typeof ctx.loginId === 'string')
      recorder.kind = traceKindOf(trace.masterKey, ctx.loginId);
    recorder.fail(reason);
    const keep = recorder.rawResponse !== null && settings.keepFailedLoginResponses;
    const { sql } = loginTraceInsertSql(
      {
        tenantId,
        connectionId,
        supportRef: ctx.requestId,
        trace: recorder,
        outcome: reason,
        userId: null,
        roles: [],
        retentionMs: trace.retentionMs,
        now,
        keepRaw: keep ? { masterKey: trace.masterKey } : null,
      },
      p,
    );
    await finalStatement(em, `WITH a AS (${audit}) ${sql}`, params);
    return { tenantName: settings.name };
  });
}
