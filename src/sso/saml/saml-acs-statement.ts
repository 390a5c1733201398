import type { EntityManager } from 'typeorm';
import { jitPreludeSql, type JitPrelude, type LoginProfile } from '../../directory/jit.service.js';
import { emailDomain } from '../../tenants/domain-name.js';
import { rememberAssertionSql } from './assertion-replay.js';
import type { AssertionIdentity } from './saml-response-checks.js';
import type { SamlRequestCache } from './saml-request-cache.js';

/**
 * What does the ACS send PostgreSQL first, once node-saml has verified the
 * signature? One statement (issue 13: a SAML login in at most three
 * transactions, few round trips), the first of the login's one tenant
 * transaction (saml-flow.ts):
 *
 * - the assertion's ID enters the replay cache (assertion-replay.ts), every
 *   verified assertion, accepted or not: the transaction commits on a refusal;
 * - only if it is fresh: the pending AuthnRequest its signed InResponseTo
 *   names is consumed (`DELETE … RETURNING`, this browser's and this
 *   connection's only: saml-request-cache.ts), and the person's JIT lock is
 *   taken (jitPreludeSql), after the replay row's own lock, so two posts of
 *   one assertion never wait on each other in opposite orders;
 * - the reads the login's checks need: is the email's domain verified by
 *   another tenant (db/resolvers.ts's SECURITY DEFINER function), and by this
 *   one (the JIT's prelude).
 *
 * Each table's SQL comes from its owner as text; this module only composes.
 */

export interface AcsStatementInput {
  tenantId: string;
  connectionId: string;
  identity: AssertionIdentity;
  now: Date;
  requests: SamlRequestCache;
  /** The signed InResponseTo (null: IdP-initiated, or the signed checks refused). */
  inResponseTo: string | null;
  /** The login's profile, when the signed checks passed (null: no JIT reads, no lock). */
  profile: LoginProfile | null;
}

export interface AcsFirstReads {
  /** The assertion ID was not in the replay cache (or only expired). */
  fresh: boolean;
  /** The app's pending login of the consumed request; null: none consumed. */
  loginId: string | null;
  domainOfOtherTenant: boolean;
  /** Present when the JIT lock is held and the own-domain check made. */
  jit: JitPrelude | undefined;
}

interface Row {
  fresh: boolean;
  login_id: string | null;
  request_created_at: Date | null;
  other_tenant: boolean;
  domain_verified: boolean | null;
  jit_locked: string | null;
}

export async function spendAssertion(em: EntityManager, input: AcsStatementInput): Promise<AcsFirstReads> {
  const params: unknown[] = [];
  const p = (value: unknown) => `$${params.push(value)}`;
  const fresh = 'EXISTS (SELECT 1 FROM remembered)';
  const ctes = [
    rememberAssertionSql(
      {
        tenantId: input.tenantId,
        connectionId: input.connectionId,
        assertionId: input.identity.assertionId,
        acceptableUntil: input.identity.acceptableUntil,
        now: input.now,
      },
      p,
    ),
  ];
  const consumed =
    input.inResponseTo === null ? null : input.requests.consumeSql(input.inResponseTo, p, fresh);
  if (consumed) ctes.push(consumed);
  const columns = [`${fresh} AS fresh`];
  columns.push(
    consumed
      ? '(SELECT login_id FROM consumed) AS login_id, (SELECT created_at FROM consumed) AS request_created_at'
      : 'NULL::text AS login_id, NULL::timestamptz AS request_created_at',
  );
  const profile = input.profile;
  const domain = profile?.email ? emailDomain(profile.email) : null;
  columns.push(
    domain === null
      ? 'false AS other_tenant'
      : `domain_verified_by_other_tenant(${p(domain)}::text, ${p(input.tenantId)}::uuid) AS other_tenant`,
  );
  if (profile) {
    const jit = jitPreludeSql(input.tenantId, profile, p);
    // CASE evaluates THEN only when WHEN holds: a replayed assertion takes no lock.
    columns.push(
      `${jit.domainVerified} AS domain_verified`,
      `CASE WHEN ${fresh} THEN ${jit.lock}::text END AS jit_locked`,
    );
  } else columns.push('NULL::boolean AS domain_verified, NULL::text AS jit_locked');
  const [row] = await em.query<Row[]>(`WITH ${ctes.join(',\n    ')}\n  SELECT ${columns.join(', ')}`, params);
  if (!row) throw new Error('the ACS statement returned no row');
  if (consumed && row.login_id !== null && row.request_created_at !== null && input.inResponseTo !== null)
    input.requests.noteConsumed(input.inResponseTo, {
      loginId: row.login_id,
      createdAt: row.request_created_at,
    });
  return {
    fresh: row.fresh,
    loginId: row.login_id,
    domainOfOtherTenant: row.other_tenant,
    jit: profile && row.fresh ? { domainVerified: row.domain_verified === true } : undefined,
  };
}
