import SCIMMY from 'scimmy';
import { isStorableText } from '../directory/limits.js';

/**
 * What does a SCIM filter string say? RFC 7644 §3.4.2.2's grammar, read by
 * our own tokenizer and recursive-descent parser into a tree that
 * scim-filter.ts turns into SQL. scimmy's lexer ends a string at the first
 * `"` whatever precedes it and keeps `\\` as two characters, so a name with a
 * quote or a backslash could be stored but never looked up (issue 10); here a
 * compValue is a JSON string (RFC 7159 §7 escapes, `\u00e9` included).
 *
 *   FILTER    = attrExp / logExp / valuePath / *1"not" "(" FILTER ")"
 *   valuePath = attrPath "[" valFilter "]"
 *   attrExp   = (attrPath SP "pr") / (attrPath SP compareOp SP compValue)
 *   attrPath  = [URI ":"] ATTRNAME *1subAttr
 *
 * Precedence: `not`, then `and`, then `or` (§3.4.2.2, table 3); attribute
 * names, operators and keywords are case-insensitive (§3.4.2.2). Lenient where
 * clients are: `not` may precede a bare attrExp (scimmy and Okta accept it),
 * an unquoted word is a string value (`externalId eq ext-1`, as scimmy read it),
 * and `emails[type eq "work"].value eq "x"` (a value path followed by a
 * sub-attribute comparison, as in PATCH paths) reads as
 * `emails[type eq "work" and value eq "x"]`.
 */

export type CompValue = string | number | boolean | null;
export type CompareOp = 'eq' | 'ne' | 'co' | 'sw' | 'ew' | 'gt' | 'ge' | 'lt' | 'le';

export type FilterNode =
  | { kind: 'and' | 'or'; left: FilterNode; right: FilterNode }
  | { kind: 'not'; filter: FilterNode }
  | { kind: 'present'; path: string[] }
  | { kind: 'compare'; path: string[]; op: CompareOp; value: CompValue }
  | { kind: 'valuePath'; path: string[]; filter: FilterNode };

export type FilterToken =
  | { kind: '(' | ')' | '[' | ']' }
  | { kind: 'word'; text: string }
  | { kind: 'subAttr'; text: string }
  | { kind: 'string'; value: string }
  | { kind: 'number'; value: number };

export function invalidFilter(detail: string): InstanceType<typeof SCIMMY.Types.Error> {
  return new SCIMMY.Types.Error(400, 'invalidFilter', detail);
}

/** Longer filters are refused (real ones are < 200 characters). */
export const MAX_FILTER_LENGTH = 2000;
/** Parentheses, `not` and value paths nested deeper than this are refused. */
const MAX_DEPTH = 32;

const COMPARE_OPS = new Set<string>(['eq', 'ne', 'co', 'sw', 'ew', 'gt', 'ge', 'lt', 'le']);
const WORD = /^[A-Za-z$_][\w$\-.:]*/;
const SUB_ATTR = /^\.[A-Za-z$_][\w$-]*/;
const NUMBER = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][-+]?\d+)?(?![\w.])/;
const STRING = /^"(?:[^"\\]|\\[\s\S])*"/;
/** ATTRNAME (RFC 7643 §2.1) plus `$ref`, which the core schemas use. */
const ATTRNAME = /^[A-Za-z$_][\w$-]*$/;

const ESCAPES: Record<string, string> = {
  '"': '"',
  '\\': '\\',
  '/': '/',
  b: '\b',
  f: '\f',
  n: '\n',
  r: '\r',
  t: '\t',
};

/** The text of a quoted compValue, JSON escapes decoded (RFC 7159 §7). */
function decodeString(quoted: string): string {
  const body = quoted.slice(1, -1);
  let out = '';
  for (let i = 0; i < body.length; i++) {
    const ch = body[i] as string;
    if (ch !== '\\') {
      out += ch;
      continue;
    }
    const next = body[i + 1] ?? '';
    if (next === 'u') {
      const hex = body.slice(i + 2, i + 6);
      if (!/^[0-9a-fA-F]{4}$/.test(hex)) throw invalidFilter('Malformed \\u escape in a filter string');
      out += String.fromCharCode(parseInt(hex, 16));
      i += 5;
    } else {
      const decoded = ESCAPES[next];
      if (decoded === undefined) throw invalidFilter(`Unknown escape '\\${next}' in a filter string`);
      out += decoded;
      i += 1;
    }
  }
  // A value Postgres text cannot hold (NUL, a lone surrogate) matches nothing stored: refuse it.
  if (!isStorableText(out))
    throw invalidFilter('A filter string contains a NUL character or an unpaired surrogate');
  return out;
}

/** The tokens of a filter; words are kept as written (keywords are recognised by the parser). */
export function tokenizeFilter(expression: string): FilterToken[] {
  if (expression.length > MAX_FILTER_LENGTH) throw invalidFilter('Filter is too long');
  const tokens: FilterToken[] = [];
  let rest = expression;
  while (rest.length > 0) {
    const space = /^\s+/.exec(rest);
    if (space) {
      rest = rest.slice(space[0].length);
      continue;
    }
    const ch = rest[0] as '(' | ')' | '[' | ']';
    if ('()[]'.includes(ch)) {
      tokens.push({ kind: ch });
      rest = rest.slice(1);
      const sub = ch === ']' ? SUB_ATTR.exec(rest) : null;
      if (sub) {
        tokens.push({ kind: 'subAttr', text: sub[0].slice(1) });
        rest = rest.slice(sub[0].length);
      }
      continue;
    }
    let m: RegExpExecArray | null;
    if ((m = STRING.exec(rest))) tokens.push({ kind: 'string', value: decodeString(m[0]) });
    else if ((m = NUMBER.exec(rest))) tokens.push({ kind: 'number', value: Number(m[0]) });
    else if ((m = WORD.exec(rest))) tokens.push({ kind: 'word', text: m[0] });
    else throw invalidFilter(`Malformed filter near '${rest.slice(0, 20)}'`);
    rest = rest.slice(m[0].length);
  }
  return tokens;
}

/**
 * An attrPath as segments: `name.givenName` → [name, givenName];
 * `urn:…:enterprise:2.0:User:manager.value` → [urn…:User, manager, value].
 */
export function splitAttrPath(text: string): string[] {
  let urn: string | undefined;
  let rest = text;
  if (text.toLowerCase().startsWith('urn:')) {
    const colon = text.lastIndexOf(':');
    urn = text.slice(0, colon);
    rest = text.slice(colon + 1);
  }
  const names = rest.split('.');
  if (names.some((n) => !ATTRNAME.test(n))) throw invalidFilter(`Malformed attribute path '${text}'`);
  return urn === undefined ? names : [urn, ...names];
}

const keyword = (token: FilterToken | undefined, word: string): boolean =>
  token?.kind === 'word' && token.text.toLowerCase() === word;

class Parser {
  private position = 0;
  constructor(private readonly tokens: FilterToken[]) {}

  parse(): FilterNode {
    if (this.tokens.length === 0) throw invalidFilter('Empty filter');
    const node = this.or(0, false);
    const extra = this.tokens[this.position];
    if (extra) throw invalidFilter(`Unexpected ${describe(extra)} in filter`);
    return node;
  }

  private peek(): FilterToken | undefined {
    return this.tokens[this.position];
  }

  private next(): FilterToken {
    const token = this.tokens[this.position++];
    if (!token) throw invalidFilter('Filter ends too early');
    return token;
  }

  private or(depth: number, inValue: boolean): FilterNode {
    let left = this.and(depth, inValue);
    while (keyword(this.peek(), 'or')) {
      this.position++;
      left = { kind: 'or', left, right: this.and(depth, inValue) };
    }
    return left;
  }

  private and(depth: number, inValue: boolean): FilterNode {
    let left = this.unary(depth, inValue);
    while (keyword(this.peek(), 'and')) {
      this.position++;
      left = { kind: 'and', left, right: this.unary(depth, inValue) };
    }
    return left;
  }

  private unary(depth: number, inValue: boolean): FilterNode {
    if (depth > MAX_DEPTH) throw invalidFilter('Filter is nested too deeply');
    const token = this.peek();
    // `not` is an attribute name only when a comparison operator follows it.
    if (keyword(token, 'not') && !this.isOperator(this.tokens[this.position + 1])) {
      this.position++;
      return { kind: 'not', filter: this.unary(depth + 1, inValue) };
    }
    if (token?.kind === '(') {
      this.position++;
      const inner = this.or(depth + 1, inValue);
      if (this.next().kind !== ')') throw invalidFilter("Missing ')' in filter");
      return inner;
    }
    return this.attrExp(depth, inValue);
  }

  private isOperator(token: FilterToken | undefined): boolean {
    return token?.kind === 'word' && (COMPARE_OPS.has(token.text.toLowerCase()) || keyword(token, 'pr'));
  }

  private attrExp(depth: number, inValue: boolean): FilterNode {
    const token = this.next();
    if (token.kind !== 'word') throw invalidFilter(`Expected an attribute name, found ${describe(token)}`);
    const path = splitAttrPath(token.text);
    if (this.peek()?.kind === '[') {
      if (inValue) throw invalidFilter('A value filter cannot contain another value filter');
      this.position++;
      let filter = this.or(depth + 1, true);
      if (this.next().kind !== ']') throw invalidFilter("Missing ']' in filter");
      const sub = this.peek();
      if (sub?.kind === 'subAttr') {
        this.position++;
        filter = { kind: 'and', left: filter, right: this.comparison([sub.text]) };
      }
      return { kind: 'valuePath', path, filter };
    }
    return this.comparison(path);
  }

  private comparison(path: string[]): FilterNode {
    const opToken = this.next();
    const op = opToken.kind === 'word' ? opToken.text.toLowerCase() : '';
    if (op === 'pr') return { kind: 'present', path };
    if (!COMPARE_OPS.has(op))
      throw invalidFilter(
        `Expected a comparison operator after '${path.join('.')}', found ${describe(opToken)}`,
      );
    return { kind: 'compare', path, op: op as CompareOp, value: this.compValue(op) };
  }

  private compValue(op: string): CompValue {
    const token = this.next();
    if (token.kind === 'string' || token.kind === 'number') return token.value;
    if (token.kind === 'word') {
      const word = token.text.toLowerCase();
      if (word === 'true') return true;
      if (word === 'false') return false;
      if (word === 'null') return null;
      // Not RFC 7644 (strings are quoted), but scimmy read `externalId eq ext-1` so: kept for clients.
      return token.text;
    }
    throw invalidFilter(`Operator '${op}' needs a value (a JSON string, number, true, false or null)`);
  }
}

function describe(token: FilterToken): string {
  switch (token.kind) {
    case 'word':
    case 'subAttr':
      return `'${token.text.slice(0, 40)}'`;
    case 'string':
      return 'a string';
    case 'number':
      return 'a number';
    default:
      return `'${token.kind}'`;
  }
}

/** A filter string as a tree, or 400 invalidFilter (RFC 7644 §3.4.2.2, §3.12). */
export function parseFilterExpression(expression: string): FilterNode {
  return new Parser(tokenizeFilter(expression)).parse();
}

/** Every attribute path the filter names (value-path sub-attributes relative to their attribute). */
export function filterPaths(node: FilterNode): string[][] {
  switch (node.kind) {
    case 'and':
    case 'or':
      return [...filterPaths(node.left), ...filterPaths(node.right)];
    case 'not':
      return filterPaths(node.filter);
    case 'valuePath':
      return [node.path, ...filterPaths(node.filter)];
    default:
      return [node.path];
  }
}
