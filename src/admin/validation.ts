import type { Request } from 'express';
import { z } from 'zod';
import { BadRequestError } from '../errors.js';

/**
 * Parses a body with a strict zod schema: unknown fields are refused (400),
 * consistently across the admin API, so a typo never silently does nothing.
 */
export function parseBody<S extends z.ZodType>(schema: S, req: Request): z.infer<S> {
  const result = schema.safeParse(req.body ?? {});
  if (!result.success) throw new BadRequestError(describe(result.error));
  return result.data;
}

export function parseQuery<S extends z.ZodType>(schema: S, req: Request): z.infer<S> {
  const result = schema.safeParse(req.query);
  if (!result.success) throw new BadRequestError(describe(result.error));
  return result.data;
}

function describe(error: z.ZodError): string {
  return error.issues
    .map((i) => {
      const where = i.path.length ? i.path.join('.') : 'body';
      return i.code === 'unrecognized_keys'
        ? `unknown field(s): ${i.keys.join(', ')}`
        : `${where}: ${i.message}`;
    })
    .join('; ');
}

/** Cursor-less pagination shared by every list: ?limit=&offset= (limit ≤ 100). */
export const pageQuery = z.object({
  limit: z.coerce.number().int().min(1).max(100).default(25),
  offset: z.coerce.number().int().min(0).default(0),
});

export interface Page<T> {
  data: T[];
  total: number;
  limit: number;
  offset: number;
}

/** Path ids are UUIDs; anything else is a resource that does not exist. */
export const uuidParam = z.uuid();
