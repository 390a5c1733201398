import type { NextFunction, Request, Response } from 'express';
import { collectDefaultMetrics, Counter, Histogram, Registry } from 'prom-client';
import { reportHookFailure } from './request-log.js';

export interface HttpMetrics {
  registry: Registry;
  middleware: (req: Request, res: Response, next: NextFunction) => void;
}

/** Label values come from closed sets: a client can neither grow the series nor see itself in them. */
const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);

export const methodLabel = (method: string) => (METHODS.has(method) ? method : 'OTHER');

const statusLabel = (status: number) =>
  Number.isInteger(status) && status >= 100 && status <= 599 ? String(status) : 'other';

/**
 * The mount paths of the app's routers as the code wrote them, e.g.
 * `/admin/v1`, `/scim/v2/:tenantId`, `/scim/v2/:tenantId/Users`: what
 * `req.baseUrl` (the resolved path, tenant id included) is mapped back to.
 * Read once per app from `router.listRoutes()` (router 2.3, Express 5.3).
 */
type Template = string[];
const templatesByApp = new WeakMap<object, Template[]>();

interface ListedRoute {
  path: unknown;
  router?: unknown;
}
interface ListableRouter {
  listRoutes?: () => ListedRoute[];
}

/** Only plain `/a/:b` patterns; wildcards, groups and regexps are not templates we can align. */
const PLAIN_PATTERN = /^(\/[A-Za-z0-9._~:-]+)*\/?$/;

function collectMounts(router: unknown, prefix: Template, out: Template[], depth: number): void {
  const listRoutes = (router as ListableRouter | null)?.listRoutes;
  if (depth > 8 || typeof listRoutes !== 'function') return;
  for (const entry of listRoutes.call(router)) {
    if (!entry.router || typeof entry.path !== 'string' || !PLAIN_PATTERN.test(entry.path)) continue;
    const mounted = [...prefix, ...entry.path.split('/').filter(Boolean)];
    out.push(mounted);
    collectMounts(entry.router, mounted, out, depth + 1);
  }
}

function mountTemplates(app: object | undefined): Template[] {
  if (!app) return [];
  let templates = templatesByApp.get(app);
  if (!templates) {
    templates = [];
    collectMounts((app as unknown as { router?: unknown }).router, [], templates, 0);
    templatesByApp.set(app, templates);
  }
  return templates;
}

/**
 * `req.baseUrl` as a template: the mount pattern it matches (static segments
 * compared case-insensitively, as Express routes them, and written as the code
 * spells them). Whatever cannot be matched is `:param` per segment, so a
 * client-chosen value (a tenant id, an email) never becomes a label.
 */
export function baseTemplate(baseUrl: string, app: object | undefined): string {
  const segments = baseUrl.split('/').filter(Boolean);
  if (segments.length === 0) return '';
  let best: Template | undefined;
  let bestStatic = -1;
  for (const template of mountTemplates(app)) {
    if (template.length !== segments.length) continue;
    let statics = 0;
    const fits = template.every((part, i) => {
      if (part.startsWith(':')) return true;
      statics++;
      return part.toLowerCase() === segments[i]?.toLowerCase();
    });
    if (fits && statics > bestStatic) {
      best = template;
      bestStatic = statics;
    }
  }
  return `/${(best ?? segments.map(() => ':param')).join('/')}`;
}

/** The route label: the template of the route that answered, or `unmatched`; never the raw path. */
export function routeLabel(req: Request): string {
  const routePath = (req.route as { path?: unknown } | undefined)?.path;
  if (routePath === undefined) return 'unmatched';
  // A route's own path is written in the code (a string, an array of them or a regexp).
  const own = Array.isArray(routePath)
    ? routePath.map(String).join(',')
    : routePath instanceof RegExp
      ? routePath.source
      : typeof routePath === 'string'
        ? routePath
        : 'unknown';
  const route = `${baseTemplate(req.baseUrl, req.app)}${own === '/' ? '' : own}`;
  return route === '' ? '/' : route;
}

/** Prometheus metrics in a registry of this app's own (several apps may share a process in tests). */
export function createHttpMetrics(options: { defaultMetrics?: boolean } = {}): HttpMetrics {
  const registry = new Registry();
  if (options.defaultMetrics) collectDefaultMetrics({ register: registry });
  const labelNames = ['method', 'route', 'status_code'] as const;
  const requests = new Counter({
    name: 'gatehouse_http_requests_total',
    help: 'HTTP requests by route and status',
    labelNames,
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'gatehouse_http_request_duration_seconds',
    help: 'HTTP request latency by route and status',
    labelNames,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  });
  const middleware = (req: Request, res: Response, next: NextFunction): void => {
    const end = duration.startTimer();
    res.once('finish', () => {
      // Never throws out: an exception here would be an uncaughtException after the answer went out.
      try {
        // No prototype: a polluted Object.prototype cannot add label names.
        const labels = Object.assign(Object.create(null) as Record<string, string>, {
          method: methodLabel(req.method),
          route: routeLabel(req),
          status_code: statusLabel(res.statusCode),
        });
        requests.inc(labels);
        end(labels);
      } catch (error) {
        reportHookFailure(req, 'metrics', error);
      }
    });
    next();
  };
  return { registry, middleware };
}
