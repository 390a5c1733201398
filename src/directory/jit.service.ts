import { randomUUID } from 'node:crypto';
import type { EntityManager } from 'typeorm';
import { recordAudit, type AuditInput } from '../audit/audit.service.js';
import { emailDomain } from '../tenants/domain-name.js';
import { verifiedDomainSql } from '../tenants/domains.service.js';
import { ensureIdpGroups, replaceUserGroups } from './groups.service.js';
import { Identity } from './identity.entity.js';
import { groupColumnsProblem } from './limits.js';
import { User } from './user.entity.js';
import {
  createUser,
  createUserAudited,
  findUsersByEmail,
  isVerifiedDomainEmail,
  updateUser,
  userNameInUse,
} from './users.service.js';

/**
 * Where a login lands in the directory (docs/architecture.md): find the person by
 * (connection, IdP subject), else by a trusted email within the tenant, else
 * create them (just-in-time provisioning) — never reviving a user SCIM
 * suspended or deleted. Every function takes the caller's tenant-scoped `em`
 * (withTenant), so only this tenant's rows are ever read or written.
 */

/** What the IdP said about the person, after attribute mapping. */
export interface LoginProfile {
  connectionId: string;
  /**
   * SAML NameID or OIDC `sub`. Null when the IdP sent no stable subject (a
   * SAML transient NameID without a persistent identifier attribute): then no
   * identity is read or stored, and only an email in a verified domain finds
   * or creates the person.
   */
  subject: string | null;
  /** Lower-cased, or null when the IdP sent none. */
  email: string | null;
  /** False when the IdP itself says the email is unverified (OIDC email_verified=false). */
  emailAssertedByIdp: boolean;
  givenName: string | null;
  familyName: string | null;
  displayName: string | null;
  /** IdP group names or ids (Entra sends object ids). */
  groups: string[];
}

export interface JitPolicy {
  jitEnabled: boolean;
  /** Create users whose email is outside the tenant's verified domains (email_verified false). */
  allowUnverifiedEmail: boolean;
}

export type JitRefusal =
  | 'email_missing'
  | 'email_domain_not_verified'
  | 'user_not_provisioned'
  | 'user_suspended'
  | 'user_deleted'
  | 'user_ambiguous'
  | 'saml_nameid_transient';

export type JitOutcome =
  | {
      ok: true;
      userId: string;
      created: boolean;
      linked: boolean;
      /** The identity the caller's last statement marks as used (identityTouchSql); null: none to. */
      touchIdentity: string | null;
    }
  | { ok: false; refusal: JitRefusal; detail: string };

/** Caps against an assertion stuffed with groups. */
const MAX_GROUPS = 200;
const MAX_GROUP_LENGTH = 256;

const refused = (refusal: JitRefusal, detail: string): JitOutcome => ({ ok: false, refusal, detail });

function statusRefusal(user: User): JitOutcome | null {
  if (user.status === 'suspended') return refused('user_suspended', `user ${user.id} is suspended`);
  if (user.status === 'deleted') return refused('user_deleted', `user ${user.id} is deleted`);
  return null;
}

/**
 * What provisionFromLogin reads first, already read by the caller's own first
 * statement of the same transaction (jitPreludeSql): the person's lock is held
 * and whether the email's domain is one of the tenant's verified ones is known.
 */
export interface JitPrelude {
  domainVerified: boolean;
}

function jitLockKey(tenantId: string, profile: LoginProfile): string {
  const key = profile.subject === null ? `email:${profile.email}` : `subject:${profile.subject}`;
  return `jit:${tenantId}:${profile.connectionId}:${key}`;
}

/**
 * provisionFromLogin's first two reads as SQL expressions for a caller's
 * composed statement (issue 13: the SAML ACS sends them with its replay
 * insert): `lock` takes the person's lock (void; guard it with the caller's
 * condition so the lock is taken after that statement's own row locks), and
 * `domainVerified` is a boolean. The statements after it see rows committed
 * while it waited (READ COMMITTED takes a snapshot per statement).
 */
export function jitPreludeSql(
  tenantId: string,
  profile: LoginProfile,
  p: (value: unknown) => string,
): { lock: string; domainVerified: string } {
  const domain = profile.email === null ? null : emailDomain(profile.email);
  return {
    lock: `pg_advisory_xact_lock(hashtextextended(${p(jitLockKey(tenantId, profile))}::text, 0))`,
    domainVerified: domain === null ? 'false' : verifiedDomainSql(`${p(domain)}::text`),
  };
}

/**
 * Finds or creates the user for this login, links the identity, refreshes the
 * profile and the IdP group memberships. A refusal returns before any write
 * (the SAML ACS commits its replay insert with it: saml-flow.ts); thrown
 * errors leave the caller's transaction to roll back.
 */
export async function provisionFromLogin(
  em: EntityManager,
  tenantId: string,
  policy: JitPolicy,
  profile: LoginProfile,
  now: Date,
  audit: { requestId?: string; sourceIp?: string },
  prelude?: JitPrelude,
): Promise<JitOutcome> {
  // Two first logins of one person at once must not create two users. Kept (issue 13) because the
  // unique indexes alone would turn the second login into an error: users_tenant_user_name_key
  // refuses the second JIT user only when the email is the userName, an identity-less login (no
  // subject) has no unique key at all, and a 23505 aborts the sign-in's transaction. The key is
  // the person (connection and subject, or email), so different people never wait on it.
  if (!prelude)
    await em.query(`SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, [jitLockKey(tenantId, profile)]);

  const domainVerified =
    prelude?.domainVerified ?? (profile.email ? await isVerifiedDomainEmail(em, profile.email) : false);
  const emailTrusted = profile.email !== null && profile.emailAssertedByIdp && domainVerified;
  // Without a stable subject the email is the only key: an untrusted one could be anyone's,
  // and a user created from it could never be found again.
  if (profile.subject === null && !emailTrusted)
    return refused('saml_nameid_transient', 'no stable subject and no email in a verified domain');

  // The identity and its user in one read (issue 13); the foreign key (ON DELETE CASCADE) keeps
  // an identity from outliving its user.
  const known =
    profile.subject === null ? null : await userOfIdentity(em, profile.connectionId, profile.subject);
  const identity = known?.identityId ?? null;

  let user: User | null = known?.user ?? null;
  let created = false;
  let linked = false;
  if (user) {
    const refusal = statusRefusal(user);
    if (refusal) return refusal;
  } else {
    if (emailTrusted && profile.email) {
      // Only an email in one of the tenant's verified domains may claim an existing account.
      const candidates = await findUsersByEmail(em, profile.email);
      const live = candidates.filter((c) => c.status !== 'deleted');
      if (live.length > 1) return refused('user_ambiguous', `${live.length} users match the email`);
      const match = live[0] ?? candidates[0];
      if (match) {
        const refusal = statusRefusal(match);
        if (refusal) return refusal;
        user = match;
        linked = true;
      }
    }
    if (!user) {
      if (!policy.jitEnabled) return refused('user_not_provisioned', 'no identity or user, JIT is off');
      if (!profile.email) return refused('email_missing', 'no email to provision with');
      if (!domainVerified && !policy.allowUnverifiedEmail)
        return refused(
          'email_domain_not_verified',
          `${emailDomain(profile.email) ?? profile.email} is not verified`,
        );
      const taken = await userNameInUse(em, profile.email);
      // An unverified email never claims an account someone already holds.
      if (taken) return refused('user_ambiguous', 'an account with this user name exists');
      const fields = {
        userName: profile.email,
        email: profile.email,
        givenName: profile.givenName,
        familyName: profile.familyName,
        displayName: profile.displayName,
        externalId: null,
        attributes: {},
      };
      const userCreatedEvent = (u: User): AuditInput => ({
        actor: { type: 'system', id: `connection:${profile.connectionId}` },
        action: 'user.created',
        target: { type: 'user', id: u.id },
        requestId: audit.requestId,
        sourceIp: audit.sourceIp,
        after: { source: 'jit', user_name: u.userName, email_verified: emailTrusted },
      });
      // The directory's own write (version, uniqueness, webhook event), with the sign-in's
      // judgement of the email. createUserAudited (one statement with the audit event, issue 13)
      // sets email_verified from the verified domain: the same judgement unless the IdP itself
      // said the email is unverified (OIDC email_verified=false), which takes the two statements.
      if (emailTrusted === domainVerified) {
        user = await createUserAudited(em, tenantId, fields, { now }, userCreatedEvent);
      } else {
        user = await createUser(em, tenantId, fields, { now, emailVerified: emailTrusted });
        await recordAudit(em, tenantId, userCreatedEvent(user));
      }
      created = true;
    }
    if (profile.subject !== null)
      await em.insert(Identity, {
        tenantId,
        id: randomUUID(),
        userId: user.id,
        connectionId: profile.connectionId,
        subject: profile.subject,
        createdAt: now,
        lastLoginAt: now,
      });
    else linked = false;
  }

  if (!created) await refreshProfile(em, user, profile, emailTrusted, domainVerified, policy, now);
  // With a prelude the caller sends the touch in its last statement (identityTouchSql).
  if (identity && !prelude) await em.update(Identity, { id: identity }, { lastLoginAt: now });
  await syncIdpGroups(em, tenantId, user.id, profile.groups, now);
  return { ok: true, userId: user.id, created, linked, touchIdentity: prelude ? identity : null };
}

/** The user an identity of (connection, subject) links to, with the identity's id. */
async function userOfIdentity(
  em: EntityManager,
  connectionId: string,
  subject: string,
): Promise<{ identityId: string; user: User } | null> {
  const { entities, raw } = await em
    .createQueryBuilder(User, 'u')
    .innerJoin(Identity, 'i', 'i.tenantId = u.tenantId AND i.userId = u.id')
    .addSelect('i.id', 'identity_id')
    .where('i.connectionId = :connectionId AND i.subject = :subject', { connectionId, subject })
    .getRawAndEntities<{ identity_id: string }>();
  const [user] = entities;
  const identityId = raw[0]?.identity_id;
  return user && identityId ? { identityId, user } : null;
}

/**
 * A returning person's identity, marked as used now: SQL text for the caller's
 * last statement (JitOutcome.touchIdentity, when provisionFromLogin had a prelude).
 */
export function identityTouchSql(identityId: string, now: Date, p: (value: unknown) => string): string {
  return `UPDATE identities SET last_login_at = ${p(now)}::timestamptz WHERE id = ${p(identityId)}::uuid`;
}

/** Names and (trusted) email as the IdP sends them now; fields it does not send are kept. */
async function refreshProfile(
  em: EntityManager,
  user: User,
  profile: LoginProfile,
  emailTrusted: boolean,
  domainVerified: boolean,
  policy: JitPolicy,
  now: Date,
): Promise<void> {
  const next = {
    givenName: profile.givenName ?? user.givenName,
    familyName: profile.familyName ?? user.familyName,
    displayName: profile.displayName ?? user.displayName,
    email: user.email,
    emailVerified: user.emailVerified,
  };
  const emailAllowed = emailTrusted || (policy.allowUnverifiedEmail && !domainVerified);
  if (profile.email && emailAllowed && profile.email !== user.email?.toLowerCase()) {
    next.email = profile.email;
    next.emailVerified = emailTrusted;
  }
  const unchanged =
    next.givenName === user.givenName &&
    next.familyName === user.familyName &&
    next.displayName === user.displayName &&
    next.email === user.email &&
    next.emailVerified === user.emailVerified;
  if (unchanged) return;
  // The directory's own write: version moves (SCIM ETags see the login's update), webhook event.
  await updateUser(
    em,
    user,
    {
      givenName: next.givenName,
      familyName: next.familyName,
      displayName: next.displayName,
      email: next.email,
    },
    { now, emailVerified: next.emailVerified },
  );
}

/**
 * The user's memberships in IdP-sourced groups become exactly the groups of
 * this login (SCIM-managed groups are left alone), written by groups.service
 * like any other membership change, with the same webhook deltas. A group is
 * created on first sight with its IdP value as both display name and external
 * id, so a role mapping on either matches (Entra sends object ids, Okta and
 * Google names). A value the directory cannot store (src/directory/limits.ts)
 * is dropped, as an over-long one is, rather than failing the sign-in.
 */
export async function syncIdpGroups(
  em: EntityManager,
  tenantId: string,
  userId: string,
  groups: string[],
  now: Date,
): Promise<void> {
  const names = [
    ...new Set(
      groups
        .map((g) => g.trim())
        .filter(
          (g) =>
            g &&
            g.length <= MAX_GROUP_LENGTH &&
            groupColumnsProblem({ displayName: g, externalId: g }) === undefined,
        ),
    ),
  ].slice(0, MAX_GROUPS);
  // No tenant-wide lock (issue 13: one tenant's logins with groups used to queue behind it):
  // ensureIdpGroups inserts what is absent on the primary key, so two logins naming one new
  // group meet only on that row, and logins with known groups wait on nothing.
  const groupIds = names.length === 0 ? [] : await ensureIdpGroups(em, tenantId, names, userId, now);
  await replaceUserGroups(em, tenantId, userId, 'idp', groupIds, now);
}
