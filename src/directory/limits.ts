import type { UserFields } from './users.service.js';

/**
 * Limits on the strings the directory stores, in one place, matched to the
 * schema in migrations/. Every text column below is a PostgreSQL `text`, so
 * the database itself has no length limit, but a btree entry must fit in a
 * third of a page: ~2,704 bytes, measured in UTF-8 *bytes* after `lower()`
 * (which may grow a string, e.g. "İ" 2 bytes → "i̇" 3 bytes). An over-long
 * value that reached an indexed column ended in a 500 from the index; these
 * limits keep every value far below it and are enforced at the edge (SCIM,
 * admin API), where a too-long value is a 400 and nothing is written.
 *
 * PostgreSQL also refuses U+0000 in `text` and `jsonb`, and `jsonb` refuses a
 * lone UTF-16 surrogate (`\ud800`): such strings cannot be stored as sent, so
 * they are refused rather than failing in the database or being altered.
 */

/** UTF-8 length in bytes: what the btree limit and Postgres storage count. */
export const utf8Length = (value: string): number => Buffer.byteLength(value, 'utf8');

export const LIMITS = {
  /**
   * users.user_name: unique btree on (tenant_id, lower(user_name)). Real
   * userNames are emails or UPNs (Entra ≤ 113 characters); 512 bytes leaves
   * room for non-Latin names and stays < 1/5 of the index limit even after
   * lower() grows it by half.
   */
  userName: 512,
  /**
   * users.email (btree on lower(email)) and every SCIM emails[].value (any of
   * them can become the primary one): RFC 5321 §4.5.3.1.3 limits a path to
   * 256 octets including the angle brackets, so an address is at most 254.
   */
  email: 254,
  /** users.display_name and groups.display_name (btree on lower(display_name); unique for SCIM groups). */
  displayName: 512,
  /** users.given_name / users.family_name (not indexed; same bound as a display name). */
  namePart: 512,
  /**
   * users.external_id and groups.external_id (btree). IdPs send GUIDs (Entra),
   * 20-character ids (Okta) or, at most, an LDAP DN: 1024 bytes covers them.
   */
  externalId: 1024,
  /**
   * Any other string of a SCIM representation (stored in users.attributes,
   * jsonb, not indexed): titles, phone numbers, addresses, photo URLs. 2048
   * bytes is the conventional bound of a URL, the longest of them.
   */
  attributeText: 2048,
  /** Elements of one multi-valued attribute of a user (emails, phoneNumbers, …); not group members. */
  multiValued: 100,
  /**
   * Nesting of a JSON request body. A SCIM PatchOp with an enterprise manager
   * is 6 levels deep; scimmy, zod and PostgreSQL's jsonb parser recurse, and
   * jsonb fails ("stack depth limit exceeded") on deep documents.
   */
  jsonDepth: 32,
} as const;

/** A lone surrogate or NUL: text PostgreSQL cannot store as sent (see above). */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

export const isStorableText = (value: string): boolean =>
  !value.includes('\u0000') && !LONE_SURROGATE.test(value);

/**
 * Names that reach Object.prototype when used as a key path (`__proto__`,
 * `constructor`, `prototype`), in any case: never an attribute or field name
 * a client may choose (docs/security.md §3).
 */
const PROTOTYPE_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

/** Whether a name, taken as a path of segments (split at anything but [A-Za-z0-9_$]), has a prototype key. */
export function hasPrototypeSegment(name: string): boolean {
  return name.split(/[^A-Za-z0-9_$]+/).some((segment) => PROTOTYPE_KEYS.has(segment.toLowerCase()));
}

/** What makes a parsed JSON value unsafe to hand on: the first problem found, if any. */
export type JsonProblem = 'too_deep' | 'unstorable_value' | 'unstorable_key' | 'prototype_key';

/**
 * Every key and string of a parsed JSON value (request bodies of SCIM and the
 * admin API), walked without recursion — a 1 MB body can nest 500,000 deep:
 * no nesting beyond LIMITS.jsonDepth, no string or key PostgreSQL cannot
 * store, no key with a prototype segment (JSON.parse makes `"__proto__"` an
 * own property, so own keys are walked). Each surface words its own error.
 */
export function jsonProblem(root: unknown): JsonProblem | null {
  const stack: [unknown, number][] = [[root, 0]];
  while (stack.length > 0) {
    const [value, depth] = stack.pop() as [unknown, number];
    if (typeof value === 'string') {
      if (!isStorableText(value)) return 'unstorable_value';
      continue;
    }
    if (typeof value !== 'object' || value === null) continue;
    if (depth >= LIMITS.jsonDepth) return 'too_deep';
    if (Array.isArray(value)) {
      for (const item of value) stack.push([item, depth + 1]);
      continue;
    }
    for (const [key, item] of Object.entries(value as Record<string, unknown>)) {
      if (!isStorableText(key)) return 'unstorable_key';
      if (hasPrototypeSegment(key)) return 'prototype_key';
      stack.push([item, depth + 1]);
    }
  }
  return null;
}

/**
 * Why `value` cannot be stored as the attribute `name` (at most `maxBytes`
 * UTF-8 bytes, storable text), or undefined when it can.
 */
export function textProblem(name: string, value: string, maxBytes: number): string | undefined {
  if (!isStorableText(value)) return `'${name}' contains a NUL character or an unpaired surrogate`;
  if (utf8Length(value) > maxBytes) return `'${name}' is longer than ${maxBytes} bytes (UTF-8)`;
  return undefined;
}

/** The columns of a user (src/directory/users.service.ts UserFields), checked against LIMITS. */
export function userColumnsProblem(fields: Omit<UserFields, 'attributes'>): string | undefined {
  const checks: [string, string | null, number][] = [
    ['userName', fields.userName, LIMITS.userName],
    ['emails.value', fields.email, LIMITS.email],
    ['name.givenName', fields.givenName, LIMITS.namePart],
    ['name.familyName', fields.familyName, LIMITS.namePart],
    ['displayName', fields.displayName, LIMITS.displayName],
    ['externalId', fields.externalId, LIMITS.externalId],
  ];
  for (const [name, value, max] of checks) {
    const problem = value === null ? undefined : textProblem(name, value, max);
    if (problem) return problem;
  }
  return undefined;
}

/** The columns of a group (src/directory/groups.service.ts GroupFields), checked against LIMITS. */
export function groupColumnsProblem(fields: {
  displayName: string;
  externalId: string | null;
}): string | undefined {
  return (
    textProblem('displayName', fields.displayName, LIMITS.displayName) ??
    (fields.externalId === null ? undefined : textProblem('externalId', fields.externalId, LIMITS.externalId))
  );
}
