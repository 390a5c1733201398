import { randomUUID } from 'node:crypto';
import type { EntityManager } from 'typeorm';
import { recordAudit } from '../audit/audit.service.js';
import { emailDomain } from '../tenants/domain-name.js';
import { ensureIdpGroups, replaceUserGroups } from './groups.service.js';
import { Identity } from './identity.entity.js';
import { groupColumnsProblem } from './limits.js';
import { User } from './user.entity.js';
import {
  createUser,
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
  | { ok: true; userId: string; created: boolean; linked: boolean }
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
 * Finds or creates the user for this login, links the identity, refreshes the
 * profile and the IdP group memberships. Refusals change nothing (the caller
 * rolls the transaction back); so do thrown errors.
 */
export async function provisionFromLogin(
  em: EntityManager,
  tenantId: string,
  policy: JitPolicy,
  profile: LoginProfile,
  now: Date,
  audit: { requestId?: string; sourceIp?: string },
): Promise<JitOutcome> {
  // Two first logins of one person at once must not create two users. Kept (issue 13) because the
  // unique indexes alone would turn the second login into an error: users_tenant_user_name_key
  // refuses the second JIT user only when the email is the userName, an identity-less login (no
  // subject) has no unique key at all, and a 23505 aborts the sign-in's transaction. The key is
  // the person (connection and subject, or email), so different people never wait on it.
  const lockKey = profile.subject === null ? `email:${profile.email}` : `subject:${profile.subject}`;
  await em.query(`SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, [
    `jit:${tenantId}:${profile.connectionId}:${lockKey}`,
  ]);

  const domainVerified = profile.email ? await isVerifiedDomainEmail(em, profile.email) : false;
  const emailTrusted = profile.email !== null && profile.emailAssertedByIdp && domainVerified;
  // Without a stable subject the email is the only key: an untrusted one could be anyone's,
  // and a user created from it could never be found again.
  if (profile.subject === null && !emailTrusted)
    return refused('saml_nameid_transient', 'no stable subject and no email in a verified domain');

  const identity =
    profile.subject === null
      ? null
      : await em.findOneBy(Identity, { connectionId: profile.connectionId, subject: profile.subject });

  let user: User | null = null;
  let created = false;
  let linked = false;
  if (identity) {
    user = await em.findOneBy(User, { id: identity.userId });
    if (!user) return refused('user_deleted', `identity ${identity.id} points at no user`);
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
      // The directory's own write (version, uniqueness, webhook event), with the
      // sign-in's judgement of the email.
      user = await createUser(
        em,
        tenantId,
        {
          userName: profile.email,
          email: profile.email,
          givenName: profile.givenName,
          familyName: profile.familyName,
          displayName: profile.displayName,
          externalId: null,
          attributes: {},
        },
        { now, emailVerified: emailTrusted },
      );
      created = true;
      await recordAudit(em, tenantId, {
        actor: { type: 'system', id: `connection:${profile.connectionId}` },
        action: 'user.created',
        target: { type: 'user', id: user.id },
        requestId: audit.requestId,
        sourceIp: audit.sourceIp,
        after: { source: 'jit', user_name: user.userName, email_verified: user.emailVerified },
      });
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
  if (identity) await em.update(Identity, { id: identity.id }, { lastLoginAt: now });
  await syncIdpGroups(em, tenantId, user.id, profile.groups, now);
  return { ok: true, userId: user.id, created, linked };
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
