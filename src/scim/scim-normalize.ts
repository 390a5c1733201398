import SCIMMY from 'scimmy';
import { ScimError } from './scim-context.js';
import { CORE_GROUP, CORE_USER, ENTERPRISE_USER } from './scim-schema-paths.js';

/**
 * What real clients send, made into what RFC 7643/7644 say, before scimmy
 * sees it; and the read-only rules scimmy leaves to us. Entra ID sends
 * booleans as "True"/"False" and the enterprise `manager` as a bare id;
 * Entra's group create lists a Microsoft schema URN it sends no data for.
 */

type Attribute = InstanceType<typeof SCIMMY.Types.Attribute>;
type Json = Record<string, unknown>;

export const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

const KNOWN_SCHEMAS: Record<'User' | 'Group', string[]> = {
  User: [CORE_USER, ENTERPRISE_USER],
  Group: [CORE_GROUP],
};

const lower = (s: string) => s.toLowerCase();

function attributesOf(kind: 'User' | 'Group'): readonly unknown[] {
  return kind === 'User'
    ? SCIMMY.Schemas.User.definition.attributes
    : SCIMMY.Schemas.Group.definition.attributes;
}

function findAttribute(attributes: readonly unknown[], name: string): Attribute | undefined {
  return attributes.find(
    (a): a is Attribute => a instanceof SCIMMY.Types.Attribute && lower(a.name) === lower(name),
  );
}

function toBoolean(value: unknown): unknown {
  if (typeof value !== 'string') return value;
  if (lower(value) === 'true') return true;
  if (lower(value) === 'false') return false;
  return value;
}

/** Coerces "True"/"False" strings of boolean attributes, at any depth, following the schema. */
function coerceValue(attribute: Attribute, value: unknown): unknown {
  const type = String(attribute.type);
  if (type === 'boolean') return toBoolean(value);
  if (type !== 'complex') return value;
  const sub = attribute.subAttributes ?? [];
  const coerceOne = (v: unknown) => (isObject(v) ? coerceObject(sub, v) : v);
  return Array.isArray(value) ? value.map(coerceOne) : coerceOne(value);
}

function coerceObject(attributes: readonly unknown[], value: Json): Json {
  const out: Json = {};
  for (const [key, v] of Object.entries(value)) {
    const attribute = findAttribute(attributes, key);
    out[key] = attribute ? coerceValue(attribute, v) : v;
  }
  return out;
}

/** Entra ID sends `manager` as the manager's id; RFC 7643 §4.3 has it complex ({ value }). */
function normalizeEnterprise(value: unknown): unknown {
  if (!isObject(value)) return value;
  const out: Json = {};
  for (const [key, v] of Object.entries(value)) {
    out[key] = lower(key) === 'manager' && typeof v === 'string' ? { value: v } : v;
  }
  return coerceObject(SCIMMY.Schemas.EnterpriseUser.definition.attributes, out);
}

/** The value at an attribute path (filters stripped), coerced as that attribute is typed. */
export function normalizeAtPath(kind: 'User' | 'Group', path: string, value: unknown): unknown {
  const bare = path.replace(/\[[^\]]*\]/g, '');
  const urn = ENTERPRISE_USER.toLowerCase();
  if (kind === 'User' && lower(bare).startsWith(urn)) {
    const rest = bare.slice(urn.length + 1);
    if (!rest) return normalizeEnterprise(value);
    if (lower(rest) === 'manager' && typeof value === 'string') return { value };
    const attribute = resolvePath(SCIMMY.Schemas.EnterpriseUser.definition.attributes, rest.split('.'));
    return attribute ? coerceValue(attribute, value) : value;
  }
  const segments = bare
    .replace(new RegExp(`^${kind === 'User' ? CORE_USER : CORE_GROUP}:`, 'i'), '')
    .split('.');
  const attribute = resolvePath(attributesOf(kind), segments);
  return attribute ? coerceValue(attribute, value) : value;
}

function resolvePath(attributes: readonly unknown[], segments: string[]): Attribute | undefined {
  let attribute: Attribute | undefined;
  for (const segment of segments) {
    attribute = findAttribute(attribute ? (attribute.subAttributes ?? []) : attributes, segment);
    if (!attribute) return undefined;
  }
  return attribute;
}

/** A whole resource body: booleans, Entra's manager, and extension keys as namespaced paths. */
export function normalizeResource(kind: 'User' | 'Group', body: Json): Json {
  const out: Json = {};
  for (const [key, value] of Object.entries(body)) {
    if (lower(key) === lower(ENTERPRISE_USER)) out[key] = normalizeEnterprise(value);
    else if (lower(key).startsWith('urn:')) out[key] = normalizeAtPath(kind, key, value);
    else {
      const attribute = findAttribute(attributesOf(kind), key);
      out[key] = attribute ? coerceValue(attribute, value) : value;
    }
  }
  return out;
}

/**
 * `schemas` must name the resource's core schema (scimmy checks); other URNs
 * must be ones we serve. A URN we do not serve is tolerated only when the body
 * carries no data under it (Entra lists a Microsoft group URN); data under an
 * unknown namespace is refused rather than silently dropped.
 */
export function checkSchemas(kind: 'User' | 'Group', body: Json): Json {
  const known = KNOWN_SCHEMAS[kind].map(lower);
  const isKnown = (urn: string) => known.some((k) => lower(urn) === k || lower(urn).startsWith(`${k}:`));
  for (const key of Object.keys(body)) {
    if (lower(key).startsWith('urn:') && !isKnown(key))
      throw new ScimError(400, 'invalidSyntax', `Unsupported schema extension '${key}'`);
  }
  const schemas = body.schemas;
  if (schemas === undefined) return body;
  if (!Array.isArray(schemas) || !schemas.every((s): s is string => typeof s === 'string'))
    throw new ScimError(400, 'invalidSyntax', "'schemas' must be an array of schema URNs");
  const core = kind === 'User' ? CORE_USER : CORE_GROUP;
  if (!schemas.includes(core))
    throw new ScimError(400, 'invalidSyntax', `The request body must declare the schema ${core}`);
  return { ...body, schemas: schemas.filter((s) => known.includes(lower(s))) };
}

/** Names of the attributes a client cannot set: readOnly in the schema (scimmy: `mutable: false`). */
function readOnlyNames(kind: 'User' | 'Group'): Set<string> {
  const names = attributesOf(kind)
    .filter((a): a is Attribute => a instanceof SCIMMY.Types.Attribute && a.config.mutable === false)
    .map((a) => lower(a.name));
  return new Set(['id', 'meta', ...(kind === 'User' ? ['groups'] : []), ...names]);
}

/**
 * RFC 7644 §3.3 (POST) and §3.5.1 (PUT): attributes whose mutability is
 * readOnly "SHALL be ignored". A client-sent `id`, `meta` or `groups` (or any
 * other readOnly attribute) is dropped and the server's values stay; the
 * request goes on. Memberships change through /Groups.
 */
export function stripReadOnly(kind: 'User' | 'Group', body: Json): Json {
  const readOnly = readOnlyNames(kind);
  return Object.fromEntries(Object.entries(body).filter(([key]) => !readOnly.has(lower(key))));
}

/**
 * RFC 7643 §2.5: `null` is "unassigned", the same as leaving the attribute
 * out (Entra sends `"phoneNumbers": null`, `"addresses": null`, …). Object
 * keys whose value is null and null elements of lists are dropped, at any depth.
 */
export function dropNulls(value: unknown): unknown {
  if (Array.isArray(value)) return value.filter((v) => v !== null).map(dropNulls);
  if (!isObject(value)) return value;
  const out: Json = {};
  for (const [key, v] of Object.entries(value)) if (v !== null) out[key] = dropNulls(v);
  return out;
}

/** A JSON object body, or 400 invalidSyntax. */
export function requireObject(body: unknown, what: string): Json {
  if (!isObject(body)) throw new ScimError(400, 'invalidSyntax', `${what} expects a JSON object body`);
  return body;
}

const stripCoreUrn = (kind: 'User' | 'Group', path: string) =>
  path.replace(new RegExp(`^${kind === 'User' ? CORE_USER : CORE_GROUP}:`, 'i'), '');

/** RFC 7644 §3.5.2: an operation on a readOnly attribute is 400 mutability (ignored only on POST/PUT). */
function checkWritable(kind: 'User' | 'Group', path: string): void {
  const head = lower(stripCoreUrn(kind, path)).split(/[.[]/)[0] ?? '';
  if (head !== 'id' && readOnlyNames(kind).has(head))
    throw new ScimError(400, 'mutability', `Attribute '${head}' is read-only`);
}

/**
 * PatchOp operations as RFC 7644 §3.5.2 means them: read-only targets refused
 * (400 mutability), values coerced by the schema (Entra's "False"), and the
 * enterprise manager made complex. `op` case is left to scimmy, which ignores it.
 */
export function normalizePatch(kind: 'User' | 'Group', message: Json): Json {
  const operations = message.Operations;
  if (!Array.isArray(operations)) return message;
  if (operations.length === 0)
    throw new ScimError(400, 'invalidValue', 'A PatchOp needs at least one operation (RFC 7644 §3.5.2)');
  return {
    ...message,
    Operations: operations.flatMap(withoutNulls).map((op) => normalizeOperation(kind, op)),
  };
}

/**
 * RFC 7643 §2.5 in a PatchOp: `null` is unassigned. `replace` with a null
 * value removes what the path names; `add` of null adds nothing (the
 * operation is dropped); in a value object, a null attribute is removed by
 * `replace` (a `remove` of its path) and skipped by `add`. Null list elements
 * are dropped. An operation left with nothing to do disappears; a PatchOp
 * whose operations all disappeared changes nothing.
 */
function withoutNulls(op: unknown): unknown[] {
  if (!isObject(op)) return [op];
  const name = typeof op.op === 'string' ? lower(op.op) : '';
  if (name !== 'add' && name !== 'replace') return [op];
  const valueKey = Object.keys(op).find((k) => lower(k) === 'value');
  const value = valueKey === undefined ? undefined : op[valueKey];
  const path = typeof op.path === 'string' ? op.path : undefined;
  if (value === null && valueKey !== undefined) {
    if (name === 'add') return [];
    const rest = Object.fromEntries(Object.entries(op).filter(([k]) => k !== valueKey));
    return path === undefined ? [op] : [{ ...rest, op: 'remove' }];
  }
  if (!isObject(value)) return [{ ...op, ...(valueKey ? { [valueKey]: dropNulls(value) } : {}) }];
  // A value object: attribute names (no path) or sub-attributes of a plain attribute path.
  const nulls = Object.keys(value).filter((k) => value[k] === null);
  const kept = dropNulls(value) as Json;
  const canRemove = name === 'replace' && (path === undefined || !/[[\]]/.test(path));
  const removals = canRemove
    ? nulls.map((k) => ({ op: 'remove', path: path === undefined ? k : `${path}.${k}` }))
    : [];
  const emptied = nulls.length > 0 && Object.keys(kept).length === 0;
  return [...(emptied ? [] : [{ ...op, [valueKey as string]: kept }]), ...removals];
}

function normalizeOperation(kind: 'User' | 'Group', op: unknown): unknown {
  if (!isObject(op)) return op;
  // §3.5.2.1, §3.5.2.3: without a path, the value is a set of attributes (scimmy throws a TypeError on null).
  const name = typeof op.op === 'string' ? lower(op.op) : '';
  if (op.path === undefined && (name === 'add' || name === 'replace') && !isObject(op.value))
    throw new ScimError(
      400,
      'invalidValue',
      `'${name}' without a path needs an object of attributes as its value`,
    );
  if (typeof op.path === 'string') {
    checkWritable(kind, op.path);
    let { path, value } = op as { path: string; value: unknown };
    // Entra: `…:manager.value` on a user without a manager; scimmy has no target to descend into.
    const managerValue = `${lower(ENTERPRISE_USER)}:manager.value`;
    if (kind === 'User' && lower(path) === managerValue) {
      path = `${ENTERPRISE_USER}:manager`;
      value = value === undefined ? undefined : { value };
    }
    return { ...op, path, ...(value === undefined ? {} : { value: normalizeAtPath(kind, path, value) }) };
  }
  if (isObject(op.value)) {
    const value: Json = {};
    for (const [key, v] of Object.entries(op.value)) {
      checkWritable(kind, key);
      value[key] =
        lower(key) === lower(ENTERPRISE_USER) ? normalizeEnterprise(v) : normalizeAtPath(kind, key, v);
    }
    return { ...op, value };
  }
  return op;
}
