import SCIMMY from 'scimmy';

/** A scimmy schema instance as plain JSON (its toJSON drops never-returned attributes such as password). */
export function plain(value: unknown): Record<string, unknown> {
  return JSON.parse(JSON.stringify(value)) as Record<string, unknown>;
}

/** JSON with object keys sorted, for comparing jsonb read back from Postgres with what was sent. */
export function canonicalJson(value: unknown): string {
  const sort = (v: unknown): unknown =>
    Array.isArray(v)
      ? v.map(sort)
      : v && typeof v === 'object'
        ? Object.fromEntries(
            Object.entries(v as Record<string, unknown>)
              .filter(([, x]) => x !== undefined)
              .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
              .map(([k, x]) => [k, sort(x)]),
          )
        : v;
  return JSON.stringify(sort(value ?? {}));
}

/** Default page size when the client sends no `count`. */
const DEFAULT_COUNT = 100;

/**
 * RFC 7644 §3.4.2.4: startIndex below 1 means 1; count above the maximum page
 * size is capped (the response's itemsPerPage says how many came back).
 * Malformed values are refused earlier, by the query validation.
 */
export function pageOf(
  constraints: { startIndex?: number; count?: number } | undefined,
  maxPageSize: number,
): { offset: number; limit: number } {
  const startIndex = Math.max(1, constraints?.startIndex ?? 1);
  const count = Math.min(
    Math.max(0, constraints?.count ?? Math.min(DEFAULT_COUNT, maxPageSize)),
    maxPageSize,
  );
  return { offset: startIndex - 1, limit: count };
}

/** A ListResponse for one page already cut by SQL (scimmy must not page or sort it again). */
export function listResponse<T extends InstanceType<typeof SCIMMY.Types.Schema>>(
  resources: T[],
  totalResults: number,
  startIndex: number,
): SCIMMY.Messages.ListResponse<T> {
  const list = new SCIMMY.Messages.ListResponse(resources, {
    totalResults,
    startIndex: 1,
    itemsPerPage: resources.length,
  });
  list.startIndex = startIndex;
  return list;
}

/**
 * A rendered resource as sent. scimmy drops `schemas` when `attributes`
 * selects others; RFC 7643 §3 requires it in every representation.
 */
export function withSchemas<T>(resource: T, schemas: string[]): T {
  return { schemas, ...plain(resource) } as T;
}
