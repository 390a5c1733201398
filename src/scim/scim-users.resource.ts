import SCIMMY from 'scimmy';
import type { EntityManager } from 'typeorm';
import { auditInsertSql, recordAudit, type AuditInput } from '../audit/audit.service.js';
import { finalStatement } from '../db/pipelined-transaction.js';
import { sealAfterCommitOf } from '../audit/audit-sealer.js';
import { groupsOfUsers } from '../directory/groups.service.js';
import type { User } from '../directory/user.entity.js';
import {
  createUserAudited,
  findUser,
  findUserForChange,
  listUsers,
  setUserStatus,
  updateUser,
  updateUserAudited,
  type UserFields,
} from '../directory/users.service.js';
import { asContext, etagOf, notFound, scimRun, type ScimContext } from './scim-context.js';
import { canonicalJson, plain } from './scim-list.js';
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
import { CORE_USER, ENTERPRISE_USER, userFilterResolver } from './scim-schema-paths.js';
import { scimUserOf, userFieldsFromScim, wantsAttribute, type GroupRef } from './scim-user-mapping.js';
import { erasePerson } from '../directory/person-erasure.js';

type Json = Record<string, unknown>;
type PatchMessage = Parameters<InstanceType<typeof SCIMMY.Resources.User>['patch']>[0];
interface UserWithGroups {
  user: User;
  groups: GroupRef[];
}

/**
 * /Users on the directory (RFC 7644 §3). Each request is one withTenant
 * transaction: PATCH reads (FOR UPDATE), applies and writes in it, so
 * concurrent changes to a user serialise and a failed request writes nothing.
 * Deactivation and deletion revoke the user's sessions in that transaction.
 */
export class ScimUsers extends SCIMMY.Resources.User {
  override async read(ctx?: unknown): Promise<SCIMMY.Messages.ListResponse | SCIMMY.Schemas.User> {
    const c = asContext(ctx);
    return scimRun(c, () => {
      const withGroups = wantsAttribute(this.attributes, 'groups');
      return readResources<UserWithGroups, SCIMMY.Schemas.User>(c, this, {
        type: 'User',
        filterResolver: userFilterResolver,
        findOne: async (em, id) => {
          const user = await findUser(em, id);
          // The groups are the transaction's last read: they go with its COMMIT.
          return user ? { user, groups: withGroups ? await scimGroupsOf(em, user.id) : [] } : null;
        },
        findPage: async (em, query) => {
          const { total, users } = await listUsers(em, query);
          const ids = users.map((u) => u.id);
          // The last read of the transaction (after the page and its count): it goes with the COMMIT.
          const groups = withGroups
            ? await groupsOfUsers(em, ids, 'scim', { final: true })
            : new Map<string, GroupRef[]>();
          return { total, items: users.map((user) => ({ user, groups: groups.get(user.id) ?? [] })) };
        },
        version: (found) => found.user.version,
        render: (found) => this.render(c, found.user, found.groups),
      });
    });
  }

  override async write(instance: unknown, ctx?: unknown): Promise<SCIMMY.Schemas.User> {
    const c = asContext(ctx);
    const id = this.id;
    return scimRun(c, async () => {
      const { fields, active } = userFieldsFromScim(inboundResource('User', instance, id).resource);
      if (id === undefined) {
        // One statement (issue 13): the row, its webhook event and its audit event.
        const user = await c.db.withTenant(c.tenantId, (em) =>
          createUserAudited(
            em,
            c.tenantId,
            fields,
            // The transaction's only statement: it goes with the COMMIT (one round trip).
            { status: active === false ? 'suspended' : 'active', final: true },
            (created) => auditInput(c, 'scim.user.created', created, null, created),
          ),
        );
        c.setHeader('Location', `${c.baseUrl}/Users/${user.id}`);
        c.setHeader('ETag', etagOf(user.version));
        return this.render(c, user, []);
      }
      const result = await c.db.withTenant(c.tenantId, async (em) => {
        const found = await findUserForChange(em, id);
        const user = changeTarget(c, 'User', id, found?.user ?? null);
        const saved = await persist(em, c, user, fields, active, 'scim.user.replaced');
        return { user: saved, groups: found?.groups ?? [] };
      });
      c.setHeader('ETag', etagOf(result.user.version));
      return this.render(c, result.user, result.groups);
    });
  }

  override async patch(message: PatchMessage, ctx?: unknown): Promise<SCIMMY.Schemas.User> {
    const c = asContext(ctx);
    const id = this.id;
    if (id === undefined) throw notFound('User', id);
    return scimRun(c, async () => {
      const normalized = normalizePatch('User', requireObject(message, 'PATCH'));
      const result = await c.db.withTenant(c.tenantId, async (em) => {
        const found = await findUserForChange(em, id);
        const user = changeTarget(c, 'User', id, found?.user ?? null);
        const groups = found?.groups ?? [];
        const current = outboundResource(c, 'User', scimUserOf(user, groups, c.baseUrl));
        const operations = addMissingTypedValues(normalized.Operations, plain(current));
        const patched = await applyPatchOp(current, {
          ...normalized,
          Operations: operations,
        } as PatchOpMessage);
        // The patched whole must still be a valid User (e.g. userName not removed).
        const inbound = Object.fromEntries(
          Object.entries(patched).filter(([k]) => !['id', 'meta', 'groups'].includes(k)),
        );
        const { fields, active } = userFieldsFromScim(validateInbound('User', inbound));
        const saved = await persist(em, c, user, fields, active, 'scim.user.patched');
        return { user: saved, groups };
      });
      c.setHeader('ETag', etagOf(result.user.version));
      return this.render(c, result.user, result.groups);
    });
  }

  override async dispose(ctx?: unknown): Promise<void> {
    const c = asContext(ctx);
    const id = this.id;
    if (id === undefined) throw notFound('User', id);
    await scimRun(c, () =>
      c.db.withTenant(c.tenantId, async (em) => {
        const user = changeTarget(c, 'User', id, await findUser(em, id, { lock: true }));
        const { user: deleted, revokedSessionIds } = await setUserStatus(em, user, 'deleted', 'scim_deleted');
        // Without erasure the event is the transaction's last statement, sent with the COMMIT.
        await audit(em, c, 'scim.user.deleted', deleted, user, deleted, revokedSessionIds.length, {
          final: !c.deleteErases,
        });
        // Issue 12, opt-in (GATEHOUSE_SCIM_DELETE_ERASES): erase too, this request's events included.
        // Off by default: the tombstone's identifiers are what refuse the person's next sign-in.
        if (c.deleteErases)
          await erasePerson(em, c.tenantId, id, 'scim_deleted', {
            actor: c.actor,
            requestId: c.requestId,
            sourceIp: c.sourceIp,
          });
      }),
    );
  }

  private render(c: ScimContext, user: User, groups: GroupRef[]): SCIMMY.Schemas.User {
    const data = scimUserOf(user, groups, c.baseUrl);
    const schemas = [CORE_USER, ...(data[ENTERPRISE_USER] ? [ENTERPRISE_USER] : [])];
    return outboundResource(c, 'User', data, { attributes: this.attributes, schemas });
  }
}

/** One user's SCIM groups, as the transaction's final statement (db/pipelined-transaction.ts). */
async function scimGroupsOf(em: EntityManager, userId: string): Promise<GroupRef[]> {
  return (await groupsOfUsers(em, [userId], 'scim', { final: true })).get(userId) ?? [];
}

function sameFields(user: User, fields: UserFields): boolean {
  return (
    user.userName === fields.userName &&
    user.email === fields.email &&
    user.givenName === fields.givenName &&
    user.familyName === fields.familyName &&
    user.displayName === fields.displayName &&
    user.externalId === fields.externalId &&
    canonicalJson(user.attributes) === canonicalJson(fields.attributes)
  );
}

/**
 * Writes the new representation and, when `active` changed, the status: leaving
 * active revokes every session of the user (and queues their back-channel
 * logouts) in this transaction; coming back revives none of them.
 */
async function persist(
  em: EntityManager,
  c: ScimContext,
  user: User,
  fields: UserFields,
  active: boolean | undefined,
  action: string,
): Promise<User> {
  const status = active === undefined ? user.status : active ? 'active' : 'suspended';
  if (status === user.status) {
    if (sameFields(user, fields)) return user;
    // The common change (issue 13): the row, its webhook event and its audit event in one statement.
    // The transaction's last statement (the callers return after persist): it goes with the COMMIT.
    return updateUserAudited(em, user, fields, (next) => auditInput(c, action, next, user, next), {
      final: true,
    });
  }
  let current = sameFields(user, fields) ? user : await updateUser(em, user, fields);
  let revoked = 0;
  if (status !== current.status) {
    const change = await setUserStatus(em, current, status, 'scim_deactivated');
    current = change.user;
    revoked = change.revokedSessionIds.length;
  }
  if (current === user) return user;
  const statusAction =
    status !== user.status ? (status === 'active' ? 'scim.user.reactivated' : 'scim.user.suspended') : action;
  // The transaction's last statement: it goes with the COMMIT.
  await audit(em, c, statusAction, current, user, current, revoked, { final: true });
  return current;
}

const summary = (u: User) => ({
  user_name: u.userName,
  external_id: u.externalId,
  email: u.email,
  status: u.status,
  version: u.version,
});

async function audit(
  em: EntityManager,
  c: ScimContext,
  action: string,
  target: User,
  before: User | null,
  after: User | null,
  revokedSessions?: number,
  options: { final?: boolean } = {},
): Promise<void> {
  const input = auditInput(c, action, target, before, after, revokedSessions);
  if (!options.final) return recordAudit(em, c.tenantId, input);
  const params: unknown[] = [];
  sealAfterCommitOf(em, c.tenantId);
  await finalStatement(
    em,
    auditInsertSql(c.tenantId, input, (v) => `$${params.push(v)}`),
    params,
  );
}

function auditInput(
  c: ScimContext,
  action: string,
  target: User,
  before: User | null,
  after: User | null,
  revokedSessions?: number,
): AuditInput {
  return {
    actor: c.actor,
    action,
    target: { type: 'user', id: target.id },
    requestId: c.requestId,
    sourceIp: c.sourceIp,
    before: before ? summary(before) : null,
    after: after
      ? { ...summary(after), ...(revokedSessions ? { revoked_sessions: revokedSessions } : {}) }
      : null,
  };
}

const TYPED_PATH = /^(\w+)\[\s*type\s+eq\s+"([^"]*)"\s*\](?:\.(\w+))?$/i;

/**
 * Entra ID replaces `emails[type eq "work"].value` even when the user has no
 * work email yet; RFC 7644 §3.5.2.1 would answer 400 noTarget. Like Entra's own
 * reference server, treat it as adding a value of that type.
 */
function addMissingTypedValues(operations: unknown, current: Json): unknown {
  if (!Array.isArray(operations)) return operations;
  return operations.map((op: unknown) => {
    if (!isObject(op) || typeof op.op !== 'string' || typeof op.path !== 'string') return op;
    if (!['add', 'replace'].includes(op.op.toLowerCase())) return op;
    const m = TYPED_PATH.exec(op.path);
    if (!m?.[1] || m[2] === undefined) return op;
    const [, attribute, type, sub] = m;
    const key = Object.keys(current).find((k) => k.toLowerCase() === attribute.toLowerCase());
    const list = key ? current[key] : undefined;
    if (
      Array.isArray(list) &&
      list.some((e) => isObject(e) && String(e.type).toLowerCase() === type.toLowerCase())
    )
      return op;
    const element = sub ? { type, [sub]: op.value } : isObject(op.value) ? { ...op.value, type } : null;
    return element ? { op: 'add', path: attribute, value: [element] } : op;
  });
}
