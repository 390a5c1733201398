import SCIMMY from 'scimmy';
import { isUuid } from '../db/database.js';

/**
 * RFC 7644 §3.4.2.2 filters, parsed by scimmy, translated to one SQL condition
 * so that filtering, counting and paging all run in Postgres (a userName or
 * externalId lookup is an index probe whatever the directory's size). scimmy's
 * Filter is an OR of branches; a branch is an AND of attribute expressions;
 * `emails[type eq "work"].value` and `emails.value` become an EXISTS over the
 * elements of the multi-valued attribute.
 */

type AttrType = 'string' | 'boolean' | 'dateTime' | 'uuid';

/** Something a comparison can be made on. `json` operands are text extracted from jsonb. */
export interface Operand {
  sql: string;
  type: AttrType;
  caseExact: boolean;
  json: boolean;
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

export function invalidFilter(detail: string): InstanceType<typeof SCIMMY.Types.Error> {
  return new SCIMMY.Types.Error(400, 'invalidFilter', detail);
}

type Expr = unknown[];
type Branch = Record<string, unknown>;

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** The SQL condition for a parsed filter; parameters are appended to `sql`. */
export function filterToSql(filter: Iterable<Branch>, resolver: FilterResolver, sql: SqlParams): string {
  let alias = 0;
  const nextAlias = () => `e${alias++}`;

  const branchSql = (branch: Branch, prefix: string[], element: ElementScope | null): string => {
    const parts = Object.entries(branch).map(([key, expr]) =>
      entrySql([...prefix, ...splitKey(key)], expr, element),
    );
    if (parts.length === 0) throw invalidFilter('Empty filter expression');
    return parts.length === 1 ? (parts[0] as string) : `(${parts.join(' AND ')})`;
  };

  const entrySql = (path: string[], expr: unknown, element: ElementScope | null): string => {
    if (isPlainObject(expr)) {
      const elements = element ? null : resolver.elements(path, sql);
      if (elements) {
        const scope: ElementScope = { alias: nextAlias(), path };
        return `EXISTS (SELECT 1 FROM jsonb_array_elements(${elements}) AS ${scope.alias}(v) WHERE ${branchSql(expr, [], scope)})`;
      }
      return branchSql(expr, path, element);
    }
    if (!Array.isArray(expr) || expr.length === 0) throw invalidFilter('Malformed filter expression');
    if (expr.every(Array.isArray))
      return `(${(expr as Expr[]).map((e) => leafSql(path, e, element)).join(' AND ')})`;
    if (expr.some((e) => isPlainObject(e) || Array.isArray(e)))
      throw invalidFilter('Unsupported filter expression');
    return leafSql(path, expr, element);
  };

  const leafSql = (path: string[], expr: Expr, element: ElementScope | null): string => {
    const negate = typeof expr[0] === 'string' && expr[0].toLowerCase() === 'not';
    const [comparator, value] = negate ? expr.slice(1) : expr;
    if (typeof comparator !== 'string') throw invalidFilter('Missing comparison operator');
    const op = comparator.toLowerCase();
    const needsValue = op !== 'pr' && op !== 'np';
    if (needsValue && (negate ? expr.length : expr.length + 1) !== 3)
      throw invalidFilter(`Operator '${op}' needs a comparison value`);
    let condition: string;
    if (element) {
      const sub = resolver.elementType(element.path, path.join('.'));
      condition = compare(
        {
          sql: `(${element.alias}.v->>${sql.add(sub.name)})`,
          type: sub.type,
          caseExact: sub.caseExact,
          json: true,
        },
        op,
        value,
        sql,
      );
    } else {
      const elements = resolver.elements(path, sql);
      if (elements) {
        // `emails eq "x"` and `emails pr`: RFC 7644 §3.4.2.2 compares a multi-valued attribute by its value.
        if (op === 'pr' || op === 'np') {
          const present = `jsonb_array_length(${elements}) > 0`;
          condition = op === 'pr' ? present : `NOT (${present})`;
        } else {
          const scope: ElementScope = { alias: nextAlias(), path };
          const sub = resolver.elementType(path, 'value');
          const inner = compare(
            {
              sql: `(${scope.alias}.v->>${sql.add(sub.name)})`,
              type: sub.type,
              caseExact: sub.caseExact,
              json: true,
            },
            op,
            value,
            sql,
          );
          condition = `EXISTS (SELECT 1 FROM jsonb_array_elements(${elements}) AS ${scope.alias}(v) WHERE ${inner})`;
        }
      } else {
        condition = compare(resolver.operand(path, sql), op, value, sql);
      }
    }
    return negate ? `NOT COALESCE(${condition}, false)` : condition;
  };

  const branches = [...filter];
  if (branches.length === 0) throw invalidFilter('Empty filter');
  const sqlBranches = branches.map((b) => branchSql(b, [], null));
  return sqlBranches.length === 1 ? (sqlBranches[0] as string) : `(${sqlBranches.join(' OR ')})`;
}

interface ElementScope {
  alias: string;
  path: string[];
}

/** `urn:…:User:manager.value` → [urn, manager, value]; `name.givenName` → [name, givenName]. */
function splitKey(key: string): string[] {
  if (key.toLowerCase().startsWith('urn:')) {
    const colon = key.lastIndexOf(':');
    const urn = key.slice(0, colon);
    return [urn, ...key.slice(colon + 1).split('.')];
  }
  return key.split('.');
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
  const left = fold(operand.sql);
  const right = fold(sql.add(String(value)));
  switch (op) {
    case 'eq':
      return `${left} = ${right}`;
    case 'ne':
      return `COALESCE(${left} <> ${right}, true)`;
    case 'co':
      return `strpos(${left}, ${right}) > 0`;
    case 'sw':
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

/** Validates a filter string the way scimmy parses it, with clear 400 invalidFilter errors. */
export function parseFilter(expression: string): InstanceType<typeof SCIMMY.Types.Filter> {
  if (expression.length > 2000) throw invalidFilter('Filter is too long');
  if (/\b(and|or|not)\s*$/i.test(expression.trim())) throw invalidFilter('Filter ends with an operator');
  try {
    return new SCIMMY.Types.Filter(expression);
  } catch (error) {
    if (error instanceof SCIMMY.Types.Error) throw error;
    throw invalidFilter(`Malformed filter: ${expression.slice(0, 200)}`);
  }
}
