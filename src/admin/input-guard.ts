import type { RequestHandler } from 'express';
import { isStorableText, LIMITS } from '../directory/limits.js';
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

const FORBIDDEN = new Set(['__proto__', 'constructor', 'prototype']);

/** A prototype key, in any case: never a field or attribute name. */
export const isPrototypeKey = (name: string): boolean => FORBIDDEN.has(name.trim().toLowerCase());

function checkValue(root: unknown, where: string): void {
  const stack: [unknown, number][] = [[root, 0]];
  while (stack.length > 0) {
    const [value, depth] = stack.pop() as [unknown, number];
    if (typeof value === 'string') {
      if (!isStorableText(value))
        throw new BadRequestError(`${where}: a value contains a NUL character or an unpaired surrogate`);
      continue;
    }
    if (typeof value !== 'object' || value === null) continue;
    if (depth >= LIMITS.jsonDepth)
      throw new BadRequestError(`${where}: nested deeper than ${LIMITS.jsonDepth}`);
    if (Array.isArray(value)) {
      for (const item of value) stack.push([item, depth + 1]);
      continue;
    }
    for (const [key, item] of Object.entries(value as Record<string, unknown>)) {
      if (isPrototypeKey(key)) throw new BadRequestError(`${where}: forbidden field name '${key}'`);
      if (!isStorableText(key))
        throw new BadRequestError(`${where}: a field name contains a NUL character or an unpaired surrogate`);
      stack.push([item, depth + 1]);
    }
  }
}

export const adminInputGuard: RequestHandler = (req, _res, next) => {
  checkValue(req.query, 'query');
  checkValue(req.body, 'body');
  next();
};
