import type { ErrorRequestHandler, Request, RequestHandler } from 'express';
import { Router } from 'express';
import { ipKeyGenerator, rateLimit, type Store } from 'express-rate-limit';
import SCIMMY from 'scimmy';
import SCIMMYRouters from 'scimmy-routers';
import type { Config } from '../config/config.js';
import { isUuid, type Database } from '../db/database.js';
import type { NotificationBus } from '../db/notification-bus.js';
import { fromBodyParserError, UNAVAILABLE_MESSAGE } from '../http/error-handler.js';
import { sharedLimiterOptions } from '../http/rate-limit-store.js';
import { scimAuthentication, ScimTokenVerifier } from './scim-auth.js';
import { bulkRouter } from './scim-bulk.js';
import { discoveryIsReadOnly, scimBodyParser } from './scim-body.js';
import { ScimError, type ScimContext } from './scim-context.js';
import { discoveryRouter } from './scim-discovery.js';
import { parseFilter, type FilterNode } from './scim-filter.js';
import { attributeEntries, scimKeyGuard } from './scim-key-guard.js';
import { scimRequestLog } from './scim-request-log.js';
import { declareScimResources, resetScimConfig } from './scim-setup.js';
import { isDatabaseUnavailable } from '../db/pg-errors.js';

export interface ScimRouterDeps {
  config: Config;
  db: Database;
  /** This node's LISTEN connection: without it verified tokens are not cached (argon2 per request). */
  notifications?: NotificationBus;
}

export const SCIM_MEDIA_TYPE = 'application/scim+json';
const ERROR_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:Error';

/**
 * SCIM 2.0 at /scim/v2/{tenantId} (mounted with that path, mergeParams): a
 * tenant SCIM token, a per-tenant rate limit, query validation, discovery,
 * then scimmy-routers over our Users and Groups resources. The tenant reaches
 * the resource handlers only through scimmy-routers' `context` callback.
 */
export function scimRouter(deps: ScimRouterDeps): Router {
  declareScimResources();
  const { scim } = deps.config;
  const verifier = new ScimTokenVerifier(deps.db, {
    cacheTtlMs: scim.tokenCacheTtlSeconds * 1000,
    notifications: deps.notifications,
  });
  const tenantBase = (tenantId: string) => `${deps.config.baseUrl}/scim/v2/${tenantId}`;

  const router = Router({ mergeParams: true });
  const tenantLimiter = sharedLimiterOptions(deps.config, deps.db, 'scim-tenant'); // issue 11: one count for all nodes
  router.use(scimRequestLog(deps)); // issue 10: the provisioning log, written after the response
  router.use((req, res, next) => {
    res.setHeader('Content-Type', SCIM_MEDIA_TYPE);
    // Express 5 re-parses req.query on every read; scimmy-routers converts
    // startIndex/count in place, so the parsed object has to stay put.
    const query = req.query;
    Object.defineProperty(req, 'query', {
      value: query,
      writable: true,
      configurable: true,
      enumerable: true,
    });
    next();
  });
  router.use(
    failedAuthLimiter(
      scim.authFailureLimit,
      60_000,
      sharedLimiterOptions(deps.config, deps.db, 'scim-auth').store,
    ),
  );
  router.use(scimAuthentication(verifier));
  router.use(
    rateLimit({
      ...tenantLimiter,
      windowMs: scim.rateWindowSeconds * 1000,
      limit: scim.rateLimit,
      keyGenerator: (req) => req.scim?.tenantId ?? '',
      standardHeaders: 'draft-7',
      legacyHeaders: false,
      validate: false,
      handler: (_req, res) =>
        sendError(
          res,
          429,
          undefined,
          'Too many requests for this tenant; retry after the Retry-After delay',
        ),
    }),
  );
  // Before the body is read: a discovery endpoint answers 405 whatever the body (issue 10).
  router.use(discoveryIsReadOnly);
  // What every single-resource request takes after the body is read; each /Bulk operation too (issue 10).
  const resources = Router({ mergeParams: true });
  const bulkLimits = { maxOperations: scim.bulkMaxOperations, maxPayloadSize: scim.bulkMaxPayloadBytes };
  // Issue 10: /Bulk reads its body within maxPayloadSize, then sends each operation through `resources`.
  router.use(
    bulkRouter({
      limits: bulkLimits,
      resources,
      baseUrlOf: (req) => tenantBase(req.scim?.tenantId ?? ''),
      limiterStore: tenantLimiter.store,
    }),
  );
  // The app mounts SCIM before its own body parsers: SCIM reads JSON under any JSON or no Content-Type.
  router.use(scimBodyParser(deps.config.bodyLimit));
  router.use(resources);
  // Issue 8: no client string becomes an object key path, before scimmy sees any of it.
  resources.use(scimKeyGuard);
  resources.use(validateRequest);
  resources.use(
    discoveryRouter({
      baseUrlOf: (req) => tenantBase(req.scim?.tenantId ?? ''),
      maxPageSize: scim.maxPageSize,
      bulk: bulkLimits,
    }),
  );
  resources.use(
    new SCIMMYRouters({
      type: 'bearer',
      // Already authenticated above; scimmy-routers' /Me asks for the caller's id.
      handler: (req) => {
        if (!req.scim) throw new Error('Not authenticated');
        return req.scim.tokenId;
      },
      context: (req): ScimContext => {
        const principal = req.scim;
        if (!principal) throw new ScimError(401, '', 'Missing or invalid bearer token');
        return {
          tenantId: principal.tenantId,
          db: deps.db,
          baseUrl: tenantBase(principal.tenantId),
          actor: { type: 'scim', id: principal.tokenId },
          requestId: req.requestId,
          sourceIp: req.ip,
          ifMatch: req.header('if-match'),
          maxPageSize: scim.maxPageSize,
          deleteErases: scim.deleteErases,
          filter: filterOf(req),
          setHeader: (name, value) => req.res?.setHeader(name, value),
          logError: (error) =>
            req.log?.error({ err: error, request_id: req.requestId }, 'SCIM request failed'),
          unavailable: () => {
            if (req.res) req.res.locals[DATABASE_UNAVAILABLE] = true;
          },
        };
      },
    }),
  );
  resources.use(scimErrorHandler);
  resetScimConfig(scim.maxPageSize);
  router.use(scimErrorHandler);
  return router;
}

/** res.locals key: the request met an unreachable database inside scimmy's routes. */
const DATABASE_UNAVAILABLE = 'gatehouseDatabaseUnavailable';

function sendError(
  res: Parameters<RequestHandler>[1],
  status: number,
  scimType: string | undefined,
  detail: string,
): void {
  if (res.headersSent) return;
  res
    .status(status)
    .type(SCIM_MEDIA_TYPE)
    .json({ schemas: [ERROR_SCHEMA], status: String(status), ...(scimType ? { scimType } : {}), detail });
}

/**
 * RFC 7644 §3.12 error bodies for what fails before scimmy-routers (body
 * parsing, authentication, validation). Mount it after the router as well,
 * at the same path, so the app's JSON body parser errors get the same shape.
 */
export const scimErrorHandler: ErrorRequestHandler = (error: unknown, req, res, next) => {
  // A handler inside scimmy's routes met an unreachable database (ScimContext.unavailable); whatever
  // scimmy-routers made of its 503 on the way here, the answer is ours.
  if (res.locals[DATABASE_UNAVAILABLE] === true || isDatabaseUnavailable(error))
    return sendError(res, 503, undefined, UNAVAILABLE_MESSAGE);
  if (error instanceof ScimError)
    return sendError(res, error.status, error.scimType || undefined, error.message);
  const parse = fromBodyParserError(error);
  if ((error as { type?: unknown } | null)?.type === 'charset.unsupported')
    return sendError(res, 415, undefined, 'Unsupported charset: send UTF-8 JSON');
  if (parse?.code === 'bad_request') return sendError(res, 400, 'invalidSyntax', parse.message);
  if (parse?.code === 'payload_too_large') return sendError(res, 413, undefined, parse.message);
  req.log?.error({ err: error, request_id: req.requestId }, 'SCIM request failed');
  if (res.headersSent) return next(error);
  sendError(res, 500, undefined, 'Internal server error');
};

/**
 * Repeated bad tokens for one tenant from one address get 429 for a while.
 * Only answered 401s count (counted when sent, so a burst of good concurrent
 * requests never trips it); the key includes the tenant because Okta and
 * Entra call from shared addresses, and one tenant's bad token must not lock
 * out the others.
 */
function failedAuthLimiter(limit: number, windowMs: number, shared: Store): RequestHandler {
  // The shared count (issue 11) is written only when a request fails (one statement per 401, none
  // on the hot path); each node checks its own copy of the latest count it saw. A node that has
  // seen no failure yet lets one guess through and learns the shared count from its answer, so
  // the guesses one address gets at one tenant stay within the limit plus one per node.
  void shared.init?.({ windowMs } as Parameters<NonNullable<Store['init']>>[0]);
  const failures = new Map<string, { count: number; resetAt: number }>();
  return (req, res, next) => {
    const key = `${ipKeyGenerator(req.ip ?? '')}|${String(req.params.tenantId)}`;
    const now = Date.now();
    const entry = failures.get(key);
    if (entry && entry.resetAt <= now) failures.delete(key);
    else if (entry && entry.count >= limit) {
      res.setHeader('Retry-After', String(Math.ceil((entry.resetAt - now) / 1000)));
      return sendError(res, 429, undefined, 'Too many failed authentication attempts');
    }
    res.on('finish', () => {
      if (res.statusCode !== 401) return;
      if (failures.size > 10_000)
        for (const [k, e] of failures) if (e.resetAt <= Date.now()) failures.delete(k);
      const current = failures.get(key);
      if (current && current.resetAt > Date.now()) current.count++;
      else failures.set(key, { count: 1, resetAt: Date.now() + windowMs });
      // Then the count of every node, when the store answers (fail open: the local count stands).
      void Promise.resolve(shared.increment(key)).then(
        ({ totalHits, resetTime }) => {
          const local = failures.get(key);
          const resetAt = resetTime?.getTime() ?? Date.now() + windowMs;
          if (!local || totalHits > local.count) failures.set(key, { count: totalHits, resetAt });
        },
        () => undefined,
      );
    });
    next();
  };
}

const RESOURCE_PATH = /^\/(Users|Groups)(?:\/([^/]+))?\/?$/i;

/** Filters parsed by validateRequest, for the `context` callback (scimmy never sees the string). */
const FILTERS = new WeakMap<Request, FilterNode>();
const filterOf = (req: Request): FilterNode | undefined => FILTERS.get(req);

/** Refuses what scimmy would misread (RFC 7644 §3.4.2): ids, filters, paging and attribute lists. */
const validateRequest: RequestHandler = (req, _res, next) => {
  const m = RESOURCE_PATH.exec(req.path);
  const search = req.method === 'POST' && (m ? m[2] === '.search' : /^\/\.search\/?$/.test(req.path));
  if (m) {
    const id = m[2];
    if (id !== undefined && id !== '.search' && !isUuid(id))
      throw new ScimError(404, '', `${m[1] === 'Users' ? 'User' : 'Group'} ${id.slice(0, 100)} not found`);
    // Every method takes ?attributes= (RFC 7644 §3.9), and scimmy parses it for one resource too.
    keepFilter(req, validateListParams(req.query, false));
  }
  if (search) keepFilter(req, validateListParams(bodyOf(req), true));
  next();
};

function keepFilter(req: Request, filter: FilterNode | undefined): void {
  if (filter) FILTERS.set(req, filter);
}

const bodyOf = (req: Request): Record<string, unknown> =>
  typeof req.body === 'object' && req.body !== null ? (req.body as Record<string, unknown>) : {};

/** An attribute name or path, URN-prefixed or not: segments joined by single `.` or `:`. */
const ATTRIBUTE_NAME = /^[A-Za-z0-9_$]+(?:[.:][A-Za-z0-9_$]+)*$/;

/**
 * scimmy turns `attributes` into the filter `a pr and b pr` (`np` for
 * excludedAttributes) and throws a TypeError on names its lexer reads as
 * something else (`0`, `and`, `trueName`): built here first, so that is a 400.
 * The key guard has already refused prototype keys, so building it is safe.
 */
function checkAttributeFilter(list: string[], op: 'pr' | 'np', key: string): void {
  try {
    new SCIMMY.Types.Filter(list.map((a) => `${a.trim()} ${op}`).join(' and '));
  } catch {
    throw new ScimError(400, 'invalidValue', `'${key}' must be a comma-separated list of attribute names`);
  }
}

/**
 * The list parameters of a query (`json` false) or a /.search body: checked,
 * `attributes` rewritten without value filters (scimmy reads them next), and
 * the filter parsed and taken out of scimmy's way. Returns the parsed filter.
 */
function validateListParams(params: Record<string, unknown>, json: boolean): FilterNode | undefined {
  for (const key of ['filter', 'attributes', 'excludedAttributes', 'sortBy', 'sortOrder']) {
    const value = params[key];
    if (value === undefined) continue;
    if (json && key.endsWith('ttributes') && Array.isArray(value)) continue;
    if (typeof value !== 'string')
      throw new ScimError(400, 'invalidValue', `'${key}' must be given once, as a string`);
  }
  for (const key of ['attributes', 'excludedAttributes']) {
    const value = params[key];
    const list: unknown[] = Array.isArray(value)
      ? (value as unknown[]).map((a) => (typeof a === 'string' ? attributeEntries(a, true).join(',') : a))
      : typeof value === 'string'
        ? attributeEntries(value, true)
        : [];
    if (list.some((a) => typeof a !== 'string' || !ATTRIBUTE_NAME.test(a.trim())))
      throw new ScimError(400, 'invalidValue', `'${key}' must be a comma-separated list of attribute names`);
    if (list.length > 0) checkAttributeFilter(list as string[], key === 'attributes' ? 'pr' : 'np', key);
    if (typeof value === 'string') params[key] = list.join(',');
    else if (Array.isArray(value)) params[key] = list;
  }
  for (const key of ['startIndex', 'count']) {
    const value = params[key];
    if (value === undefined) continue;
    const text = typeof value === 'number' || typeof value === 'string' ? String(value) : '';
    const ok = key === 'count' ? /^\d{1,9}$/.test(text) : /^-?\d{1,9}$/.test(text);
    if (!ok || (json && typeof value !== 'number'))
      throw new ScimError(
        400,
        'invalidValue',
        key === 'count' ? "'count' must be a non-negative integer" : "'startIndex' must be an integer",
      );
  }
  // RFC 7644 §3.4.2.3: the attribute is resolved when the list is read (scim-filter.ts sortToSql).
  if (typeof params.sortBy === 'string' && params.sortBy.trim() === '')
    throw new ScimError(400, 'invalidValue', "'sortBy' must name an attribute");
  if (typeof params.sortOrder === 'string') {
    const order = params.sortOrder.trim().toLowerCase();
    if (order !== 'ascending' && order !== 'descending')
      throw new ScimError(400, 'invalidValue', "'sortOrder' must be 'ascending' or 'descending'");
    params.sortOrder = order; // scimmy keeps only the exact lower-case words
  }
  if (typeof params.filter !== 'string') return undefined;
  const filter = parseFilter(params.filter);
  delete params.filter;
  return filter;
}
