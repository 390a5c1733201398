import SCIMMY from 'scimmy';
import type { EntityManager } from 'typeorm';
import {
  checkIfMatch,
  etagOf,
  notFound,
  ScimError,
  scimmyValidation,
  type ScimContext,
} from './scim-context.js';
import { filterToSql, sortToSql, SqlParams, type FilterResolver } from './scim-filter.js';
import { listResponse, pageOf, plain, withSchemas } from './scim-list.js';
import {
  checkSchemas,
  dropNulls,
  normalizeResource,
  requireObject,
  stripReadOnly,
} from './scim-normalize.js';

/**
 * The scimmy wiring /Users and /Groups share: reading one resource or a page
 * (egress), taking a POST/PUT body in (ingress), rendering out, finding the
 * target of a change and applying a PatchOp. What differs (the directory
 * calls, members, Entra's quirks, audit summaries) stays in the resource files.
 */
type Json = Record<string, unknown>;
export type PatchOpMessage = ConstructorParameters<typeof SCIMMY.Messages.PatchOp>[0];

const SCHEMAS = { User: SCIMMY.Schemas.User, Group: SCIMMY.Schemas.Group };
export type ResourceType = keyof typeof SCHEMAS;
type SchemaOf<T extends ResourceType> = InstanceType<(typeof SCHEMAS)[T]>;
const ENDPOINTS: Record<ResourceType, string> = { User: 'Users', Group: 'Groups' };

/** What scimmy parsed from the request (`this` in a resource class). */
type ResourceRequest = Pick<InstanceType<typeof SCIMMY.Resources.User>, 'id' | 'constraints' | 'attributes'>;

export interface ResourceReader<T, R> {
  type: ResourceType;
  filterResolver: FilterResolver;
  findOne(em: EntityManager, id: string): Promise<T | null>;
  /**
   * One page, in a stable order; `where` and `params` are the SQL of the
   * request's filter, `orderBy` (when sorted) the ORDER BY list of its sortBy.
   */
  findPage(
    em: EntityManager,
    query: { where: string; params: unknown[]; orderBy?: string; offset: number; limit: number },
  ): Promise<{ total: number; items: T[] }>;
  version(item: T): number;
  render(item: T): R;
}

/**
 * GET (RFC 7644 §3.4.1, §3.4.2): the resource named by id, with its ETag (404
 * when absent), or one page of those matching the filter, sorted (§3.4.2.3)
 * and cut (§3.4.2.4) by SQL, in that order.
 */
export async function readResources<T, R extends InstanceType<typeof SCIMMY.Types.Schema>>(
  c: ScimContext,
  request: ResourceRequest,
  reader: ResourceReader<T, R>,
): Promise<SCIMMY.Messages.ListResponse | R> {
  const id = request.id;
  if (id !== undefined) {
    const found = await c.db.withTenant(c.tenantId, (em) => reader.findOne(em, id));
    if (!found) throw notFound(reader.type, id);
    c.setHeader('ETag', etagOf(reader.version(found)));
    return reader.render(found);
  }
  const page = pageOf(request.constraints, c.maxPageSize);
  const params = new SqlParams();
  const where = c.filter ? filterToSql(c.filter, reader.filterResolver, params) : 'true';
  const { sortBy, sortOrder } = request.constraints ?? {};
  const orderBy =
    sortBy === undefined
      ? undefined
      : sortToSql(sortBy, sortOrder === 'descending' ? 'descending' : 'ascending', reader.filterResolver);
  const { total, items } = await c.db.withTenant(c.tenantId, (em) =>
    reader.findPage(em, { where, params: params.values, orderBy, ...page }),
  );
  return listResponse(
    items.map((item) => reader.render(item)),
    total,
    page.offset + 1,
  );
}

/**
 * A POST or PUT body (RFC 7644 §3.3, §3.5.1) checked, its nulls dropped
 * (unassigned, RFC 7643 §2.5), stripped of read-only attributes (ignored,
 * §3.3), normalised and validated by scimmy's schema. `sent` is the body as
 * the client sent it (after the schemas check), for what a PUT omitted.
 */
export function inboundResource(
  type: ResourceType,
  instance: unknown,
  id: string | undefined,
): { resource: Json; sent: Json } {
  const body = requireObject(instance, id ? 'PUT' : 'POST');
  const sent = checkSchemas(type, dropNulls(body) as Json);
  const resource = validateInbound(type, normalizeResource(type, stripReadOnly(type, sent)));
  // A key sent as null stays in `sent`: for a PUT it names what to clear (RFC 7643 §2.5).
  for (const [key, value] of Object.entries(body)) if (value === null && !(key in sent)) sent[key] = null;
  return { resource, sent };
}

/** A representation validated (and coerced) by scimmy's schema as coming in; a TypeError is a 400. */
export function validateInbound(type: ResourceType, body: Json): Json {
  return plain(scimmyValidation(() => new SCHEMAS[type](body, 'in')));
}

/**
 * A resource as sent back (meta.location under this tenant's SCIM base), cut
 * to the requested `attributes` when there are any, keeping `schemas`.
 */
export function outboundResource<T extends ResourceType>(
  c: ScimContext,
  type: T,
  data: Json,
  selected?: { attributes: SCIMMY.Types.Filter | undefined; schemas: string[] },
): SchemaOf<T> {
  const attributes = selected?.attributes;
  const out = scimmyValidation(
    () => new SCHEMAS[type](data, 'out', `${c.baseUrl}/${ENDPOINTS[type]}`, attributes) as SchemaOf<T>,
  );
  return attributes && selected ? withSchemas(out, selected.schemas) : out;
}

/**
 * The target of a PUT, PATCH or DELETE, found by the caller (locked FOR
 * UPDATE): 404 when absent, 412 when If-Match names another version (§3.14).
 */
export function changeTarget<T extends { version: number }>(
  c: ScimContext,
  type: ResourceType,
  id: string,
  found: T | null,
): T {
  if (!found) throw notFound(type, id);
  checkIfMatch(c.ifMatch, found.version);
  return found;
}

/** Applies PatchOp operations (RFC 7644 §3.5.2) with scimmy's rules; the patched resource as JSON. */
export async function applyPatchOp(
  current: InstanceType<typeof SCIMMY.Types.Schema>,
  message: PatchOpMessage,
): Promise<Json> {
  let patched: Json = plain(current);
  // Every operation was a null `add` (scim-normalize.ts withoutNulls): nothing changes.
  if (Array.isArray(message?.Operations) && message.Operations.length === 0) return patched;
  try {
    // No finaliser: it would coerce the target through the schema once more (issue 13), and the
    // caller validates the patched whole as inbound anyway. apply answers undefined when nothing changed.
    const target = await new SCIMMY.Messages.PatchOp(message).apply(current);
    if (target !== undefined) patched = plain(target);
  } catch (error) {
    // As scimmyValidation: scimmy reports a value it cannot apply as a TypeError.
    if (error instanceof TypeError) throw new ScimError(400, 'invalidValue', error.message);
    throw error;
  }
  return patched;
}
