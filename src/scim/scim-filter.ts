import { isUuid } from '../db/database.js';
import SCIMMY from 'scimmy';
import {
  invalidFilter,
  parseFilterExpression,
  splitAttrPath,
  type CompValue,
  type FilterNode,
} from './scim-filter-parser.js';

export { invalidFilter, type FilterNode } from './scim-filter-parser.js';

const ScimError = SCIMMY.Types.Error;

/**
 * RFC 7644 §3.4.2.2 filters, parsed by scim-filter-parser.ts, translated to
 * one SQL condition so that filtering, counting and paging all run in Postgres
 * (a userName or externalId lookup is an index probe whatever the directory's
 * size). `emails[type eq "work"]` and `emails.value` become an EXISTS over the
 * elements of the multi-valued attribute; `not` is NOT COALESCE(…, false), so a
 * comparison with an absent attribute counts as false before it is negated.
 */

type AttrType = 'string' | 'boolean' | 'dateTime' | 'uuid';

/** Something a comparison can be made on. `json` operands are text extracted from jsonb. */
export interface Operand {
  sql: string;
  type: AttrType;
  caseExact: boolean;
  json: boolean;
  /**
   * For a case-insensitive column: its stored lowered copy (`u.user_name_key`).
   * Comparisons use it with the value lowered on the constant side, so the
   * column side carries no function call and the condition stays LEAKPROOF,
   * which is what lets the (tenant_id, key) index answer under row-level
   * security (migrations/1766100000000-rls-safe-lookup-keys.ts).
   */
  key?: string;
}

export interface FilterResolver {
  /** A single-valued attribute at a canonical path, or throw invalidFilter. */
  operand(path: string[], sql: SqlParams): Operand;
  /** SQL yielding a jsonb array of elements when `path` is multi-valued, else null. */
  elements(path: string[], sql: SqlParams): string | null;
  /** Types of the sub-attributes of a multi-valued attribute. */
  elementType(path: string[], sub: string): { name: string; type: AttrType; caseExact: boolean };
}

export class SqlParams {
  readonly values: unknown[] = [];
  constructor(offset = 0) {
    this.offset = offset;
  }
  private readonly offset: number;
  add(value: unknown): string {
    this.values.push(value);
    return `$${this.offset + this.values.length}`;
  }
}

type Scope =
  /** Inside `attr[…]` on a multi-valued attribute: paths name sub-attributes of one element. */
  | { kind: 'element'; alias: string; path: string[] }
  /** Inside `attr[…]` on a singular complex attribute: paths are relative to it. */
  | { kind: 'prefix'; path: string[] };

/** The SQL condition for a parsed filter (scim-filter-parser.ts); parameters are appended to `sql`. */
export function filterToSql(filter: FilterNode, resolver: FilterResolver, sql: SqlParams): string {
  let alias = 0;
  const nextAlias = () => `e${alias++}`;

  const nodeSql = (node: FilterNode, scope: Scope | null): string => {
    switch (node.kind) {
      case 'and':
        return `(${nodeSql(node.left, scope)} AND ${nodeSql(node.right, scope)})`;
      case 'or':
        return `(${nodeSql(node.left, scope)} OR ${nodeSql(node.right, scope)})`;
      case 'not':
        return `NOT COALESCE(${nodeSql(node.filter, scope)}, false)`;
      case 'present':
        return leafSql(node.path, 'pr', null, scope);
      case 'compare':
        return leafSql(node.path, node.op, node.value, scope);
      case 'valuePath': {
        const path = scope?.kind === 'prefix' ? [...scope.path, ...node.path] : node.path;
        if (scope?.kind === 'element')
          throw invalidFilter('A value filter cannot contain another value filter');
        const elements = resolver.elements(path, sql);
        if (!elements) return nodeSql(node.filter, { kind: 'prefix', path });
        const inner: Scope = { kind: 'element', alias: nextAlias(), path };
        return `EXISTS (SELECT 1 FROM jsonb_array_elements(${elements}) AS ${inner.alias}(v) WHERE ${nodeSql(node.filter, inner)})`;
      }
    }
  };

  const elementOperand = (scope: { alias: string; path: string[] }, sub: string): Operand => {
    const type = resolver.elementType(scope.path, sub);
    return {
      sql: `(${scope.alias}.v->>${sql.add(type.name)})`,
      type: type.type,
      caseExact: type.caseExact,
      json: true,
    };
  };

  const leafSql = (relative: string[], op: string, value: CompValue, scope: Scope | null): string => {
    if (scope?.kind === 'element') return compare(elementOperand(scope, relative.join('.')), op, value, sql);
    const path = scope?.kind === 'prefix' ? [...scope.path, ...relative] : relative;
    // `emails.value co "@x"`: the first multi-valued prefix ranges over its elements.
    const first = path[0]?.toLowerCase().startsWith('urn:') ? 2 : 1;
    for (let length = first; length <= path.length; length++) {
      const elements = resolver.elements(path.slice(0, length), sql);
      if (!elements) continue;
      if (length === path.length && (op === 'pr' || op === 'np')) {
        // RFC 7644 §3.4.2.2: `emails pr` is true when the attribute has a value.
        const present = `jsonb_array_length(${elements}) > 0`;
        return op === 'pr' ? present : `NOT (${present})`;
      }
      // `emails eq "x"` compares a multi-valued attribute by its `value` (§3.4.2.2).
      const sub = length === path.length ? 'value' : path.slice(length).join('.');
      const element = { alias: nextAlias(), path: path.slice(0, length) };
      const inner = compare(elementOperand(element, sub), op, value, sql);
      return `EXISTS (SELECT 1 FROM jsonb_array_elements(${elements}) AS ${element.alias}(v) WHERE ${inner})`;
    }
    return compare(resolver.operand(path, sql), op, value, sql);
  };

  return nodeSql(filter, null);
}

function compare(operand: Operand, op: string, value: unknown, sql: SqlParams): string {
  const present =
    operand.type === 'string'
      ? `(${operand.sql} IS NOT NULL AND ${operand.sql} <> '')`
      : `(${operand.sql} IS NOT NULL)`;
  if (op === 'pr') return present;
  if (op === 'np') return `NOT ${present}`;
  if (value === null) {
    if (op === 'eq') return `NOT ${present}`;
    if (op === 'ne') return present;
    throw invalidFilter(`Operator '${op}' cannot compare with null`);
  }
  switch (operand.type) {
    case 'boolean':
      return compareBoolean(operand, op, value, sql);
    case 'dateTime':
      return compareDate(operand, op, value, sql);
    case 'uuid':
      if (op === 'eq' || op === 'ne') {
        const text = typeof value === 'string' ? value : JSON.stringify(value);
        if (!isUuid(text)) return op === 'eq' ? 'false' : 'true';
        return op === 'eq'
          ? `${operand.sql} = ${sql.add(text)}::uuid`
          : `${operand.sql} <> ${sql.add(text)}::uuid`;
      }
      return compareText({ ...operand, sql: `${operand.sql}::text`, type: 'string' }, op, value, sql);
    default:
      return compareText(operand, op, value, sql);
  }
}

function compareText(operand: Operand, op: string, value: unknown, sql: SqlParams): string {
  if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean')
    throw invalidFilter('Unsupported comparison value');
  const fold = (s: string) => (operand.caseExact ? s : `lower(${s})`);
  const left = !operand.caseExact && operand.key ? operand.key : fold(operand.sql);
  const right = fold(sql.add(String(value)));
  switch (op) {
    case 'eq':
      return `${left} = ${right}`;
    case 'ne':
      return `COALESCE(${left} <> ${right}, true)`;
    case 'co':
      return `strpos(${left}, ${right}) > 0`;
    case 'sw':
      // starts_with is leakproof, and on a COLLATE "C" key the planner turns it into an index range.
      return `starts_with(${left}, ${right})`;
    case 'ew':
      return `right(${left}, length(${right})) = ${right}`;
    case 'gt':
      return `${left} > ${right} COLLATE "C"`;
    case 'ge':
      return `${left} >= ${right} COLLATE "C"`;
    case 'lt':
      return `${left} < ${right} COLLATE "C"`;
    case 'le':
      return `${left} <= ${right} COLLATE "C"`;
    default:
      throw invalidFilter(`Unknown operator '${op}'`);
  }
}

function compareBoolean(operand: Operand, op: string, value: unknown, sql: SqlParams): string {
  // Entra ID sends "True"/"False".
  const parsed =
    typeof value === 'boolean'
      ? value
      : typeof value === 'string'
        ? { true: true, false: false }[value.toLowerCase()]
        : undefined;
  if (parsed === undefined) throw invalidFilter('A boolean attribute compares with true or false');
  if (op !== 'eq' && op !== 'ne') throw invalidFilter(`Operator '${op}' does not apply to a boolean`);
  const wanted = op === 'eq' ? parsed : !parsed;
  if (operand.json) return `COALESCE(lower(${operand.sql}), 'false') = ${sql.add(String(wanted))}`;
  return `${operand.sql} = ${sql.add(wanted)}`;
}

const COMPARATORS: Record<string, string> = { eq: '=', ne: '<>', gt: '>', ge: '>=', lt: '<', le: '<=' };

function compareDate(operand: Operand, op: string, value: unknown, sql: SqlParams): string {
  const symbol = COMPARATORS[op];
  if (!symbol) throw invalidFilter(`Operator '${op}' does not apply to a dateTime`);
  if (typeof value !== 'string' || Number.isNaN(Date.parse(value)))
    throw invalidFilter('A dateTime attribute compares with an RFC 3339 date-time string');
  const left = operand.json ? `(${operand.sql})::timestamptz` : operand.sql;
  return `${left} ${symbol} ${sql.add(new Date(value).toISOString())}::timestamptz`;
}

/** A filter string as a tree (scim-filter-parser.ts), or 400 invalidFilter. */
export function parseFilter(expression: string): FilterNode {
  return parseFilterExpression(expression);
}

export type SortOrder = 'ascending' | 'descending';

/** Multi-valued attributes read from other tables: they have no primary or stable first value to sort by. */
const UNSORTABLE = new Set(['groups', 'members']);

const refuseSort = (detail: string) => new ScimError(400, 'invalidValue', detail);

/**
 * The names the resolver adds while mapping a sort path come from scimmy's
 * schema definitions, never from the client: written into the ORDER BY as
 * literals, so the page query's parameters stay exactly those of its filter
 * (a count without the ORDER BY would otherwise leave parameters untyped).
 */
class SchemaLiterals extends SqlParams {
  override add(value: unknown): string {
    const quote = (v: unknown) => {
      if (typeof v !== 'string' || !/^[\w:.$-]*$/.test(v)) throw new Error('not a schema name');
      return `'${v}'`;
    };
    return Array.isArray(value) ? `ARRAY[${value.map(quote).join(', ')}]::text[]` : `${quote(value)}::text`;
  }
}

/**
 * RFC 7644 §3.4.2.3: the ORDER BY list for `sortBy`/`sortOrder`, with the
 * resource id as the last key so that equal values keep one stable order and
 * a descending page is exactly the ascending order reversed. Strings compare
 * by Unicode code point (COLLATE "C": "no specific locale implied"), folded to
 * lower case unless the attribute is caseExact; a resource with no value (null
 * or "") sorts last ascending and first descending. A multi-valued attribute
 * sorts by its primary element, else its first (`emails` means `emails.value`).
 * What cannot be mapped (unknown, complex, group membership) is 400 invalidValue.
 */
export function sortToSql(sortBy: string, sortOrder: SortOrder, resolver: FilterResolver): string {
  const sql = new SchemaLiterals();
  const direction = sortOrder === 'descending' ? 'DESC NULLS FIRST' : 'ASC NULLS LAST';
  const id = resolver.operand(['id'], sql).sql;
  return `${sortKey(sortBy.trim(), resolver, sql)} ${direction}, ${id} ${sortOrder === 'descending' ? 'DESC' : 'ASC'}`;
}

function sortKey(sortBy: string, resolver: FilterResolver, sql: SqlParams): string {
  let path: string[];
  try {
    path = splitAttrPath(sortBy);
  } catch {
    throw refuseSort(`'sortBy' must be an attribute path, not '${sortBy.slice(0, 100)}'`);
  }
  const first = path[0]?.toLowerCase().startsWith('urn:') ? 2 : 1;
  try {
    for (let length = first; length <= path.length; length++) {
      const prefix = path.slice(0, length);
      const elements = resolver.elements(prefix, sql);
      if (!elements) continue;
      if (UNSORTABLE.has(prefix[prefix.length - 1]?.toLowerCase() ?? ''))
        throw refuseSort(`Cannot sort by '${sortBy}': group membership has no order of its own`);
      const sub = length === path.length ? 'value' : path.slice(length).join('.');
      const type = resolver.elementType(prefix, sub);
      const value = `s.v->>${sql.add(type.name)}`;
      // The primary element, else the first (RFC 7643 §2.4), then its sub-attribute.
      const chosen = `(SELECT ${value} FROM jsonb_array_elements(${elements}) WITH ORDINALITY AS s(v, n)
        ORDER BY (lower(s.v->>'primary') = 'true') DESC NULLS LAST, s.n LIMIT 1)`;
      return scalarKey({ sql: chosen, type: type.type, caseExact: type.caseExact, json: true });
    }
    return scalarKey(resolver.operand(path, sql));
  } catch (error) {
    // The resolver speaks filter errors (invalidFilter); for sortBy the value is what is wrong.
    if (error instanceof ScimError && error.scimType === 'invalidFilter')
      throw refuseSort(`Cannot sort by '${sortBy.slice(0, 100)}': ${error.message}`);
    throw error;
  }
}

function scalarKey(operand: Operand): string {
  switch (operand.type) {
    case 'uuid':
      return operand.sql;
    case 'boolean':
      // false before true; stored jsonb text other than true/false counts as no value.
      return operand.json
        ? `(CASE lower(${operand.sql}) WHEN 'true' THEN true WHEN 'false' THEN false END)`
        : operand.sql;
    case 'dateTime':
      // Columns are timestamptz; a date-time inside jsonb sorts as its RFC 3339 text.
      return operand.json ? `(NULLIF(${operand.sql}, '') COLLATE "C")` : operand.sql;
    default: {
      // Mapped text columns hold null, never "" (scim-user-mapping.ts), and stay index-friendly.
      const text = operand.json ? `NULLIF(${operand.sql}, '')` : operand.sql;
      // A stored key is already lower(…) in "C": the index on it gives the order.
      if (!operand.caseExact && operand.key) return `(${operand.key} COLLATE "C")`;
      return `(${operand.caseExact ? text : `lower(${text})`} COLLATE "C")`;
    }
  }
}
