import { recordAudit } from '../audit/audit.service.js';
import type { Connection } from '../connections/connection.entity.js';
import type { Database } from '../db/database.js';
import { isDomainVerifiedByOtherTenant } from '../db/resolvers.js';
import { provisionFromLogin, type LoginProfile } from '../directory/jit.service.js';
import { emailDomain } from '../tenants/domain-name.js';
import { inSpan } from '../observability/spans.js';
import type { LoginResult } from './login-handoff.js';
import { LoginRefusedError, type ReasonCode } from './reasons.js';

export interface LoginContext {
  requestId: string;
  sourceIp?: string;
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
  // Cross-tenant: an IdP of tenant B vouching for an address in a domain tenant A
  // verified is refused, whatever B's connection allows.
  const domain = profile.email ? emailDomain(profile.email) : null;
  if (domain !== null && (await isDomainVerifiedByOtherTenant(db, domain, tenantId))) {
    throw new LoginRefusedError('email_domain_of_other_tenant', `${domain} belongs to another tenant`);
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
    if (!outcome.ok) throw new LoginRefusedError(outcome.refusal, outcome.detail);
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
  ctx: LoginContext,
): Promise<void> {
  await db.withTenant(tenantId, (em) =>
    recordAudit(em, tenantId, {
      actor: { type: 'system', id: `connection:${connectionId}` },
      action: 'login.failed',
      target: { type: 'connection', id: connectionId },
      requestId: ctx.requestId,
      sourceIp: ctx.sourceIp,
      after: { reason, connection_id: connectionId },
    }),
  );
}
