import { randomUUID } from 'node:crypto';
import { In, type EntityManager } from 'typeorm';
import type { QueryDeepPartialEntity } from 'typeorm/query-builder/QueryPartialEntity.js';
import { isUuid } from '../db/database.js';
import { statementRows } from '../db/pipelined-transaction.js';
import { isUniqueViolation } from '../db/pg-errors.js';
import { BadRequestError, ConflictError } from '../errors.js';
import { revokeUserSessions } from '../sessions/sessions.service.js';
import { emailDomain } from '../tenants/domain-name.js';
import { isVerifiedDomain, verifiedDomainSql } from '../tenants/domains.service.js';
import {
  groupEvent,
  userEvent,
  userEventData,
  webhookOutboxInsertSql,
  webhookWakeSql,
} from '../webhooks/webhook-events.js';
import { auditInsertSql, type AuditInput } from '../audit/audit.service.js';
import { sealAfterCommitOf } from '../audit/audit-sealer.js';
import { Group } from './group.entity.js';
import { userColumnsProblem } from './limits.js';
import { User, type UserStatus } from './user.entity.js';

/**
 * The directory's users (docs/architecture.md): the one place SCIM and JIT write them.
 * Every function takes the caller's tenant-scoped `em` (withTenant), so reads
 * and writes are this tenant's only and commit with the caller's other changes.
 */

/** A user's profile as stored in columns, plus the rest of the IdP's representation. */
export interface UserFields {
  userName: string;
  email: string | null;
  givenName: string | null;
  familyName: string | null;
  displayName: string | null;
  externalId: string | null;
  /** Further attributes (SCIM: the whole resource minus id, meta, groups, password). */
  attributes: Record<string, unknown>;
}

/** Another live user of the tenant has this userName (case-insensitively). */
export class UserNameTakenError extends ConflictError {
  // The userName (often an email) stays out of `detail`, which is logged (docs/security.md §7).
  constructor() {
    super('userName is already taken in this tenant');
  }
}

/** The row changed since the caller read it (optimistic concurrency; ETags). */
export class StaleVersionError extends ConflictError {
  constructor(
    readonly expected: number,
    readonly actual: number,
  ) {
    super('The resource has changed', { detail: `version ${actual}, expected ${expected}` });
  }
}

const USER_NAME_KEY = 'users_tenant_user_name_key';

/**
 * The last line before a write, for every writer (SCIM checks first with its
 * own error; JIT relies on this): a value over src/directory/limits.ts would
 * fail in a btree index or as text PostgreSQL refuses, i.e. a 500.
 */
function assertStorable(fields: Parameters<typeof userColumnsProblem>[0]): void {
  const problem = userColumnsProblem(fields);
  if (problem) throw new BadRequestError(problem);
}

export async function isVerifiedDomainEmail(em: EntityManager, email: string | null): Promise<boolean> {
  const domain = email === null ? null : emailDomain(email);
  return domain !== null && (await isVerifiedDomain(em, domain));
}

/**
 * The unique index (tenant_id, user_name_key) WHERE status <> 'deleted' is the
 * one check of a free userName: no read before the write (a round trip, and a
 * race the index settles anyway). Its violation (23505) aborts the caller's
 * transaction, which rolls back whole: the database is left unchanged.
 */
async function translateUniqueness<T>(write: () => Promise<T>): Promise<T> {
  try {
    return await write();
  } catch (error) {
    if (isUniqueViolation(error, USER_NAME_KEY)) throw new UserNameTakenError();
    throw error;
  }
}

export async function createUser(
  em: EntityManager,
  tenantId: string,
  fields: UserFields,
  options: {
    status?: Exclude<UserStatus, 'deleted'>;
    now?: Date;
    /** Set by a sign-in that judged the email itself (JIT); else: is its domain verified. */
    emailVerified?: boolean;
  } = {},
): Promise<User> {
  assertStorable(fields);
  const now = options.now ?? new Date();
  const user = em.create(User, {
    tenantId,
    id: randomUUID(),
    ...fields,
    emailVerified: options.emailVerified ?? (await isVerifiedDomainEmail(em, fields.email)),
    status: options.status ?? 'active',
    version: 1,
    createdAt: now,
    updatedAt: now,
  });
  // jsonb: TypeORM's deep-partial type cannot express Record<string, unknown>.
  await translateUniqueness(() => em.insert(User, user as QueryDeepPartialEntity<User>));
  await userEvent(em, user, 'user.created');
  return user;
}

/**
 * createUser and its audit event in one statement (issue 13: a SCIM write is
 * at most two round trips, and no lock is held across a trip to Node): the
 * verified-domain check for email_verified, the row, the user.created webhook
 * rows with their NOTIFY, and the audit event, whose chain trigger (and its
 * per-tenant lock) runs inside the statement. A taken userName is
 * UserNameTakenError, as for createUser; the statement fails whole. With
 * `final`, it is the transaction's last statement and goes with its COMMIT
 * (db/pipelined-transaction.ts): the caller sends nothing after it.
 */
export async function createUserAudited(
  em: EntityManager,
  tenantId: string,
  fields: UserFields,
  options: { status?: Exclude<UserStatus, 'deleted'>; now?: Date; final?: boolean },
  audit: (user: User) => AuditInput,
): Promise<User> {
  assertStorable(fields);
  const now = options.now ?? new Date();
  const user = em.create(User, {
    tenantId,
    id: randomUUID(),
    ...fields,
    emailVerified: false, // what the statement computes, set below
    status: options.status ?? 'active',
    version: 1,
    createdAt: now,
    updatedAt: now,
  });
  const params: unknown[] = [];
  const p = (value: unknown) => `$${params.push(value)}`;
  const domain = fields.email === null ? null : emailDomain(fields.email);
  const verified = domain === null ? 'false' : verifiedDomainSql(`${p(domain)}::text`);
  const sql = `WITH verified AS (SELECT ${verified} AS ok),
    u AS (INSERT INTO users (tenant_id, id, user_name, email, email_verified, given_name, family_name,
                             display_name, external_id, status, attributes, version, created_at, updated_at)
          SELECT ${p(tenantId)}::uuid, ${p(user.id)}::uuid, ${p(user.userName)}::text, ${p(user.email)}::text,
                 verified.ok, ${p(user.givenName)}::text, ${p(user.familyName)}::text, ${p(user.displayName)}::text,
                 ${p(user.externalId)}::text, ${p(user.status)}::text, ${p(JSON.stringify(user.attributes ?? {}))}::jsonb,
                 1, ${p(now)}::timestamptz, ${p(now)}::timestamptz
            FROM verified
          RETURNING email_verified),
    w AS (${webhookOutboxInsertSql(tenantId, 'user.created', { ...userEventData(user) }, p, now, {
      field: 'email_verified',
      valueSql: '(SELECT email_verified FROM u)',
    })}),
    a AS (${auditInsertSql(tenantId, audit(user), p)})
    SELECT u.email_verified, ${webhookWakeSql(tenantId, 'SELECT 1 FROM w', p)} AS woken FROM u`;
  const rows = await translateUniqueness(() =>
    statementRows<{ email_verified: boolean }>(em, sql, params, options.final),
  );
  sealAfterCommitOf(em, tenantId);
  user.emailVerified = rows[0]?.email_verified ?? false;
  return user;
}

/** A live (not deleted) user by id; `lock` holds the row until the transaction ends. */
export async function findUser(
  em: EntityManager,
  userId: string,
  options: { lock?: boolean; includeDeleted?: boolean } = {},
): Promise<User | null> {
  if (!isUuid(userId)) return null;
  const qb = em.createQueryBuilder(User, 'u').where('u.id = :userId', { userId });
  if (!options.includeDeleted) qb.andWhere("u.status <> 'deleted'");
  if (options.lock) qb.setLock('pessimistic_write');
  return qb.getOne();
}

// Case-insensitive lookups compare the stored key with the value lowered on the constant side:
// `…_key = lower($1)` is leakproof, so the (tenant_id, …_key) index answers under RLS.

/** The live user with this userName, compared case-insensitively. */
export async function findUserByUserName(em: EntityManager, userName: string): Promise<User | null> {
  return em
    .createQueryBuilder(User, 'u')
    .where("u.user_name_key = lower(:userName) AND u.status <> 'deleted'", { userName })
    .getOne();
}

/** Whether a live user holds this userName (case-insensitively). */
export async function userNameInUse(em: EntityManager, userName: string): Promise<boolean> {
  return em
    .createQueryBuilder(User, 'u')
    .where("u.user_name_key = lower(:userName) AND u.status <> 'deleted'", { userName })
    .getExists();
}

/** Users, deleted ones included, whose email or userName is `email` (case-insensitively): a sign-in's candidates. */
export async function findUsersByEmail(em: EntityManager, email: string): Promise<User[]> {
  return (
    em
      .createQueryBuilder(User, 'u')
      // The userName arm split by status: each half is answered by its partial index
      // (users_tenant_user_name_key, users_tenant_deleted_user_name_idx), OR-ed as bitmaps.
      .where(
        `(u.email_key = lower(:email) OR (u.user_name_key = lower(:email) AND u.status <> 'deleted')
        OR (u.user_name_key = lower(:email) AND u.status = 'deleted'))`,
        { email },
      )
      .getMany()
  );
}

/**
 * Writes changed fields and bumps the version. With `expectedVersion`, refuses
 * (StaleVersionError) when the row moved on. Returns the user as stored.
 */
export async function updateUser(
  em: EntityManager,
  user: User,
  changes: Partial<UserFields>,
  options: { expectedVersion?: number; now?: Date; emailVerified?: boolean } = {},
): Promise<User> {
  if (options.expectedVersion !== undefined && options.expectedVersion !== user.version)
    throw new StaleVersionError(options.expectedVersion, user.version);
  const next: User = Object.assign(em.create(User, { ...user }), changes, {
    version: user.version + 1,
    updatedAt: options.now ?? new Date(),
  });
  assertStorable(next);
  if (options.emailVerified !== undefined) next.emailVerified = options.emailVerified;
  else if (changes.email !== undefined && changes.email !== user.email)
    next.emailVerified = await isVerifiedDomainEmail(em, changes.email);
  const [, affected] = await translateUniqueness(() =>
    em.query<[unknown[], number]>(
      `UPDATE users SET user_name = $2, email = $3, email_verified = $4, given_name = $5, family_name = $6,
              display_name = $7, external_id = $8, attributes = $9, version = $10, updated_at = $11
        WHERE id = $1 AND version = $12`,
      [
        user.id,
        next.userName,
        next.email,
        next.emailVerified,
        next.givenName,
        next.familyName,
        next.displayName,
        next.externalId,
        JSON.stringify(next.attributes ?? {}),
        next.version,
        next.updatedAt,
        user.version,
      ],
    ),
  );
  if (affected !== 1) throw new StaleVersionError(user.version, user.version + 1);
  await userEvent(em, next, 'user.updated');
  return next;
}

/**
 * updateUser and its audit event in one statement (issue 13), for a change
 * that leaves the status alone: the row (when its version is still `user`'s),
 * the user.updated webhook rows with their NOTIFY, and the audit event built
 * from the user as stored. StaleVersionError when the row moved on: the event
 * rows are written only with the row, so nothing was written (with `final`,
 * the transaction's last statement sent with its COMMIT, as createUserAudited).
 */
export async function updateUserAudited(
  em: EntityManager,
  user: User,
  changes: Partial<UserFields>,
  audit: (next: User) => AuditInput,
  options: { now?: Date; final?: boolean } = {},
): Promise<User> {
  const next: User = Object.assign(em.create(User, { ...user }), changes, {
    version: user.version + 1,
    updatedAt: options.now ?? new Date(),
  });
  assertStorable(next);
  const params: unknown[] = [];
  const p = (value: unknown) => `$${params.push(value)}`;
  const emailChanged = changes.email !== undefined && changes.email !== user.email;
  const domain = emailChanged && next.email !== null ? emailDomain(next.email) : null;
  const verified = !emailChanged
    ? `${p(user.emailVerified)}::boolean`
    : domain === null
      ? 'false'
      : verifiedDomainSql(`${p(domain)}::text`);
  const sql = `WITH u AS (UPDATE users SET user_name = ${p(next.userName)}::text, email = ${p(next.email)}::text,
          email_verified = ${verified}, given_name = ${p(next.givenName)}::text,
          family_name = ${p(next.familyName)}::text, display_name = ${p(next.displayName)}::text,
          external_id = ${p(next.externalId)}::text, attributes = ${p(JSON.stringify(next.attributes ?? {}))}::jsonb,
          version = ${p(next.version)}::integer, updated_at = ${p(next.updatedAt)}::timestamptz
        WHERE id = ${p(user.id)}::uuid AND version = ${p(user.version)}::integer
        RETURNING email_verified),
    w AS (${webhookOutboxInsertSql(
      user.tenantId,
      'user.updated',
      { ...userEventData(next) },
      p,
      next.updatedAt,
      {
        field: 'email_verified',
        valueSql: '(SELECT email_verified FROM u)',
      },
      'EXISTS (SELECT 1 FROM u)',
    )}),
    a AS (${auditInsertSql(user.tenantId, audit(next), p, 'EXISTS (SELECT 1 FROM u)')})
    SELECT u.email_verified, ${webhookWakeSql(user.tenantId, 'SELECT 1 FROM w', p)} AS woken FROM u`;
  const rows = await translateUniqueness(() =>
    statementRows<{ email_verified: boolean }>(em, sql, params, options.final),
  );
  sealAfterCommitOf(em, user.tenantId);
  const row = rows[0];
  if (!row) throw new StaleVersionError(user.version, user.version + 1);
  next.emailVerified = row.email_verified;
  return next;
}

/**
 * A live user, locked FOR UPDATE, with their SCIM group references in the same
 * statement (issue 13: a SCIM PUT or PATCH reads its target in one round trip).
 */
export async function findUserForChange(
  em: EntityManager,
  userId: string,
): Promise<{ user: User; groups: { id: string; displayName: string }[] } | null> {
  if (!isUuid(userId)) return null;
  // The groups as groupsOfUsers(…, 'scim') orders them: by display name, then id.
  const rows = await em.query<(RawUser & { scim_groups: { id: string; displayName: string }[] })[]>(
    `SELECT u.*, (SELECT COALESCE(jsonb_agg(jsonb_build_object('id', g.id, 'displayName', g.display_name)
                    ORDER BY g.display_name, g.id), '[]'::jsonb)
                    FROM group_members gm JOIN groups g ON g.tenant_id = gm.tenant_id AND g.id = gm.group_id
                   WHERE gm.tenant_id = u.tenant_id AND gm.user_id = u.id AND g.source = 'scim') AS scim_groups
       FROM users u WHERE u.id = $1 AND u.status <> 'deleted' FOR UPDATE OF u`,
    [userId],
  );
  const row = rows[0];
  if (!row) return null;
  const { scim_groups: groups, ...user } = row;
  return { user: userFromRow(em, user), groups };
}

export interface StatusChange {
  user: User;
  /** Sessions revoked by this change (their back-channel logouts are queued). */
  revokedSessionIds: string[];
}

/**
 * Moves a user between active, suspended and deleted (docs/architecture.md). Leaving
 * active revokes every session of the user in this transaction; deleting also
 * ends their group memberships. Reactivation lets them sign in again but
 * revives no session.
 */
export async function setUserStatus(
  em: EntityManager,
  user: User,
  status: UserStatus,
  reason: string,
  options: { now?: Date } = {},
): Promise<StatusChange> {
  if (user.status === status) return { user, revokedSessionIds: [] };
  if (user.status === 'deleted') throw new ConflictError('A deleted user cannot change status');
  const now = options.now ?? new Date();
  await em.query(`UPDATE users SET status = $2, version = version + 1, updated_at = $3 WHERE id = $1`, [
    user.id,
    status,
    now,
  ]);
  const revokedSessionIds = status === 'active' ? [] : await revokeUserSessions(em, user.id, reason);
  const [left] =
    status === 'deleted'
      ? await em.query<[{ group_id: string }[], number]>(
          'DELETE FROM group_members WHERE user_id = $1 RETURNING group_id',
          [user.id],
        )
      : [[]];
  const next = Object.assign(em.create(User, { ...user }), {
    status,
    version: user.version + 1,
    updatedAt: now,
  });
  if (status === 'active') await userEvent(em, next, 'user.reactivated');
  else await userEvent(em, next, 'user.deprovisioned', { reason });
  if (left.length > 0) {
    const groups = await em.find(Group, { where: { id: In(left.map((m) => m.group_id)) } });
    for (const group of groups)
      await groupEvent(em, group, 'group.updated', { added: [], removed: [user.id] });
  }
  return { user: next, revokedSessionIds };
}

/**
 * The total of a page's query when the page cannot tell it: the page stops at
 * its LIMIT (walking the index in order, not reading every match as a window
 * count would), and a page that is neither full nor past the end is the last
 * one, so its offset plus its length is the total. Otherwise one count: for an
 * unfiltered list a read of the tenant's part of an index (index-only where the
 * visibility map allows), for a key lookup an index probe
 * (test/db/rls-index-guard.test.ts). Exact, as RFC 7644 §3.4.2 asks: a capped
 * totalResults would end an IdP's paged import early.
 */
export async function pageTotal(
  page: { offset: number; limit: number; length: number },
  count: () => Promise<{ total: string }[]>,
): Promise<number> {
  if (page.length < page.limit && (page.length > 0 || page.offset === 0)) return page.offset + page.length;
  return Number((await count())[0]?.total ?? 0);
}

/** A page of live users matching a SQL condition on alias `u` (positional parameters). */
export async function listUsers(
  em: EntityManager,
  query: { where: string; params: unknown[]; orderBy?: string; offset: number; limit: number },
): Promise<{ total: number; users: User[] }> {
  const n = query.params.length;
  const where = `u.status <> 'deleted' AND (${query.where})`;
  const rows = await em.query<RawUser[]>(
    `SELECT u.* FROM users u WHERE ${where}
      ORDER BY ${query.orderBy ?? 'u.id'} LIMIT $${n + 1} OFFSET $${n + 2}`,
    [...query.params, query.limit, query.offset],
  );
  const total = await pageTotal({ ...query, length: rows.length }, () =>
    em.query(`SELECT count(*) AS total FROM users u WHERE ${where}`, query.params),
  );
  return { total, users: rows.map((row) => userFromRow(em, row)) };
}

interface RawUser {
  tenant_id: string;
  id: string;
  user_name: string;
  email: string | null;
  email_verified: boolean;
  given_name: string | null;
  family_name: string | null;
  display_name: string | null;
  external_id: string | null;
  status: UserStatus;
  attributes: Record<string, unknown>;
  version: number;
  created_at: Date;
  updated_at: Date;
}

function userFromRow(em: EntityManager, r: RawUser): User {
  return em.create(User, {
    tenantId: r.tenant_id,
    id: r.id,
    userName: r.user_name,
    email: r.email,
    emailVerified: r.email_verified,
    givenName: r.given_name,
    familyName: r.family_name,
    displayName: r.display_name,
    externalId: r.external_id,
    status: r.status,
    attributes: r.attributes,
    version: r.version,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  });
}
