import type { RequestHandler } from 'express';
import { hasPrototypeSegment, jsonProblem, LIMITS, type JsonProblem } from '../directory/limits.js';
import { BadRequestError } from '../errors.js';

/**
 * Admin API bodies and queries before any schema sees them (issue 8): zod
 * strict objects refuse unknown keys, but some values are objects whose keys
 * a client chooses (attribute_mapping), so a prototype key (`__proto__`,
 * `constructor`, `prototype`, any case) is refused here at any depth, as is
 * nesting beyond LIMITS.jsonDepth (walked without recursion: a 1 MB body can
 * nest 500,000 deep) and text PostgreSQL cannot store (NUL, a lone surrogate),
 * which would otherwise end in a 500 from the database.
 */

const MESSAGES: Record<JsonProblem, string> = {
  too_deep: `nested deeper than ${LIMITS.jsonDepth}`,
  unstorable_value: 'a value contains a NUL character or an unpaired surrogate',
  unstorable_key: 'a field name contains a NUL character or an unpaired surrogate',
  prototype_key: 'a field name is a forbidden name (__proto__, constructor, prototype)',
};

/** A prototype key, in any case: never a field or attribute name. */
export const isPrototypeKey = (name: string): boolean => hasPrototypeSegment(name.trim());

function checkValue(value: unknown, where: string): void {
  const problem = jsonProblem(value);
  if (problem) throw new BadRequestError(`${where}: ${MESSAGES[problem]}`);
}

export const adminInputGuard: RequestHandler = (req, _res, next) => {
  checkValue(req.query, 'query');
  checkValue(req.body, 'body');
  next();
};
