import type { Request, RequestHandler } from 'express';
import {
  hasPrototypeSegment,
  isStorableText,
  jsonProblem,
  LIMITS,
  type JsonProblem,
} from '../directory/limits.js';
import { ScimError } from './scim-context.js';
import { tokenizeFilter } from './scim-filter-parser.js';

/**
 * No client string becomes an object key path (issue 8, defect 2). scimmy
 * builds objects from attribute names a client chooses: a filter
 * `__proto__.polluted eq "x"` made it write `Object.prototype.polluted`, and
 * `constructor.prototype.x` reaches it through `{}.constructor`. Every place
 * a client names an attribute (filter, attributes, excludedAttributes,
 * sortBy, PATCH path, PATCH value keys, body keys at any depth) is checked
 * here, before scimmy-routers or scimmy parse anything; a name with a
 * forbidden segment is refused with an RFC 7644 §3.12 error.
 *
 * scimmy resolves attribute names case-insensitively (and lower-cases the
 * first letter of each filter segment), so the comparison ignores case, and a
 * segment is anything between separators: `.`, `:` (URN-prefixed paths such
 * as `urn:…:User:__proto__`), `[`, `]`, `/`, `-`.
 */

const hasForbiddenSegment = hasPrototypeSegment;

/** The longest filter or path we read: scimmy's parser is not linear, and real ones are < 200. */
const MAX_EXPRESSION = 2000;

/**
 * scimmy's own filter lexicon (scimmy/dist/lib/types.js `lexicon`, v1.3.5),
 * for what scimmy still parses (PATCH paths, `attributes`), so that what we
 * take for a quoted value is exactly what scimmy takes for one (its strings end at the first `"`, escapes or not), and every word it
 * could read as an attribute name is one we check. Groups `( … )` and value
 * filters `[ … ]` are scanned again inside, as scimmy parses them again.
 */
const LEXICON = new RegExp(
  `^(?:${[
    /(\s+)/,
    /([-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)(?![\w+-])/,
    /(false|true)+/,
    /(null)+/,
    /("(?:[^"]|\\.|\n)*")/,
    /(\((?:.*?)\))/,
    /(\[(?:.*?)][.]?)/,
    /(and|or|not)(?=[^a-zA-Z0-9]|$)/,
    /(eq|ne|co|sw|ew|gt|lt|ge|le|pr|np)(?=[^a-zA-Z0-9]|$)/,
    /([-$\w][-$\w._:/%]*)/,
  ]
    .map((r) => r.source)
    .join('|')})`,
  'i',
);

type Refusal = 'invalidFilter' | 'invalidPath';

/**
 * Scans an expression as scimmy tokenises it and refuses a forbidden segment
 * in any word outside a quoted value, or anything scimmy could not tokenise
 * (it would refuse it too, possibly after building part of the filter).
 */
function scanExpression(expression: string, scimType: Refusal, what: string): void {
  let rest = expression;
  while (rest.length > 0) {
    const m = LEXICON.exec(rest);
    if (!m?.[0]) throw new ScimError(400, scimType, `Malformed ${what}`);
    const group = m[6];
    const valueFilter = m[7];
    const word = m[10];
    if (group !== undefined) scanExpression(group.slice(1, -1), scimType, what);
    if (valueFilter !== undefined) scanExpression(valueFilter.replace(/\]\.?$/, '').slice(1), scimType, what);
    if (word !== undefined && hasForbiddenSegment(word))
      throw new ScimError(400, scimType, `The ${what} names a forbidden attribute`);
    rest = rest.slice(m[0].length);
  }
}

function checkText(value: string, scimType: Refusal, what: string): void {
  if (value.length > MAX_EXPRESSION) throw new ScimError(400, scimType, `The ${what} is too long`);
  if (!isStorableText(value))
    throw new ScimError(400, scimType, `The ${what} contains a NUL character or an unpaired surrogate`);
}

/**
 * A `filter` (query or /.search body): 400 invalidFilter when it names a
 * prototype key. Filters are read by our own parser (scim-filter-parser.ts),
 * never by scimmy, so its tokenizer says what is a quoted value and what is a
 * word (an attribute path or a keyword): every word is checked.
 */
export function checkFilter(filter: string): void {
  checkText(filter, 'invalidFilter', 'filter');
  for (const token of tokenizeFilter(filter)) {
    if ((token.kind === 'word' || token.kind === 'subAttr') && hasForbiddenSegment(token.text))
      throw new ScimError(400, 'invalidFilter', 'The filter names a forbidden attribute');
  }
}

/** A PATCH `path`, `sortBy` or one entry of `attributes`: 400 invalidPath when it names a prototype key. */
export function checkAttributePath(path: string, what = 'path'): void {
  checkText(path, 'invalidPath', what);
  scanExpression(path, 'invalidPath', what);
}

/**
 * `emails[type eq "work"]` in `attributes` (Microsoft's SCIM validator sends
 * it): RFC 7644 §3.4.2.5 lists attribute names only, so the value filter is
 * dropped (`dropFilters`) and the attribute returned whole. Commas inside
 * `[…]` or a quoted string do not separate entries.
 */
export function attributeEntries(value: string, dropFilters: boolean): string[] {
  const entries: string[] = [];
  let current = '';
  let depth = 0;
  let quoted = false;
  for (let i = 0; i < value.length; i++) {
    const ch = value[i] as string;
    if (quoted) {
      if (!dropFilters) current += ch + (ch === '\\' ? (value[i + 1] ?? '') : '');
      if (ch === '\\') i++;
      else if (ch === '"') quoted = false;
      continue;
    }
    if (ch === ',' && depth === 0) {
      entries.push(current);
      current = '';
      continue;
    }
    if (ch === '"' && depth > 0) quoted = true;
    else if (ch === '[') depth++;
    else if (ch === ']' && depth > 0) depth--;
    else if (depth === 0) {
      current += ch;
      continue;
    }
    if (!dropFilters) current += ch;
  }
  entries.push(current);
  return entries.map((e) => e.trim());
}

/** `attributes` / `excludedAttributes`: a comma-separated string (query) or a list (/.search body). */
function checkAttributeList(value: unknown, what: string): void {
  const list = Array.isArray(value) ? value : typeof value === 'string' ? attributeEntries(value, false) : [];
  for (const entry of list) if (typeof entry === 'string') checkAttributePath(entry.trim(), what);
}

/** The list parameters of a query or /.search body that name attributes. */
function checkListParams(params: Record<string, unknown>): void {
  for (const [key, value] of Object.entries(params)) {
    const name = key.toLowerCase();
    // Express' query parser returns an array for a repeated parameter; check each.
    for (const v of Array.isArray(value) && name === 'filter' ? value : [value]) {
      if (name === 'filter' && typeof v === 'string') checkFilter(v);
    }
    if (name === 'attributes' || name === 'excludedattributes') checkAttributeList(value, key);
    if (name === 'sortby') {
      for (const v of Array.isArray(value) ? value : [value])
        if (typeof v === 'string') checkAttributePath(v, 'sortBy');
    }
  }
}

/**
 * A PatchOp body (RFC 7644 §3.5.2): each `path`, and when an operation has
 * no path, the keys of its `value` object (each is an attribute path, §3.5.2.1).
 */
function checkPatchOperations(body: Record<string, unknown>): void {
  const operations = Object.entries(body).find(([k]) => k.toLowerCase() === 'operations')?.[1];
  if (!Array.isArray(operations)) return;
  for (const op of operations) {
    if (typeof op !== 'object' || op === null || Array.isArray(op)) continue;
    const record = op as Record<string, unknown>;
    const path = Object.entries(record).find(([k]) => k.toLowerCase() === 'path')?.[1];
    if (typeof path === 'string') checkAttributePath(path);
    const value = Object.entries(record).find(([k]) => k.toLowerCase() === 'value')?.[1];
    if (path === undefined && typeof value === 'object' && value !== null && !Array.isArray(value)) {
      for (const key of Object.keys(value)) checkAttributePath(key, 'attribute name');
    }
  }
}

const BODY_REFUSALS: Record<JsonProblem, ['invalidSyntax' | 'invalidValue', string]> = {
  too_deep: ['invalidSyntax', `The request body is nested deeper than ${LIMITS.jsonDepth}`],
  unstorable_value: ['invalidValue', 'A value contains a NUL character or an unpaired surrogate'],
  unstorable_key: ['invalidSyntax', 'A key contains a NUL character or an unpaired surrogate'],
  prototype_key: ['invalidSyntax', 'The request body has a forbidden attribute name'],
};

/** Every key and string of a JSON body (directory/limits.ts jsonProblem), as an RFC 7644 §3.12 error. */
export function checkJsonBody(body: unknown): void {
  const problem = jsonProblem(body);
  if (problem) throw new ScimError(400, ...BODY_REFUSALS[problem]);
}

const isPatch = (req: Request) => req.method === 'PATCH';
const isSearch = (req: Request) => req.method === 'POST' && /\/\.search\/?$/.test(req.path);

/**
 * The SCIM input guard, mounted before query validation and scimmy-routers:
 * query parameters that name attributes, then the body (PatchOp paths and
 * value keys first, for the precise scimType; then every key and string).
 */
export const scimKeyGuard: RequestHandler = (req, _res, next) => {
  checkListParams(req.query);
  for (const value of Object.values(req.query as Record<string, unknown>)) {
    for (const v of Array.isArray(value) ? (value as unknown[]) : [value]) {
      if (typeof v === 'string' && !isStorableText(v))
        throw new ScimError(
          400,
          'invalidValue',
          'A query parameter contains a NUL character or an unpaired surrogate',
        );
    }
  }
  const body: unknown = req.body;
  if (typeof body === 'object' && body !== null && !Array.isArray(body)) {
    const record = body as Record<string, unknown>;
    if (isSearch(req)) checkListParams(record);
    if (isPatch(req)) checkPatchOperations(record);
  }
  checkJsonBody(body);
  next();
};
