import { randomUUID } from 'node:crypto';
import { In, type EntityManager } from 'typeorm';
import type { QueryDeepPartialEntity } from 'typeorm/query-builder/QueryPartialEntity.js';
import { isUuid } from '../db/database.js';
import { isUniqueViolation } from '../db/pg-errors.js';
import { BadRequestError, ConflictError } from '../errors.js';
import { revokeUserSessions } from '../sessions/sessions.service.js';
import { emailDomain } from '../tenants/domain-name.js';
import { isVerifiedDomain } from '../tenants/domains.service.js';
import { groupEvent, userEvent } from '../webhooks/webhook-events.js';
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

async function assertUserNameFree(em: EntityManager, userName: string, exceptId: string | null) {
  const rows = await em.query<unknown[]>(
    `SELECT 1 FROM users WHERE lower(user_name) = lower($1) AND status <> 'deleted'
        AND ($2::uuid IS NULL OR id <> $2::uuid) LIMIT 1`,
    [userName, exceptId],
  );
  if (rows.length > 0) throw new UserNameTakenError();
}

async function translateUniqueness<T>(userName: string, write: () => Promise<T>): Promise<T> {
  try {
    return await write();
  } catch (error) {
    // A concurrent writer took the name between our check and our write.
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
  await assertUserNameFree(em, fields.userName, null);
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
  await translateUniqueness(fields.userName, () => em.insert(User, user as QueryDeepPartialEntity<User>));
  await userEvent(em, user, 'user.created');
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

export async function findUserByUserName(em: EntityManager, userName: string): Promise<User | null> {
  return em
    .createQueryBuilder(User, 'u')
    .where("lower(u.user_name) = lower(:userName) AND u.status <> 'deleted'", { userName })
    .getOne();
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
  if (changes.userName !== undefined && changes.userName.toLowerCase() !== user.userName.toLowerCase())
    await assertUserNameFree(em, changes.userName, user.id);
  const next: User = Object.assign(em.create(User, { ...user }), changes, {
    version: user.version + 1,
    updatedAt: options.now ?? new Date(),
  });
  assertStorable(next);
  if (options.emailVerified !== undefined) next.emailVerified = options.emailVerified;
  else if (changes.email !== undefined && changes.email !== user.email)
    next.emailVerified = await isVerifiedDomainEmail(em, changes.email);
  const [, affected] = await translateUniqueness(next.userName, () =>
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

/** A page of live users matching a SQL condition on alias `u` (positional parameters). */
export async function listUsers(
  em: EntityManager,
  query: { where: string; params: unknown[]; orderBy?: string; offset: number; limit: number },
): Promise<{ total: number; users: User[] }> {
  const n = query.params.length;
  const where = `u.status <> 'deleted' AND (${query.where})`;
  const rows = await em.query<(RawUser & { total: string })[]>(
    `SELECT u.*, count(*) OVER () AS total FROM users u WHERE ${where}
      ORDER BY ${query.orderBy ?? 'u.id'} LIMIT $${n + 1} OFFSET $${n + 2}`,
    [...query.params, query.limit, query.offset],
  );
  let total = Number(rows[0]?.total ?? 0);
  if (rows.length === 0 && (query.offset > 0 || query.limit === 0)) {
    const counted = await em.query<{ total: string }[]>(
      `SELECT count(*) AS total FROM users u WHERE ${where}`,
      query.params,
    );
    total = Number(counted[0]?.total ?? 0);
  }
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
