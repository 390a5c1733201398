import { recordAudit } from '../audit/audit.service.js';
import type { Connection } from '../connections/connection.entity.js';
import type { Database } from '../db/database.js';
import { isDomainVerifiedByOtherTenant } from '../db/resolvers.js';
import { provisionFromLogin, type LoginProfile } from '../directory/jit.service.js';
import { rolesForLogin } from '../directory/roles.service.js';
import { keepsFailedLoginResponses } from '../tenants/tenants.service.js';
import { emailDomain } from '../tenants/domain-name.js';
import { inSpan } from '../observability/spans.js';
import type { LoginResult } from './login-handoff.js';
import { traceKindOf } from './login-trace-kind.js';
import { STAGES, type LoginTraceRecorder } from './login-trace-steps.js';
import { recordLoginTrace } from './login-trace-store.js';
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
  const tenantId = connection.tenantId;
  const trace = ctx.trace;
  if (trace)
    trace.recorder.profile = {
      subject: profile.subject,
      email: profile.email,
      given_name: profile.givenName,
      family_name: profile.familyName,
      display_name: profile.displayName,
      groups: profile.groups,
      attribute_names: trace.recorder.profile?.attribute_names ?? [],
    };
  // Cross-tenant: an IdP of tenant B vouching for an address in a domain tenant A
  // verified is refused, whatever B's connection allows.
  const domain = profile.email ? emailDomain(profile.email) : null;
  if (domain !== null && (await isDomainVerifiedByOtherTenant(db, domain, tenantId))) {
    const refusal = new LoginRefusedError(
      'email_domain_of_other_tenant',
      `${domain} belongs to another tenant`,
    );
    trace?.recorder.refusedIn(STAGES.provision, refusal);
    throw refusal;
  }
  return db.withTenant(tenantId, async (em) => {
    // issue 11: the JIT step as a span of the login's trace (observability/spans.ts).
    const outcome = await inSpan('gatehouse.login.provision', { 'tenant.id': tenantId }, () =>
      provisionFromLogin(
        em,
        tenantId,
        { jitEnabled: connection.jitEnabled, allowUnverifiedEmail: connection.allowUnverifiedEmail },
        profile,
        now,
        ctx,
      ),
    );
    if (!outcome.ok) {
      const refusal = new LoginRefusedError(outcome.refusal, outcome.detail);
      trace?.recorder.refusedIn(STAGES.provision, refusal);
      throw refusal;
    }
    await recordAudit(em, tenantId, {
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
    });
    if (trace) {
      trace.recorder.pass(...STAGES.provision.completes);
      // The roles a test sign-in shows; a real login's are in its tokens (two statements saved per login).
      const roles =
        trace.recorder.kind === 'test' ? await rolesForLogin(em, outcome.userId, connection.id) : [];
      await recordLoginTrace(em, {
        tenantId,
        connectionId: connection.id,
        supportRef: ctx.requestId,
        trace: trace.recorder,
        outcome: 'success',
        userId: outcome.userId,
        roles,
        retentionMs: trace.retentionMs,
        now,
      });
    }
    return { tenantId, userId: outcome.userId, connectionId: connection.id, authTime };
  });
}

/**
 * The audit trail of a refused login: the reason code and where it came from,
 * never the SAMLResponse, a token or the person's attributes.
 */
export async function recordLoginFailure(
  db: Database,
  tenantId: string,
  connectionId: string,
  reason: ReasonCode,
  ctx: LoginContext & { loginId?: string | null },
  now: Date = new Date(),
): Promise<void> {
  await db.withTenant(tenantId, async (em) => {
    await recordAudit(em, tenantId, {
      actor: { type: 'system', id: `connection:${connectionId}` },
      action: 'login.failed',
      target: { type: 'connection', id: connectionId },
      requestId: ctx.requestId,
      sourceIp: ctx.sourceIp,
      after: { reason, connection_id: connectionId },
    });
    const trace = ctx.trace;
    if (!trace) return;
    const recorder = trace.recorder;
    if (recorder.kind === 'unknown' && typeof ctx.loginId === 'string')
      recorder.kind = traceKindOf(trace.masterKey, ctx.loginId);
    recorder.fail(reason);
    // The tenant's opt-in is read only when there is a raw response to keep.
    const keep = recorder.rawResponse !== null && (await keepsFailedLoginResponses(em, tenantId));
    await recordLoginTrace(em, {
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
    });
  });
}
