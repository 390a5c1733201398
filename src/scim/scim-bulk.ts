import { Router, type ErrorRequestHandler, type Request, type RequestHandler, type Response } from 'express';
import type { Store } from 'express-rate-limit';
import { isObject } from './scim-normalize.js';
import { scimBodyParser } from './scim-body.js';
import { ScimError } from './scim-context.js';
import type { BulkLimits } from './scim-discovery.js';
import { checkJsonBody } from './scim-key-guard.js';

/**
 * How does `POST /scim/v2/{tenantId}/Bulk` (RFC 7644 §3.7) run its
 * operations, and why exactly like single requests?
 *
 * Each operation is dispatched as an internal sub-request through
 * `resources`, the very Express pipeline a single request to /Users or
 * /Groups takes after authentication, the rate limit and body parsing: the
 * key guard, query/id validation, scimmy-routers, our resource classes (one
 * withTenant transaction per request: validation, null handling, audit,
 * webhooks, deprovisioning and session revocation) and scimErrorHandler
 * (RFC 7644 §3.12 bodies). That was chosen over calling the resource classes
 * directly because it leaves nothing to copy: a guard added to the pipeline
 * later applies to Bulk operations too. The sub-request is the Bulk request
 * with method, url, headers (`version` → If-Match), query and body of its
 * own; its response is captured instead of sent.
 *
 * Around that this module does what only Bulk has (§3.7.1–§3.7.4): the
 * envelope, `maxOperations` and `maxPayloadSize` (413 `tooMany` /
 * `tooLarge`), `bulkId:` references in `path` and `data` resolved to the ids
 * created earlier in the request, dependency order (an operation runs after
 * the POSTs whose bulkIds it names; circular references fail 409),
 * `failOnErrors`, one response entry per operation run, in request order,
 * and the tenant rate limit counting one hit per operation.
 */

type Json = Record<string, unknown>;

export const BULK_REQUEST = 'urn:ietf:params:scim:api:messages:2.0:BulkRequest';
export const BULK_RESPONSE = 'urn:ietf:params:scim:api:messages:2.0:BulkResponse';
const ERROR_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:Error';

const METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
/** §3.7: a resource type endpoint for POST, one resource for the others. */
const OPERATION_PATH = /^\/(Users|Groups)(?:\/([^/?#]+))?\/?$/i;
const BULK_REFERENCE = /^bulkId:(.+)$/s;

export interface BulkRouterOptions {
  limits: BulkLimits;
  /** The pipeline of every single resource request (scim.router.ts); each operation goes through it. */
  resources: RequestHandler;
  /** `${GATEHOUSE_BASE_URL}/scim/v2/${tenantId}`: the base of every `location`. */
  baseUrlOf: (req: Request) => string;
  /** The store of the per-tenant SCIM limiter, which has counted this request once already. */
  limiterStore: Store;
}

/** One operation of the request, checked; `problem` is why it fails without running. */
interface Operation {
  index: number;
  method: string | undefined;
  bulkId: string | undefined;
  version: string | undefined;
  /** The endpoint (`Users` / `Groups`, as canonically spelled) and the id segment, when the path parsed. */
  endpoint: 'Users' | 'Groups' | undefined;
  id: string | undefined;
  data: unknown;
  /** bulkIds named in the path or data (§3.7.2). */
  references: Set<string>;
  problem: ScimError | undefined;
}

/** One entry of the BulkResponse's Operations (§3.7.3). */
interface OperationResult {
  method?: string;
  bulkId?: string;
  version?: string;
  location?: string;
  status: string;
  response?: unknown;
}

/** What one sub-request answered. */
interface Captured {
  status: number;
  headers: Map<string, unknown>;
  body: unknown;
}

/**
 * The /Bulk route: mounted in the SCIM router after authentication and the
 * tenant rate limit and before the common body parser, because its body has
 * its own limit (`maxPayloadSize`) rather than GATEHOUSE_BODY_LIMIT.
 */
export function bulkRouter(options: BulkRouterOptions): Router {
  const router = Router({ mergeParams: true });
  const { maxPayloadSize } = options.limits;
  router.post('/Bulk', scimBodyParser(maxPayloadSize), (req, res, next) => {
    handleBulk(req, res, options).catch(next);
  });
  router.all('/Bulk', (_req, res) => {
    res.setHeader('Allow', 'POST');
    throw new ScimError(405, '', 'Bulk only takes POST');
  });
  // §3.7.4: past maxPayloadSize, 413 naming the limit (scimType as issue 10 asks: `tooLarge`).
  const tooLarge: ErrorRequestHandler = (error: unknown, _req, _res, next) => {
    if ((error as { type?: unknown } | null)?.type === 'entity.too.large')
      return next(
        new ScimError(
          413,
          'tooLarge',
          `The size of the bulk operation exceeds the maxPayloadSize (${maxPayloadSize})`,
        ),
      );
    next(error);
  };
  router.use('/Bulk', tooLarge);
  return router;
}

async function handleBulk(req: Request, res: Response, options: BulkRouterOptions): Promise<void> {
  const { operations, failOnErrors } = readEnvelope(req.body, options.limits.maxOperations);
  await countOperations(req, res, operations.length, options.limiterStore);
  const base = options.baseUrlOf(req);
  const results = await runOperations(req, options.resources, base, operations, failOnErrors);
  res.status(200).json({
    schemas: [BULK_RESPONSE],
    Operations: results.sort((a, b) => a[0] - b[0]).map(([, result]) => result),
  });
}

/** Case-insensitive attribute lookup (RFC 7643 §2.1: attribute names are case-insensitive). */
function field(record: Json, name: string): unknown {
  const lower = name.toLowerCase();
  const key = Object.keys(record).find((k) => k.toLowerCase() === lower);
  return key === undefined ? undefined : record[key];
}

/** The BulkRequest envelope (§3.7): its checks refuse the whole request; each operation is checked on its own. */
function readEnvelope(
  body: unknown,
  maxOperations: number,
): { operations: Operation[]; failOnErrors: number | undefined } {
  if (!isObject(body)) throw new ScimError(400, 'invalidSyntax', 'The body must be a BulkRequest object');
  const raw = field(body, 'Operations');
  if (!Array.isArray(raw))
    throw new ScimError(400, 'invalidSyntax', "A BulkRequest needs an 'Operations' array");
  const list = raw as unknown[];
  // §3.7.4: more than maxOperations is 413 (scimType as issue 10 asks: `tooMany`).
  if (list.length > maxOperations)
    throw new ScimError(
      413,
      'tooMany',
      `The number of operations (${list.length}) exceeds the maxOperations (${maxOperations})`,
    );
  const schemas = field(body, 'schemas');
  if (!Array.isArray(schemas) || !schemas.includes(BULK_REQUEST))
    throw new ScimError(400, 'invalidSyntax', `'schemas' must contain ${BULK_REQUEST}`);
  const failOnErrors = field(body, 'failOnErrors');
  if (
    failOnErrors !== undefined &&
    !(typeof failOnErrors === 'number' && Number.isInteger(failOnErrors) && failOnErrors >= 1)
  )
    throw new ScimError(400, 'invalidValue', "'failOnErrors' must be a positive integer");
  // Every key and string outside the operations' data (the pipeline checks each `data` as a single body).
  const withoutData = list.map((op) =>
    isObject(op) ? Object.fromEntries(Object.entries(op).filter(([k]) => k.toLowerCase() !== 'data')) : op,
  );
  checkJsonBody(
    Object.fromEntries(
      Object.entries(body).map(([k, v]) => [k, k.toLowerCase() === 'operations' ? withoutData : v]),
    ),
  );
  const operations = list.map((op, index) => readOperation(op, index));
  const declared = new Set<string>();
  for (const op of operations) {
    if (op.method !== 'POST' || op.bulkId === undefined) continue;
    if (declared.has(op.bulkId))
      op.problem = new ScimError(
        400,
        'invalidValue',
        `bulkId '${clip(op.bulkId)}' is used by an earlier POST`,
      );
    declared.add(op.bulkId);
  }
  return { operations, failOnErrors };
}

const clip = (text: string) => (text.length > 100 ? `${text.slice(0, 100)}…` : text);

function readOperation(raw: unknown, index: number): Operation {
  const op: Operation = {
    index,
    method: undefined,
    bulkId: undefined,
    version: undefined,
    endpoint: undefined,
    id: undefined,
    data: undefined,
    references: new Set(),
    problem: undefined,
  };
  const fail = (scimType: string, detail: string) => {
    op.problem ??= new ScimError(400, scimType, detail);
    return op;
  };
  if (!isObject(raw)) return fail('invalidSyntax', 'Each operation must be an object');
  const method = field(raw, 'method');
  const bulkId = field(raw, 'bulkId');
  const version = field(raw, 'version');
  const path = field(raw, 'path');
  if (typeof method === 'string') op.method = method.toUpperCase().slice(0, 10);
  if (typeof bulkId === 'string' && bulkId !== '') op.bulkId = bulkId;
  if (typeof version === 'string') op.version = version;
  op.data = field(raw, 'data');
  if (!op.method || !METHODS.has(op.method))
    return fail('invalidValue', "'method' must be one of POST, PUT, PATCH, DELETE");
  if (bulkId !== undefined && op.bulkId === undefined)
    return fail('invalidValue', "'bulkId' must be a non-empty string");
  if (op.method === 'POST' && op.bulkId === undefined)
    return fail('invalidValue', "'bulkId' is required for POST (RFC 7644 §3.7)");
  if (version !== undefined && op.version === undefined)
    return fail('invalidValue', "'version' must be a string");
  const m = typeof path === 'string' ? OPERATION_PATH.exec(path) : null;
  if (!m?.[1]) return fail('invalidPath', "'path' must be /Users, /Groups or one of their resources");
  op.endpoint = m[1].toLowerCase() === 'users' ? 'Users' : 'Groups';
  op.id = m[2];
  if (op.method === 'POST' && op.id !== undefined)
    return fail('invalidPath', 'POST takes a resource type endpoint (/Users or /Groups), not a resource');
  if (op.method !== 'POST' && op.id === undefined)
    return fail('invalidPath', `${op.method} takes the path of one resource, e.g. /Users/{id}`);
  const idReference = op.id === undefined ? undefined : BULK_REFERENCE.exec(op.id)?.[1];
  if (idReference !== undefined) op.references.add(idReference);
  if (op.method !== 'DELETE') collectReferences(op.data, op.references);
  return op;
}

/** Every `"bulkId:…"` string value in the data, at any depth (§3.7.2). */
function collectReferences(value: unknown, into: Set<string>): void {
  const stack = [value];
  while (stack.length > 0) {
    const v = stack.pop();
    if (typeof v === 'string') {
      const ref = BULK_REFERENCE.exec(v)?.[1];
      if (ref !== undefined) into.add(ref);
    } else if (Array.isArray(v)) stack.push(...(v as unknown[]));
    else if (isObject(v)) stack.push(...Object.values(v));
  }
}

/** The data with each `"bulkId:x"` replaced by the id x's POST created (a copy; own keys only). */
function resolveReferences(value: unknown, ids: Map<string, string>): unknown {
  if (typeof value === 'string') {
    const ref = BULK_REFERENCE.exec(value)?.[1];
    return ref !== undefined ? (ids.get(ref) ?? value) : value;
  }
  if (Array.isArray(value)) return value.map((v: unknown) => resolveReferences(v, ids));
  if (isObject(value))
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, resolveReferences(v, ids)]));
  return value;
}

/**
 * §3.7 and issue 10: the tenant's SCIM rate limit counts operations, not
 * requests. The limiter has counted this request once; the other N − 1
 * operations are N − 1 more hits on the same key, in the same shared store.
 * A Bulk that does not fit in what is left of the window is 429 before any
 * operation runs (two concurrent Bulks may both fit and overshoot by less
 * than one request's worth; the next request then waits).
 */
async function countOperations(req: Request, res: Response, count: number, store: Store): Promise<void> {
  const info = (
    req as Request & { rateLimit?: { limit: number; remaining: number; resetTime?: Date; key: string } }
  ).rateLimit;
  // No info: the store failed and the limiter let the request through (fail open, rate-limit-store.ts).
  if (!info || count <= 1) return;
  if (info.remaining < count - 1) {
    const seconds = info.resetTime
      ? Math.max(1, Math.ceil((info.resetTime.getTime() - Date.now()) / 1000))
      : 1;
    res.setHeader('Retry-After', String(seconds));
    throw new ScimError(
      429,
      '',
      `This Bulk request has ${count} operations and the tenant has ${info.remaining + 1} requests left in this window; retry after the Retry-After delay`,
    );
  }
  let used: number | undefined;
  try {
    for (let i = 1; i < count; i++) used = (await store.increment(info.key)).totalHits;
  } catch (error) {
    req.log?.warn(
      { err: error, request_id: req.requestId },
      'SCIM Bulk operations not counted: the store failed',
    );
    return;
  }
  if (used !== undefined && info.resetTime) {
    const reset = Math.max(0, Math.ceil((info.resetTime.getTime() - Date.now()) / 1000));
    res.setHeader(
      'RateLimit',
      `limit=${info.limit}, remaining=${Math.max(info.limit - used, 0)}, reset=${reset}`,
    );
  }
}

const errorBody = (error: ScimError) => ({
  schemas: [ERROR_SCHEMA],
  status: String(error.status),
  ...(error.scimType ? { scimType: error.scimType } : {}),
  detail: error.message,
});

/**
 * Runs the operations in dependency order: repeatedly the first one (in
 * request order) whose referenced bulkIds have all been settled; when none
 * is ready, the rest wait on each other (a cycle, §3.7.2) and the first of
 * them fails 409. Stops once `failOnErrors` operations have failed (§3.7.3).
 * Each result carries its operation's index, for the response order.
 */
async function runOperations(
  parent: Request,
  resources: RequestHandler,
  base: string,
  operations: Operation[],
  failOnErrors: number | undefined,
): Promise<[number, OperationResult][]> {
  const declared = new Map<string, Operation>();
  for (const op of operations)
    if (op.method === 'POST' && op.bulkId !== undefined && !declared.has(op.bulkId))
      declared.set(op.bulkId, op);
  /** bulkId → the id its POST created, or null when that POST failed. */
  const settled = new Map<string, string | null>();
  const pending = [...operations];
  const results: [number, OperationResult][] = [];
  let errors = 0;
  while (pending.length > 0) {
    const ready = (op: Operation) => [...op.references].every((r) => !declared.has(r) || settled.has(r));
    let at = pending.findIndex(ready);
    let cyclic = false;
    if (at < 0) {
      at = 0;
      cyclic = true;
    }
    const op = pending.splice(at, 1)[0] as Operation;
    const result = await runOne(parent, resources, base, op, declared, settled, cyclic);
    results.push([op.index, result]);
    if (Number(result.status) >= 400) errors++;
    if (failOnErrors !== undefined && errors >= failOnErrors) break;
  }
  return results;
}

async function runOne(
  parent: Request,
  resources: RequestHandler,
  base: string,
  op: Operation,
  declared: Map<string, Operation>,
  settled: Map<string, string | null>,
  cyclic: boolean,
): Promise<OperationResult> {
  const entry: OperationResult = {
    ...(op.method ? { method: op.method } : {}),
    ...(op.bulkId !== undefined ? { bulkId: op.bulkId } : {}),
    status: '',
  };
  const failed = (error: ScimError): OperationResult => {
    if (op.method === 'POST' && op.bulkId !== undefined && declared.get(op.bulkId) === op)
      settled.set(op.bulkId, null);
    return { ...entry, status: String(error.status), response: errorBody(error) };
  };
  if (op.problem) return failed(op.problem);
  const unknown = [...op.references].find((r) => !declared.has(r));
  if (unknown !== undefined)
    return failed(
      new ScimError(400, 'invalidValue', `bulkId '${clip(unknown)}' names no POST operation of this request`),
    );
  if (cyclic)
    return failed(
      new ScimError(
        409,
        '',
        'Circular bulkId references: this operation and those it names wait on each other',
      ),
    );
  const unresolved = [...op.references].find((r) => settled.get(r) === null);
  if (unresolved !== undefined)
    return failed(
      new ScimError(409, '', `bulkId '${clip(unresolved)}' did not resolve: its operation failed`),
    );
  const ids = new Map([...settled].filter((e): e is [string, string] => e[1] !== null));
  const idRef = op.id === undefined ? undefined : BULK_REFERENCE.exec(op.id)?.[1];
  const id = idRef !== undefined ? ids.get(idRef) : op.id;
  const path = `/${op.endpoint ?? ''}${id === undefined ? '' : `/${id}`}`;
  const data = op.method === 'DELETE' ? undefined : resolveReferences(op.data, ids);
  const answer = await dispatch(resources, parent, op.method as string, path, data, op.version);
  const etag = answer.headers.get('etag');
  const location = op.method === 'POST' ? answer.headers.get('location') : `${base}${path}`;
  if (answer.status >= 400) {
    if (op.method === 'POST' && op.bulkId !== undefined) settled.set(op.bulkId, null);
    return {
      ...entry,
      ...(typeof location === 'string' && op.method !== 'POST' ? { location } : {}),
      status: String(answer.status),
      response: answer.body,
    };
  }
  if (op.method === 'POST' && op.bulkId !== undefined) {
    const created = isObject(answer.body) && typeof answer.body.id === 'string' ? answer.body.id : null;
    settled.set(op.bulkId, created);
  }
  return {
    ...entry,
    ...(typeof etag === 'string' ? { version: etag } : {}),
    ...(typeof location === 'string' ? { location } : {}),
    status: String(answer.status),
  };
}

/** A response body as JSON (what the client would have parsed), or undefined when there is none. */
function asJson(body: unknown): unknown {
  if (body === undefined || body === null || body === '') return undefined;
  const text = Buffer.isBuffer(body) ? body.toString('utf8') : typeof body === 'string' ? body : undefined;
  try {
    return text !== undefined ? JSON.parse(text) : JSON.parse(JSON.stringify(body));
  } catch {
    return text;
  }
}

/**
 * One operation as a sub-request through `resources`. The sub-request is a
 * child of the Bulk request (prototype: the same socket, principal, request
 * id, logger and client address) with its own method, url, headers, query
 * and body; the sub-response a child of the Bulk response that keeps its
 * headers and body here instead of writing them to the socket.
 */
function dispatch(
  resources: RequestHandler,
  parent: Request,
  method: string,
  path: string,
  data: unknown,
  version: string | undefined,
): Promise<Captured> {
  return new Promise((resolve) => {
    const headers = new Map<string, unknown>();
    const req = Object.create(parent) as Request;
    const res = Object.create(parent.res as Response) as Response;
    let finished = false;
    const finish = (body: unknown) => {
      if (finished) return;
      finished = true;
      resolve({ status: res.statusCode, headers, body: asJson(body) });
    };
    const requestHeaders: Record<string, unknown> = { ...parent.headers };
    // The body is already parsed: the sub-request has none to read.
    for (const name of [
      'content-length',
      'transfer-encoding',
      'content-type',
      'content-encoding',
      'if-match',
    ])
      delete requestHeaders[name];
    // §3.7: `version` is the operation's If-Match (§3.14).
    if (version !== undefined) requestHeaders['if-match'] = version;
    own(req, {
      method,
      url: path,
      originalUrl: `${parent.baseUrl}${path}`,
      headers: requestHeaders,
      query: {},
      params: { ...parent.params },
      body: data,
      res,
    });
    own(res, {
      req,
      statusCode: 200,
      headersSent: false,
      setHeader: (name: string, value: unknown) => {
        headers.set(name.toLowerCase(), value);
        return res;
      },
      appendHeader: (name: string, value: unknown) => {
        headers.set(name.toLowerCase(), value);
        return res;
      },
      getHeader: (name: string) => headers.get(name.toLowerCase()),
      getHeaders: () => Object.fromEntries(headers),
      getHeaderNames: () => [...headers.keys()],
      hasHeader: (name: string) => headers.has(name.toLowerCase()),
      removeHeader: (name: string) => headers.delete(name.toLowerCase()),
      writeHead: (status: number) => {
        res.statusCode = status;
        return res;
      },
      write: () => true,
      end: (chunk?: unknown) => {
        finish(typeof chunk === 'function' ? undefined : chunk);
        return res;
      },
      send: (body?: unknown) => {
        finish(body);
        return res;
      },
      json: (body?: unknown) => {
        finish(body ?? null);
        return res;
      },
      sendStatus: (status: number) => {
        res.statusCode = status;
        finish(undefined);
        return res;
      },
    });
    resources(req, res, (error?: unknown) => {
      if (finished) return;
      // Nothing in the pipeline answered: no such route (the path was checked, so not expected).
      if (error !== undefined && error !== 'route' && error !== 'router')
        parent.log?.error({ err: error, request_id: parent.requestId }, 'SCIM Bulk operation failed');
      const failure =
        error === undefined || error === 'route' || error === 'router'
          ? new ScimError(404, '', `No endpoint ${method} ${path}`)
          : new ScimError(500, '', 'Internal server error');
      res.statusCode = failure.status;
      finish(errorBody(failure));
    });
  });
}

/** Own, writable properties on a child object, shadowing the parent's (accessors included). */
function own(target: object, values: Record<string, unknown>): void {
  for (const [key, value] of Object.entries(values))
    Object.defineProperty(target, key, { value, writable: true, configurable: true, enumerable: true });
}
