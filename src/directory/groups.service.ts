import { createHash, randomUUID } from 'node:crypto';
import { In, type EntityManager } from 'typeorm';
import { isUuid } from '../db/database.js';
import { statementRows } from '../db/pipelined-transaction.js';
import { isUniqueViolation } from '../db/pg-errors.js';
import { BadRequestError, ConflictError } from '../errors.js';
import { auditInsertSql, type AuditInput } from '../audit/audit.service.js';
import { sealAfterCommitOf } from '../audit/audit-sealer.js';
import {
  groupEvent,
  groupEventData,
  webhookOutboxInsertSql,
  webhookWakeSql,
  type MembershipDelta,
} from '../webhooks/webhook-events.js';
import { Group } from './group.entity.js';
import { groupColumnsProblem } from './limits.js';
import { pageTotal, StaleVersionError } from './users.service.js';

/**
 * The directory's groups and memberships (docs/architecture.md). Memberships feed
 * role mappings (roles.service.ts), so a membership change here changes the
 * roles in the user's next token. Functions take the caller's tenant-scoped `em`.
 */

export type GroupSource = Group['source'];

export interface GroupFields {
  displayName: string;
  externalId: string | null;
}

export interface MemberRef {
  userId: string;
  userName: string;
  displayName: string | null;
}

/** Another group of the same source has this display name (case-insensitively). */
export class GroupNameTakenError extends ConflictError {
  // The group name stays out of `detail`, which is logged (docs/security.md §7).
  constructor() {
    super('displayName is already taken in this tenant');
  }
}

/** Members that are not live users of this tenant. */
export class UnknownMembersError extends BadRequestError {
  constructor(readonly values: string[]) {
    super(`No such user: ${values.slice(0, 5).join(', ')}${values.length > 5 ? ', …' : ''}`);
  }
}

const SCIM_NAME_KEY = 'groups_tenant_scim_display_name_key';

/** The last line before a write: a value over src/directory/limits.ts would fail in the btree index (a 500). */
function assertStorable(fields: GroupFields): void {
  const problem = groupColumnsProblem(fields);
  if (problem) throw new BadRequestError(problem);
}

/**
 * The unique index (tenant_id, display_name_key) WHERE source = 'scim' is the
 * one check of a free SCIM group name, as for userNames (users.service.ts):
 * its violation aborts the caller's transaction, which rolls back whole.
 */
async function translateUniqueness<T>(write: () => Promise<T>): Promise<T> {
  try {
    return await write();
  } catch (error) {
    if (isUniqueViolation(error, SCIM_NAME_KEY)) throw new GroupNameTakenError();
    throw error;
  }
}

/** A new group, with its first `members` (user ids) when given: one group.created event says both. */
export async function createGroup(
  em: EntityManager,
  tenantId: string,
  fields: GroupFields,
  options: { source: GroupSource; now?: Date; members?: string[] },
): Promise<Group> {
  assertStorable(fields);
  const now = options.now ?? new Date();
  const group = em.create(Group, {
    tenantId,
    id: randomUUID(),
    ...fields,
    source: options.source,
    version: 1,
    createdAt: now,
    updatedAt: now,
  });
  await translateUniqueness(() => em.insert(Group, group));
  const membership: MembershipDelta = { added: [], removed: [] };
  if (options.members?.length)
    await addGroupMembers(em, tenantId, group.id, options.members, now, membership);
  await groupEvent(em, group, 'group.created', membership);
  return group;
}

/**
 * createGroup with its members and its audit event in one statement (issue 13:
 * a SCIM write is at most two round trips): the group, the memberships of the
 * live users among `members`, the group.created event and the audit event.
 * Answers the group and its members as groupMembers lists them. A member that
 * is not a live user is UnknownMembersError, and the statement wrote nothing; a
 * taken name GroupNameTakenError, and the statement failed whole. With `final`
 * it is the transaction's last statement, sent with its COMMIT.
 */
export async function createGroupAudited(
  em: EntityManager,
  tenantId: string,
  fields: GroupFields,
  options: { source: GroupSource; members: string[]; now?: Date; final?: boolean },
  audit: (group: Group) => AuditInput,
): Promise<{ group: Group; members: MemberRef[] }> {
  assertStorable(fields);
  const requested = [...new Set(options.members)];
  const malformed = requested.filter((v) => !isUuid(v));
  if (malformed.length > 0) throw new UnknownMembersError(malformed);
  const memberIds = [...new Set(requested.map((v) => v.toLowerCase()))];
  const now = options.now ?? new Date();
  const group = em.create(Group, {
    tenantId,
    id: randomUUID(),
    ...fields,
    source: options.source,
    version: 1,
    createdAt: now,
    updatedAt: now,
  });
  const params: unknown[] = [];
  const p = (value: unknown) => `$${params.push(value)}`;
  const ids = `${p(memberIds)}::uuid[]`;
  // The event says every requested member was added: were one not a live user, nothing commits.
  const event = { ...groupEventData(group, { added: memberIds, removed: [] }) };
  // Written only when every requested member is a live user (the statement may go with its COMMIT).
  const sql = `WITH live AS (SELECT u.id, u.user_name, u.display_name FROM users u
                         WHERE u.id = ANY(${ids}) AND u.status <> 'deleted'),
    g AS (INSERT INTO groups (tenant_id, id, display_name, external_id, source, version, created_at, updated_at)
          SELECT ${p(tenantId)}::uuid, ${p(group.id)}::uuid, ${p(group.displayName)}::text, ${p(group.externalId)}::text,
                 ${p(group.source)}::text, 1, ${p(now)}::timestamptz, ${p(now)}::timestamptz
           WHERE (SELECT count(*) FROM live) = ${p(memberIds.length)}
          RETURNING tenant_id, id),
    m AS (INSERT INTO group_members (tenant_id, group_id, user_id, created_at)
          SELECT g.tenant_id, g.id, live.id, ${p(now)}::timestamptz FROM g JOIN live ON true
          ON CONFLICT DO NOTHING RETURNING user_id),
    w AS (${webhookOutboxInsertSql(tenantId, 'group.created', event, p, now, undefined, 'EXISTS (SELECT 1 FROM g)')}),
    a AS (${auditInsertSql(tenantId, audit(group), p, 'EXISTS (SELECT 1 FROM g)')})
    SELECT live.id, live.user_name, live.display_name,
           ${webhookWakeSql(tenantId, 'SELECT 1 FROM w', p)} AS woken, (SELECT count(*) FROM m) AS added
      FROM (SELECT 1) one LEFT JOIN live ON true ORDER BY live.id`;
  type Row = { id: string | null; user_name: string; display_name: string | null };
  const rows = await translateUniqueness(async () => statementRows<Row>(em, sql, params, options.final));
  sealAfterCommitOf(em, tenantId);
  const live = rows.filter((r): r is typeof r & { id: string } => r.id !== null);
  const found = new Set(live.map((r) => r.id));
  const missing = requested.filter((v) => !found.has(v.toLowerCase()));
  if (missing.length > 0) throw new UnknownMembersError(missing);
  return {
    group,
    members: live.map((r) => ({ userId: r.id, userName: r.user_name, displayName: r.display_name })),
  };
}

export async function findGroup(
  em: EntityManager,
  groupId: string,
  options: { source?: GroupSource; lock?: boolean } = {},
): Promise<Group | null> {
  if (!isUuid(groupId)) return null;
  const qb = em.createQueryBuilder(Group, 'g').where('g.id = :groupId', { groupId });
  if (options.source) qb.andWhere('g.source = :source', { source: options.source });
  if (options.lock) qb.setLock('pessimistic_write');
  return qb.getOne();
}

/**
 * Writes changed fields and bumps the version (also used to record a membership
 * change: `membership` is what the member functions collected, sent in the
 * group.updated event).
 */
export async function updateGroup(
  em: EntityManager,
  group: Group,
  changes: Partial<GroupFields>,
  options: { expectedVersion?: number; now?: Date; membership?: MembershipDelta } = {},
): Promise<Group> {
  if (options.expectedVersion !== undefined && options.expectedVersion !== group.version)
    throw new StaleVersionError(options.expectedVersion, group.version);
  const next = Object.assign(em.create(Group, { ...group }), changes, {
    version: group.version + 1,
    updatedAt: options.now ?? new Date(),
  });
  assertStorable(next);
  const [, affected] = await translateUniqueness(() =>
    em.query<[unknown[], number]>(
      `UPDATE groups SET display_name = $2, external_id = $3, version = $4, updated_at = $5
        WHERE id = $1 AND version = $6`,
      [group.id, next.displayName, next.externalId, next.version, next.updatedAt, group.version],
    ),
  );
  if (affected !== 1) throw new StaleVersionError(group.version, group.version + 1);
  await groupEvent(em, next, 'group.updated', options.membership ?? { added: [], removed: [] });
  return next;
}

export async function deleteGroup(em: EntityManager, groupId: string): Promise<boolean> {
  const [rows] = await em.query<[RawGroup[], number]>('DELETE FROM groups WHERE id = $1 RETURNING *', [
    groupId,
  ]);
  for (const row of rows) await groupEvent(em, groupFromRow(em, row), 'group.deleted');
  return rows.length > 0;
}

/** Adds what one member function changed to `delta`; a change and its undo in one request cancel out. */
function record(delta: MembershipDelta | undefined, added: string[], removed: string[]): void {
  if (!delta) return;
  for (const [ids, into, from] of [
    [added, delta.added, delta.removed],
    [removed, delta.removed, delta.added],
  ] as const) {
    const pending = new Set(from);
    const undone = new Set<string>();
    for (const id of ids) {
      if (pending.has(id)) undone.add(id);
      else into.push(id);
    }
    if (undone.size === 0) continue;
    const kept = from.filter((id) => !undone.has(id));
    from.length = 0;
    for (const id of kept) from.push(id);
  }
}

/** The live users among `values` (user ids); throws UnknownMembersError for the rest. */
async function requireLiveUsers(em: EntityManager, values: string[]): Promise<string[]> {
  const unique = [...new Set(values)];
  const malformed = unique.filter((v) => !isUuid(v));
  if (malformed.length > 0) throw new UnknownMembersError(malformed);
  const rows = await em.query<{ id: string }[]>(
    `SELECT id FROM users WHERE id = ANY($1::uuid[]) AND status <> 'deleted'`,
    [unique],
  );
  const found = new Set(rows.map((r) => r.id));
  const missing = unique.filter((v) => !found.has(v.toLowerCase()));
  if (missing.length > 0) throw new UnknownMembersError(missing);
  return unique.map((v) => v.toLowerCase());
}

/** Adds members (idempotent); returns how many were new (their ids go into `delta`). */
export async function addGroupMembers(
  em: EntityManager,
  tenantId: string,
  groupId: string,
  userIds: string[],
  now = new Date(),
  delta?: MembershipDelta,
): Promise<number> {
  if (userIds.length === 0) return 0;
  const ids = await requireLiveUsers(em, userIds);
  const inserted = await em.query<{ user_id: string }[]>(
    `INSERT INTO group_members (tenant_id, group_id, user_id, created_at)
     SELECT $1, $2, unnest($3::uuid[]), $4
     ON CONFLICT DO NOTHING RETURNING user_id`,
    [tenantId, groupId, ids, now],
  );
  record(
    delta,
    inserted.map((r) => r.user_id),
    [],
  );
  return inserted.length;
}

/** Removes members (absent ones are ignored); returns how many were removed (their ids go into `delta`). */
export async function removeGroupMembers(
  em: EntityManager,
  groupId: string,
  userIds: string[],
  delta?: MembershipDelta,
): Promise<number> {
  const ids = userIds.filter(isUuid);
  if (ids.length === 0) return 0;
  const [rows] = await em.query<[{ user_id: string }[], number]>(
    'DELETE FROM group_members WHERE group_id = $1 AND user_id = ANY($2::uuid[]) RETURNING user_id',
    [groupId, ids],
  );
  record(
    delta,
    [],
    rows.map((r) => r.user_id),
  );
  return rows.length;
}

/** Makes the membership exactly `userIds`; returns whether anything changed (the changes go into `delta`). */
export async function replaceGroupMembers(
  em: EntityManager,
  tenantId: string,
  groupId: string,
  userIds: string[],
  now = new Date(),
  delta?: MembershipDelta,
): Promise<boolean> {
  const ids = userIds.length === 0 ? [] : await requireLiveUsers(em, userIds);
  const [removed] = await em.query<[{ user_id: string }[], number]>(
    'DELETE FROM group_members WHERE group_id = $1 AND NOT (user_id = ANY($2::uuid[])) RETURNING user_id',
    [groupId, ids],
  );
  record(
    delta,
    [],
    removed.map((r) => r.user_id),
  );
  const added = ids.length === 0 ? 0 : await addGroupMembers(em, tenantId, groupId, ids, now, delta);
  return removed.length + added > 0;
}

/**
 * Makes one user's memberships among the groups of `source` exactly `groupIds`
 * (ids of other sources are ignored, and memberships in them kept): how a
 * sign-in states the person's IdP groups. Each group whose membership changed
 * gets one group.updated event with its delta, collected as for the SCIM
 * member functions above; the group's own fields and version stay as they are.
 */
export async function replaceUserGroups(
  em: EntityManager,
  tenantId: string,
  userId: string,
  source: GroupSource,
  groupIds: string[],
  now = new Date(),
): Promise<void> {
  const [left] = await em.query<[{ group_id: string }[], number]>(
    `DELETE FROM group_members gm USING groups g
      WHERE g.tenant_id = gm.tenant_id AND g.id = gm.group_id
        AND gm.user_id = $1 AND g.source = $2 AND NOT (g.id = ANY($3::uuid[]))
      RETURNING gm.group_id`,
    [userId, source, groupIds],
  );
  const joined =
    groupIds.length === 0
      ? []
      : await em.query<{ group_id: string }[]>(
          `INSERT INTO group_members (tenant_id, group_id, user_id, created_at)
           SELECT $1, g.id, $3, $4 FROM groups g WHERE g.id = ANY($2::uuid[]) AND g.source = $5
           ON CONFLICT DO NOTHING RETURNING group_id`,
          [tenantId, groupIds, userId, now, source],
        );
  const deltas = new Map<string, MembershipDelta>();
  const deltaOf = (groupId: string): MembershipDelta => {
    const delta = deltas.get(groupId) ?? { added: [], removed: [] };
    deltas.set(groupId, delta);
    return delta;
  };
  for (const { group_id } of joined) record(deltaOf(group_id), [userId], []);
  for (const { group_id } of left) record(deltaOf(group_id), [], [userId]);
  if (deltas.size === 0) return;
  const groups = await em.find(Group, { where: { id: In([...deltas.keys()]) }, order: { id: 'ASC' } });
  for (const group of groups) await groupEvent(em, group, 'group.updated', deltaOf(group.id));
}

/** The groups of `source` whose external id is one of `externalIds`. */
export async function findGroupsByExternalId(
  em: EntityManager,
  source: GroupSource,
  externalIds: string[],
): Promise<Group[]> {
  if (externalIds.length === 0) return [];
  const rows = await em.query<RawGroup[]>(
    'SELECT * FROM groups WHERE source = $1 AND external_id = ANY($2::text[])',
    [source, externalIds],
  );
  return rows.map((r) => groupFromRow(em, r));
}

/**
 * The id an IdP group gets when a sign-in first names it: a UUID (version 8,
 * RFC 9562 §5.8) from SHA-256 of the tenant and the group's IdP value, so
 * every login naming the same new group inserts the same primary key and
 * `ON CONFLICT DO NOTHING` makes it exist once without a lock. Groups created
 * before issue 13 keep their random ids; they are found by external id first.
 */
export function idpGroupId(tenantId: string, externalId: string): string {
  const h = createHash('sha256').update(`gatehouse idp group v1\0${tenantId}\0${externalId}`).digest();
  h[6] = ((h[6] ?? 0) & 0x0f) | 0x80;
  h[8] = ((h[8] ?? 0) & 0x3f) | 0x80;
  const hex = h.subarray(0, 16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/**
 * The ids of the IdP-sourced groups named `names` (external ids), in that
 * order, inserting those that are absent (insert-if-absent, issue 13): the
 * groups this call created get `userId` as first member and one group.created
 * event saying both. A concurrent login inserting the same new group waits on
 * that one row only (the primary key's uniqueness check), then reads it.
 * Inserts go in id order, so two logins naming overlapping groups in any
 * order take those row locks in one order and cannot deadlock.
 */
export async function ensureIdpGroups(
  em: EntityManager,
  tenantId: string,
  names: string[],
  userId: string,
  now = new Date(),
): Promise<string[]> {
  for (const name of names) assertStorable({ displayName: name, externalId: name });
  const byName = new Map((await findGroupsByExternalId(em, 'idp', names)).map((g) => [g.externalId, g.id]));
  const missing = names.filter((n) => !byName.has(n)).map((n) => ({ name: n, id: idpGroupId(tenantId, n) }));
  if (missing.length > 0) {
    missing.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    const created = await em.query<RawGroup[]>(
      `INSERT INTO groups (tenant_id, id, display_name, external_id, source, version, created_at, updated_at)
       SELECT $1, n.id, n.name, n.name, 'idp', 1, $4, $4
         FROM unnest($2::uuid[], $3::text[]) WITH ORDINALITY AS n(id, name, i) ORDER BY n.i
       ON CONFLICT DO NOTHING RETURNING *`,
      [tenantId, missing.map((m) => m.id), missing.map((m) => m.name), now],
    );
    if (created.length > 0) {
      await em.query(
        `INSERT INTO group_members (tenant_id, group_id, user_id, created_at)
         SELECT $1, unnest($2::uuid[]), $3, $4 ON CONFLICT DO NOTHING`,
        [tenantId, created.map((g) => g.id), userId, now],
      );
      for (const row of created)
        await groupEvent(em, groupFromRow(em, row), 'group.created', { added: [userId], removed: [] });
    }
    for (const g of created) if (g.external_id !== null) byName.set(g.external_id, g.id);
    // Inserted by a concurrent login (committed by now: the conflict waited for it).
    const raced = missing.filter((m) => !byName.has(m.name)).map((m) => m.name);
    for (const g of await findGroupsByExternalId(em, 'idp', raced)) byName.set(g.externalId, g.id);
  }
  return names.flatMap((n) => {
    const id = byName.get(n);
    return id === undefined ? [] : [id];
  });
}

/**
 * SQL expressions for filters on membership, in the shape SCIM renders it
 * (RFC 7643 §4.1.2 `groups`, §4.2 `members`), for the WHERE clauses that
 * listUsers (alias `u`) and listGroups (alias `g`) run; scim/scim-schema-paths.ts
 * maps the attributes onto them. Here because group_members is this folder's table.
 */
export const USER_SCIM_GROUPS_SQL = `(SELECT COALESCE(jsonb_agg(jsonb_build_object('value', g.id::text, 'display', g.display_name,
  'type', 'direct')), '[]'::jsonb) FROM group_members gm JOIN groups g ON g.tenant_id = gm.tenant_id
  AND g.id = gm.group_id WHERE gm.tenant_id = u.tenant_id AND gm.user_id = u.id AND g.source = 'scim')`;

export const GROUP_MEMBERS_SQL = `(SELECT COALESCE(jsonb_agg(jsonb_build_object('value', gm.user_id::text, 'type', 'User')),
  '[]'::jsonb) FROM group_members gm WHERE gm.tenant_id = g.tenant_id AND gm.group_id = g.id)`;

/** A group's members (live users), in a stable order; the first `limit` of them when given. */
export async function groupMembers(
  em: EntityManager,
  groupId: string,
  limit?: number,
  options: { final?: boolean } = {},
): Promise<MemberRef[]> {
  // Ordered by gm.user_id (= u.id) so that a limit stops the primary-key scan early.
  const sql = `SELECT u.id, u.user_name, u.display_name FROM group_members gm
       JOIN users u ON u.tenant_id = gm.tenant_id AND u.id = gm.user_id
      WHERE gm.group_id = $1 AND u.status <> 'deleted' ORDER BY gm.user_id LIMIT $2`;
  const params = [groupId, limit ?? null];
  type Row = { id: string; user_name: string; display_name: string | null };
  // With `final`, the read goes with the transaction's COMMIT: one round trip less.
  const rows = await statementRows<Row>(em, sql, params, options.final);
  return rows.map((r) => ({ userId: r.id, userName: r.user_name, displayName: r.display_name }));
}

/** Each user's groups (of one source, when given), for rendering users in bulk. */
export async function groupsOfUsers(
  em: EntityManager,
  userIds: string[],
  source?: GroupSource,
  options: { final?: boolean } = {},
): Promise<Map<string, { id: string; displayName: string }[]>> {
  const result = new Map<string, { id: string; displayName: string }[]>();
  if (userIds.length === 0) return result;
  const sql = `SELECT gm.user_id, g.id, g.display_name FROM group_members gm
       JOIN groups g ON g.tenant_id = gm.tenant_id AND g.id = gm.group_id
      WHERE gm.user_id = ANY($1::uuid[]) AND ($2::text IS NULL OR g.source = $2)
      ORDER BY g.display_name, g.id`;
  const params = [userIds, source ?? null];
  type Row = { user_id: string; id: string; display_name: string };
  // With `final`, the read goes with the transaction's COMMIT: one round trip less.
  const rows = await statementRows<Row>(em, sql, params, options.final);
  for (const r of rows)
    result.set(r.user_id, [...(result.get(r.user_id) ?? []), { id: r.id, displayName: r.display_name }]);
  return result;
}

/** A page of groups of one source matching a SQL condition on alias `g` (positional parameters). */
export async function listGroups(
  em: EntityManager,
  query: {
    source: GroupSource;
    where: string;
    params: unknown[];
    /** An ORDER BY list on alias `g` (scim-filter.ts sortToSql); by id when absent. */
    orderBy?: string;
    offset: number;
    limit: number;
  },
): Promise<{ total: number; groups: Group[] }> {
  const n = query.params.length;
  const where = `g.source = $${n + 1} AND (${query.where})`;
  const rows = await em.query<RawGroup[]>(
    `SELECT g.* FROM groups g WHERE ${where}
      ORDER BY ${query.orderBy ?? 'g.id'} LIMIT $${n + 2} OFFSET $${n + 3}`,
    [...query.params, query.source, query.limit, query.offset],
  );
  // As listUsers: counted only when the page cannot tell the total.
  const total = await pageTotal({ ...query, length: rows.length }, () =>
    em.query(`SELECT count(*) AS total FROM groups g WHERE ${where}`, [...query.params, query.source]),
  );
  return { total, groups: rows.map((r) => groupFromRow(em, r)) };
}

function groupFromRow(em: EntityManager, r: RawGroup): Group {
  return em.create(Group, {
    tenantId: r.tenant_id,
    id: r.id,
    displayName: r.display_name,
    externalId: r.external_id,
    source: r.source,
    version: r.version,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  });
}

interface RawGroup {
  tenant_id: string;
  id: string;
  display_name: string;
  external_id: string | null;
  source: GroupSource;
  version: number;
  created_at: Date;
  updated_at: Date;
}
