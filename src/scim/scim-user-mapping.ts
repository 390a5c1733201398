import type { User } from '../directory/user.entity.js';
import { LIMITS, textProblem, userColumnsProblem, utf8Length } from '../directory/limits.js';
import type { UserFields } from '../directory/users.service.js';
import { etagOf, ScimError } from './scim-context.js';
import { isObject } from './scim-normalize.js';

/**
 * A SCIM User ↔ a directory user. Columns hold what the rest of Gatehouse
 * reads (userName, primary email, names, externalId, status); `attributes`
 * holds the rest of the representation as the IdP sent it, so it round-trips.
 * Columns win when rendering: a JIT login or an admin may have changed them.
 */

type Json = Record<string, unknown>;

/** Keys that live in columns or are computed, never in `attributes`. */
const NOT_STORED = new Set([
  'id',
  'meta',
  'schemas',
  'groups',
  'password',
  'username',
  'externalid',
  'displayname',
  'active',
]);

/** The primary email (RFC 7643 §4.1.2), else the work one, else the first. */
function primaryEmail(emails: unknown): string | null {
  if (!Array.isArray(emails)) return null;
  const values = emails.filter(isObject).filter((e) => typeof e.value === 'string' && e.value !== '');
  const pick = values.find((e) => e.primary === true) ?? values.find((e) => e.type === 'work') ?? values[0];
  return typeof pick?.value === 'string' ? pick.value : null;
}

const text = (v: unknown): string | null => (typeof v === 'string' && v !== '' ? v : null);

/**
 * The directory fields of a coerced SCIM User (scimmy's inbound representation,
 * as JSON), within the stored-string limits (src/directory/limits.ts): 400
 * invalidValue otherwise. POST, PUT and the result of a PATCH all pass here
 * before anything is written.
 */
export function userFieldsFromScim(resource: Json): { fields: UserFields; active: boolean | undefined } {
  const result = userFieldsOf(resource);
  const problem = userColumnsProblem(result.fields) ?? attributesProblem(result.fields.attributes);
  if (problem) throw new ScimError(400, 'invalidValue', problem);
  return result;
}

/** Longest attribute name kept in users.attributes (scimmy's schema names are < 30). */
const MAX_KEY_BYTES = 256;

/**
 * The rest of the representation (users.attributes, jsonb): every emails[].value
 * an address (any of them can become the primary one), every multi-valued list
 * and every string within LIMITS.
 */
function attributesProblem(attributes: Json): string | undefined {
  const emailsKey = Object.keys(attributes).find((k) => k.toLowerCase() === 'emails');
  const emails = emailsKey ? attributes[emailsKey] : undefined;
  if (Array.isArray(emails)) {
    for (const e of emails) {
      const value = isObject(e) ? e.value : undefined;
      const problem =
        typeof value === 'string' ? textProblem('emails.value', value, LIMITS.email) : undefined;
      if (problem) return problem;
    }
  }
  const stack: [unknown, string][] = [[attributes, '']];
  while (stack.length > 0) {
    const [value, path] = stack.pop() as [unknown, string];
    if (typeof value === 'string') {
      const problem = textProblem(path, value, LIMITS.attributeText);
      if (problem) return problem;
    } else if (Array.isArray(value)) {
      if (value.length > LIMITS.multiValued) return `'${path}' has more than ${LIMITS.multiValued} values`;
      for (const item of value) stack.push([item, path]);
    } else if (isObject(value)) {
      for (const [key, item] of Object.entries(value)) {
        if (utf8Length(key) > MAX_KEY_BYTES) return `An attribute name is longer than ${MAX_KEY_BYTES} bytes`;
        stack.push([item, path ? `${path}.${key}` : key]);
      }
    }
  }
  return undefined;
}

function userFieldsOf(resource: Json): { fields: UserFields; active: boolean | undefined } {
  const name = isObject(resource.name) ? resource.name : {};
  const attributes: Json = {};
  for (const [key, value] of Object.entries(resource)) {
    if (!NOT_STORED.has(key.toLowerCase()) && value !== undefined) attributes[key] = value;
  }
  return {
    fields: {
      userName: String(resource.userName),
      email: primaryEmail(resource.emails),
      givenName: text(name.givenName),
      familyName: text(name.familyName),
      displayName: text(resource.displayName),
      externalId: text(resource.externalId),
      attributes,
    },
    active: typeof resource.active === 'boolean' ? resource.active : undefined,
  };
}

export interface GroupRef {
  id: string;
  displayName: string;
}

/** The SCIM representation of a user, before scimmy's outbound coercion and attribute selection. */
export function scimUserOf(user: User, groups: GroupRef[], baseUrl: string): Json {
  const attrs: Json = isObject(user.attributes) ? user.attributes : {};
  const name: Json = isObject(attrs.name) ? { ...attrs.name } : {};
  for (const [key, column] of [
    ['givenName', user.givenName],
    ['familyName', user.familyName],
  ] as const) {
    if (column === null) delete name[key];
    else name[key] = column;
  }
  const rest = Object.fromEntries(
    Object.entries(attrs).filter(([k]) => !NOT_STORED.has(k.toLowerCase()) && k !== 'name' && k !== 'emails'),
  );
  const emails = Array.isArray(attrs.emails)
    ? attrs.emails
    : user.email
      ? [{ value: user.email, type: 'work', primary: true }]
      : undefined;
  return {
    ...rest,
    id: user.id,
    externalId: user.externalId ?? undefined,
    userName: user.userName,
    displayName: user.displayName ?? undefined,
    name: Object.keys(name).length > 0 ? name : undefined,
    emails,
    active: user.status === 'active',
    groups: groups.map((g) => ({
      value: g.id,
      display: g.displayName,
      $ref: `${baseUrl}/Groups/${g.id}`,
      type: 'direct',
    })),
    meta: {
      resourceType: 'User',
      created: user.createdAt,
      lastModified: user.updatedAt,
      version: etagOf(user.version),
    },
  };
}

/** Whether a request's attributes/excludedAttributes selection returns `name` (so it is worth loading). */
export function wantsAttribute(selection: { expression: string } | undefined, name: string): boolean {
  if (!selection) return true;
  const terms = selection.expression
    .split(/\s+and\s+/i)
    .map((t) => t.trim().split(/\s+/))
    .map(([path = '', op = '']) => ({ path: path.toLowerCase(), op: op.toLowerCase() }));
  const target = name.toLowerCase();
  const names = (p: string) => p === target || p.startsWith(`${target}.`) || p.startsWith(`${target}[`);
  if (terms.every((t) => t.op === 'np')) return !terms.some((t) => t.path === target);
  return terms.some((t) => names(t.path));
}
