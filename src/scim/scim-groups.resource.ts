import SCIMMY from 'scimmy';
import type { EntityManager } from 'typeorm';
import { recordAudit, type AuditInput } from '../audit/audit.service.js';
import type { Group } from '../directory/group.entity.js';
import { groupColumnsProblem } from '../directory/limits.js';
import {
  addGroupMembers,
  createGroupAudited,
  deleteGroup,
  findGroup,
  groupMembers,
  listGroups,
  removeGroupMembers,
  replaceGroupMembers,
  updateGroup,
  type GroupFields,
  type MemberRef,
} from '../directory/groups.service.js';
import { asContext, etagOf, notFound, ScimError, scimRun, type ScimContext } from './scim-context.js';
import { parseFilter, type FilterNode } from './scim-filter.js';
import { isObject, normalizePatch, requireObject } from './scim-normalize.js';
import {
  applyPatchOp,
  changeTarget,
  inboundResource,
  outboundResource,
  readResources,
  validateInbound,
  type PatchOpMessage,
} from './scim-resource.js';
import { CORE_GROUP, groupFilterResolver } from './scim-schema-paths.js';
import { wantsAttribute } from './scim-user-mapping.js';
import type { MembershipDelta } from '../webhooks/webhook-events.js';

type Json = Record<string, unknown>;
type PatchMessage = Parameters<InstanceType<typeof SCIMMY.Resources.Group>['patch']>[0];
interface GroupWithMembers {
  group: Group;
  /** Undefined when the request leaves members out: they were not read. */
  members: MemberRef[] | undefined;
}

/**
 * /Groups on the directory. Memberships are rows in group_members, changed
 * by SQL set operations: a PATCH adding one member to a large group touches
 * one row, and concurrent PATCHes on a group serialise on its row lock.
 * Group membership feeds role mappings, so the next token carries new roles.
 */
export class ScimGroups extends SCIMMY.Resources.Group {
  override async read(ctx?: unknown): Promise<SCIMMY.Messages.ListResponse | SCIMMY.Schemas.Group> {
    const c = asContext(ctx);
    return scimRun(c, () => {
      // Members are read only when the response carries them (excludedAttributes=members: never).
      const withMembers = wantsAttribute(withoutCoreUrn(this.attributes), 'members');
      // The members are the transaction's last read: they go with its COMMIT.
      const membersOf = async (em: EntityManager, group: Group) =>
        withMembers ? await groupMembers(em, group.id, undefined, { final: true }) : undefined;
      return readResources<GroupWithMembers, SCIMMY.Schemas.Group>(c, this, {
        type: 'Group',
        filterResolver: groupFilterResolver,
        findOne: async (em, id) => {
          const group = await findGroup(em, id, { source: 'scim' });
          return group ? { group, members: await membersOf(em, group) } : null;
        },
        findPage: async (em, query) => {
          const { total, groups } = await listGroups(em, { source: 'scim', ...query });
          if (!withMembers) return { total, items: groups.map((group) => ({ group, members: undefined })) };
          return { total, items: await withinMemberBudget(em, groups) };
        },
        version: (found) => found.group.version,
        render: (found) => this.render(c, found.group, found.members),
      });
    });
  }

  override async write(instance: unknown, ctx?: unknown): Promise<SCIMMY.Schemas.Group> {
    const c = asContext(ctx);
    const id = this.id;
    return scimRun(c, async () => {
      const { resource: parsed, sent } = inboundResource('Group', instance, id);
      const hasMembers = Object.keys(sent).some((k) => k.toLowerCase() === 'members');
      const fields = groupFields(parsed);
      const memberIds = memberValues(parsed.members ?? []);
      const result = await c.db.withTenant(c.tenantId, async (em) => {
        if (id === undefined) {
          // One statement (issue 13): the group, its members, its webhook event and its audit event.
          // The transaction's only statement: it goes with the COMMIT (one round trip).
          return createGroupAudited(
            em,
            c.tenantId,
            fields,
            { source: 'scim', members: memberIds, final: true },
            (group) => auditInput(c, 'scim.group.created', group, { members: memberIds.length }),
          );
        }
        const group = changeTarget(c, 'Group', id, await findGroup(em, id, { source: 'scim', lock: true }));
        // Okta replaces memberships with PUT; a PUT without `members` leaves them as they are.
        const membership: MembershipDelta = { added: [], removed: [] };
        const membersChanged = hasMembers
          ? await replaceGroupMembers(em, c.tenantId, id, memberIds, undefined, membership)
          : false;
        const changed = fields.displayName !== group.displayName || fields.externalId !== group.externalId;
        const saved =
          changed || membersChanged ? await updateGroup(em, group, fields, { membership }) : group;
        if (saved !== group)
          await audit(em, c, 'scim.group.replaced', saved, { members_replaced: membersChanged });
        // The transaction's last statement: the members as stored now, read with the COMMIT.
        return { group: saved, members: await groupMembers(em, id, undefined, { final: true }) };
      });
      if (id === undefined) c.setHeader('Location', `${c.baseUrl}/Groups/${result.group.id}`);
      c.setHeader('ETag', etagOf(result.group.version));
      return this.render(c, result.group, result.members);
    });
  }

  /** Answers 204 (Entra ID's expectation; Okta accepts it): no member list is sent back. */
  override async patch(message: PatchMessage, ctx?: unknown): Promise<SCIMMY.Schemas.Group> {
    const c = asContext(ctx);
    const id = this.id;
    if (id === undefined) throw notFound('Group', id);
    await scimRun(c, async () => {
      const normalized = normalizePatch('Group', requireObject(message, 'PATCH'));
      // Operations may all have vanished (null `add`s): then nothing changes.
      const operations =
        Array.isArray(normalized.Operations) && normalized.Operations.length === 0
          ? []
          : (new SCIMMY.Messages.PatchOp(normalized as PatchOpMessage).Operations as Json[]);
      const version = await c.db.withTenant(c.tenantId, async (em) => {
        const group = changeTarget(c, 'Group', id, await findGroup(em, id, { source: 'scim', lock: true }));
        const counts: MemberCounts = {
          added: 0,
          removed: 0,
          replaced: false,
          delta: { added: [], removed: [] },
        };
        const others: Json[] = [];
        for (const op of operations) {
          const kind = String(op.op).toLowerCase();
          if (typeof op.path === 'string' && isMembersPath(op.path)) {
            await applyMemberOp(em, c, group, kind, op.path, op.value, counts);
          } else if (op.path === undefined && isObject(op.value)) {
            const key = Object.keys(op.value).find((k) => k.toLowerCase() === 'members');
            if (key) await applyMemberOp(em, c, group, kind, 'members', op.value[key], counts);
            const rest = Object.fromEntries(Object.entries(op.value).filter(([k]) => k !== key));
            if (Object.keys(rest).length > 0) others.push({ ...op, value: rest });
          } else others.push(op);
        }
        const fields = others.length > 0 ? await patchedFields(c, group, others) : null;
        const fieldsChanged =
          fields !== null &&
          (fields.displayName !== group.displayName || fields.externalId !== group.externalId);
        const membersChanged = counts.added + counts.removed > 0 || counts.replaced;
        if (!fieldsChanged && !membersChanged) return group.version;
        const saved = await updateGroup(em, group, fields ?? {}, { membership: counts.delta });
        await audit(em, c, 'scim.group.patched', saved, {
          members_added: counts.added,
          members_removed: counts.removed,
          ...(counts.replaced ? { members_replaced: true } : {}),
        });
        return saved.version;
      });
      c.setHeader('ETag', etagOf(version));
    });
    return undefined as unknown as SCIMMY.Schemas.Group;
  }

  override async dispose(ctx?: unknown): Promise<void> {
    const c = asContext(ctx);
    const id = this.id;
    if (id === undefined) throw notFound('Group', id);
    await scimRun(c, () =>
      c.db.withTenant(c.tenantId, async (em) => {
        const group = changeTarget(c, 'Group', id, await findGroup(em, id, { source: 'scim', lock: true }));
        await deleteGroup(em, id);
        await audit(em, c, 'scim.group.deleted', group, {});
      }),
    );
  }

  private render(c: ScimContext, group: Group, members: MemberRef[] | undefined): SCIMMY.Schemas.Group {
    const resource = {
      schemas: [CORE_GROUP],
      id: group.id,
      externalId: group.externalId ?? undefined,
      displayName: group.displayName,
      // Not read, not sent: an empty list would claim the group has no members.
      members: members?.map((m) => ({
        value: m.userId,
        display: m.displayName ?? m.userName,
        $ref: `${c.baseUrl}/Users/${m.userId}`,
        type: 'User',
      })),
      meta: {
        resourceType: 'Group',
        created: group.createdAt,
        lastModified: group.updatedAt,
        version: etagOf(group.version),
      },
    };
    return outboundResource(c, 'Group', resource, { attributes: this.attributes, schemas: [CORE_GROUP] });
  }
}

/**
 * Most members one list page carries. A page of groups with members stops
 * before the group that would exceed it (RFC 7644 §3.4.2.4 lets a page hold
 * fewer than `count`; itemsPerPage says how many, and the client asks for the
 * next startIndex); its first group always comes whole, however large. No
 * group is ever sent with part of its members.
 */
export const LIST_MEMBER_BUDGET = 2_000;

/**
 * The page's groups with their members, up to LIST_MEMBER_BUDGET members in
 * all: each group's read is limited to what is left of the budget plus one, so
 * a page of 100 groups × 10,000 members reads about 2,000 member rows, not 10^6.
 */
async function withinMemberBudget(em: EntityManager, groups: Group[]): Promise<GroupWithMembers[]> {
  const items: GroupWithMembers[] = [];
  let left = LIST_MEMBER_BUDGET;
  for (const group of groups) {
    const first = items.length === 0;
    const members = await groupMembers(em, group.id, first ? undefined : left + 1);
    if (!first && members.length > left) break;
    items.push({ group, members });
    left = Math.max(0, left - members.length);
  }
  return items;
}

/** The attribute selection with `urn:…:core:2.0:Group:members` read as `members` (RFC 7644 §3.10). */
function withoutCoreUrn(selection: { expression: string } | undefined): { expression: string } | undefined {
  return (
    selection && {
      expression: selection.expression.replace(/urn:ietf:params:scim:schemas:core:2\.0:Group:/gi, ''),
    }
  );
}

/** The group's columns, within the stored-string limits (src/directory/limits.ts): 400 invalidValue otherwise. */
function groupFields(parsed: Json): GroupFields {
  const fields = {
    displayName: String(parsed.displayName),
    externalId: typeof parsed.externalId === 'string' && parsed.externalId !== '' ? parsed.externalId : null,
  };
  const problem = groupColumnsProblem(fields);
  if (problem) throw new ScimError(400, 'invalidValue', problem);
  return fields;
}

const MEMBERS_PATH = /^(?:urn:ietf:params:scim:schemas:core:2\.0:Group:)?members(?:\[(.*)\])?$/i;

function isMembersPath(path: string): boolean {
  return /^(?:urn:ietf:params:scim:schemas:core:2\.0:Group:)?members\b/i.test(path);
}

/** The user ids in a `members` value (one member object or a list); `$ref` and `display` are ignored. */
function memberValues(value: unknown): string[] {
  const list = Array.isArray(value) ? value : [value];
  return list.map((m) => {
    if (!isObject(m) || typeof m.value !== 'string' || m.value === '')
      throw new ScimError(400, 'invalidValue', "Each member needs a string 'value' (the user's id)");
    if (typeof m.type === 'string' && m.type.toLowerCase() === 'group')
      throw new ScimError(400, 'invalidValue', 'Nested groups are not supported');
    return m.value;
  });
}

/** What a PATCH did to members: counts for the audit event, ids for the group.updated webhook event. */
interface MemberCounts {
  added: number;
  removed: number;
  replaced: boolean;
  delta: MembershipDelta;
}

/** One PatchOp operation on `members`, as set operations on group_members (RFC 7644 §3.5.2). */
async function applyMemberOp(
  em: EntityManager,
  c: ScimContext,
  group: Group,
  kind: string,
  path: string,
  value: unknown,
  counts: MemberCounts,
): Promise<void> {
  const m = MEMBERS_PATH.exec(path);
  if (!m) throw new ScimError(400, 'invalidPath', `Unsupported path '${path}'`);
  const filter = m[1];
  if (filter !== undefined) {
    // §3.5.2.2: remove with a value filter, e.g. members[value eq "…"] (Okta, Entra).
    if (kind !== 'remove')
      throw new ScimError(400, 'invalidPath', `'${kind}' does not take a members filter`);
    counts.removed += await removeGroupMembers(
      em,
      group.id,
      await matchingMembers(em, group.id, filter),
      counts.delta,
    );
    return;
  }
  if (kind === 'add') {
    if (value === undefined) throw new ScimError(400, 'invalidValue', "'add' needs a value");
    counts.added += await addGroupMembers(
      em,
      c.tenantId,
      group.id,
      memberValues(value),
      undefined,
      counts.delta,
    );
  } else if (kind === 'replace') {
    const ids = value === undefined ? [] : memberValues(value);
    counts.replaced =
      (await replaceGroupMembers(em, c.tenantId, group.id, ids, undefined, counts.delta)) || counts.replaced;
  } else if (value === undefined) {
    // §3.5.2.2: remove without a filter removes every member.
    counts.replaced =
      (await replaceGroupMembers(em, c.tenantId, group.id, [], undefined, counts.delta)) || counts.replaced;
  } else {
    // Entra ID: remove with the members listed in `value` (ssoready#182).
    counts.removed += await removeGroupMembers(em, group.id, memberValues(value), counts.delta);
  }
}

/** The members matched by a filter; `value eq "…"` (or an OR of them) needs no lookup. */
async function matchingMembers(em: EntityManager, groupId: string, expression: string): Promise<string[]> {
  const filter = parseFilter(expression);
  const direct = directValues(filter);
  if (direct) return direct;
  const members = (await groupMembers(em, groupId)).map((m) => ({
    value: m.userId,
    display: m.displayName ?? m.userName,
    type: 'User',
  }));
  return members.filter((m) => memberMatches(filter, m)).map((m) => m.value);
}

/** The ids of `value eq "a" or value eq "b"`, or null for any other filter. */
function directValues(node: FilterNode): string[] | null {
  if (node.kind === 'or') {
    const left = directValues(node.left);
    const right = directValues(node.right);
    return left && right ? [...left, ...right] : null;
  }
  return node.kind === 'compare' &&
    node.op === 'eq' &&
    node.path.length === 1 &&
    node.path[0]?.toLowerCase() === 'value' &&
    typeof node.value === 'string'
    ? [node.value]
    : null;
}

/**
 * One member against a members[…] value filter (RFC 7644 §3.5.2.2): `value`
 * compares exactly (an id), `display` and `type` ignoring case (RFC 7643 §4.2).
 */
function memberMatches(node: FilterNode, member: Record<string, string>): boolean {
  switch (node.kind) {
    case 'and':
      return memberMatches(node.left, member) && memberMatches(node.right, member);
    case 'or':
      return memberMatches(node.left, member) || memberMatches(node.right, member);
    case 'not':
      return !memberMatches(node.filter, member);
    case 'valuePath':
      throw new ScimError(400, 'invalidPath', 'A members filter cannot contain another value filter');
    default: {
      const name = node.path.join('.').toLowerCase();
      const key = Object.keys(member).find((k) => k.toLowerCase() === name);
      if (key === undefined) throw new ScimError(400, 'invalidPath', `Members have no attribute '${name}'`);
      const exact = key === 'value';
      const actual = exact ? (member[key] ?? '') : (member[key] ?? '').toLowerCase();
      if (node.kind === 'present') return actual !== '';
      if (typeof node.value !== 'string') return node.op === 'ne';
      const wanted = exact ? node.value : node.value.toLowerCase();
      return compareText(actual, node.op, wanted);
    }
  }
}

function compareText(actual: string, op: string, wanted: string): boolean {
  switch (op) {
    case 'eq':
      return actual === wanted;
    case 'ne':
      return actual !== wanted;
    case 'co':
      return actual.includes(wanted);
    case 'sw':
      return actual.startsWith(wanted);
    case 'ew':
      return actual.endsWith(wanted);
    case 'gt':
      return actual > wanted;
    case 'ge':
      return actual >= wanted;
    case 'lt':
      return actual < wanted;
    default:
      return actual <= wanted;
  }
}

/** displayName/externalId after the non-member operations, applied by scimmy to the group without members. */
async function patchedFields(c: ScimContext, group: Group, operations: Json[]): Promise<GroupFields> {
  const current = outboundResource(c, 'Group', {
    id: group.id,
    externalId: group.externalId ?? undefined,
    displayName: group.displayName,
  });
  const patched = await applyPatchOp(current, {
    schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'],
    Operations: operations,
  } as PatchOpMessage);
  const inbound = { displayName: patched.displayName, externalId: patched.externalId };
  return groupFields(validateInbound('Group', inbound));
}

async function audit(
  em: EntityManager,
  c: ScimContext,
  action: string,
  group: Group,
  extra: Json,
): Promise<void> {
  await recordAudit(em, c.tenantId, auditInput(c, action, group, extra));
}

function auditInput(c: ScimContext, action: string, group: Group, extra: Json): AuditInput {
  return {
    actor: c.actor,
    action,
    target: { type: 'group', id: group.id },
    requestId: c.requestId,
    sourceIp: c.sourceIp,
    after: {
      display_name: group.displayName,
      external_id: group.externalId,
      version: group.version,
      ...extra,
    },
  };
}
