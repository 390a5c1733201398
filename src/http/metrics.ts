import type { NextFunction, Request, Response } from 'express';
import type { Options, Store } from 'express-rate-limit';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Database } from '../db/database.js';
import { addSignalSink, signals, type LoginMetrics, type Signals } from '../observability/signals.js';
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

/** SCIM resource endpoints (RFC 7644 §3.2, §3.4.3, §3.7, §4) as labelled; anything else is `other`. */
const SCIM_RESOURCES = new Map(
  ['Users', 'Groups', 'Me', 'Schemas', 'ResourceTypes', 'ServiceProviderConfig', 'Bulk', '.search'].map(
    (name) => [name.toLowerCase(), name === '.search' ? 'search' : name],
  ),
);
const SCIM_PREFIX = /^\/scim\/v2\/[^/?#]*(?:\/([^/?#]*))?/i;

/** The SCIM resource a request addressed (`/scim/v2/{tenant}/{resource}/…`), or null outside SCIM. */
export function scimResourceLabel(originalUrl: string): string | null {
  const match = SCIM_PREFIX.exec(originalUrl);
  if (!match) return null;
  const segment = match[1];
  if (segment === undefined || segment === '') return 'root';
  return SCIM_RESOURCES.get(segment.toLowerCase()) ?? 'other';
}

/** Reason codes and limiter names are identifiers we wrote; anything else is folded to `other`. */
const CODE = /^[a-z][a-z0-9_-]{0,63}$/;
const codeLabel = (value: string) => (CODE.test(value) ? value : 'other');
const LOGIN_PROTOCOLS = new Set<string>(['saml', 'oidc', 'none']);
const LOGIN_OUTCOMES = new Set<string>(['success', 'refused']);

/** No prototype: a polluted Object.prototype cannot add label names. */
const labels = <T extends Record<string, string>>(values: T): T =>
  Object.assign(Object.create(null) as T, values);

export interface MetricsOptions {
  /** prom-client's process and Node.js metrics (CPU, memory, event loop lag, GC, handles). */
  defaultMetrics?: boolean;
  /** The database whose pool and outboxes are reported at each scrape. */
  db?: Database;
  /**
   * Count this process's events (observability/signals.ts: revocations, outbox
   * deliveries, rate-limit rejections, transaction latency). One registry per
   * process does; `close()` unsubscribes.
   */
  processSignals?: boolean;
}

export interface ServiceMetrics extends HttpMetrics {
  /** Passed to the sso and completer deps: where sign-ins are counted. */
  logins: LoginMetrics;
  /** Unsubscribes from the process signals (tests that make several registries in one process). */
  close: () => void;
}

/** Prometheus metrics in a registry of this app's own (several apps may share a process in tests). */
export function createHttpMetrics(options: MetricsOptions = {}): ServiceMetrics {
  const registry = new Registry();
  if (options.defaultMetrics) collectDefaultMetrics({ register: registry });
  const registers = [registry];
  const labelNames = ['method', 'route', 'status_code'] as const;
  const requests = new Counter({
    name: 'gatehouse_http_requests_total',
    help: 'HTTP requests by route and status',
    labelNames,
    registers,
  });
  const duration = new Histogram({
    name: 'gatehouse_http_request_duration_seconds',
    help: 'HTTP request latency by route and status',
    labelNames,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers,
  });
  const scimOperations = new Counter({
    name: 'gatehouse_scim_operations_total',
    help: 'SCIM requests by resource endpoint, method and status',
    labelNames: ['resource', 'method', 'status_code'] as const,
    registers,
  });
  const loginsEnded = new Counter({
    name: 'gatehouse_logins_total',
    help: 'Sign-ins that ended, by protocol, outcome and reason code',
    labelNames: ['protocol', 'outcome', 'reason'] as const,
    registers,
  });
  const logins: LoginMetrics = {
    loginEnded: (protocol, outcome, reason) =>
      loginsEnded.inc(
        labels({
          protocol: LOGIN_PROTOCOLS.has(protocol) ? protocol : 'none',
          outcome: LOGIN_OUTCOMES.has(outcome) ? outcome : 'refused',
          reason: codeLabel(reason),
        }),
      ),
  };

  const middleware = (req: Request, res: Response, next: NextFunction): void => {
    // Timed by hand, not prom-client's startTimer: its end() merges labels into a plain object,
    // which a polluted Object.prototype would extend (the issue 8 defect).
    const started = performance.now();
    res.once('finish', () => {
      // Never throws out: an exception here would be an uncaughtException after the answer went out.
      try {
        const values = labels({
          method: methodLabel(req.method),
          route: routeLabel(req),
          status_code: statusLabel(res.statusCode),
        });
        requests.inc(values);
        duration.observe(values, (performance.now() - started) / 1000);
        const resource = scimResourceLabel(req.originalUrl);
        if (resource !== null)
          scimOperations.inc(labels({ resource, method: values.method, status_code: values.status_code }));
      } catch (error) {
        reportHookFailure(req, 'metrics', error);
      }
    });
    next();
  };

  const unsubscribe: (() => void)[] = [];
  if (options.processSignals) unsubscribe.push(addSignalSink(processSignalMetrics(registry)));
  if (options.db) databaseGauges(registry, options.db);
  if (options.db) certificateGauge(registry, options.db);
  return { registry, middleware, logins, close: () => unsubscribe.forEach((u) => u()) };
}

/** The counters and histograms fed by observability/signals.ts. */
function processSignalMetrics(registry: Registry): Partial<Signals> {
  const registers = [registry];
  const revoked = new Counter({
    name: 'gatehouse_sessions_revoked_total',
    help: 'Sessions revoked, by the scope of the revocation (session, user, connection, app, tenant)',
    labelNames: ['scope'] as const,
    registers,
  });
  const propagation = new Histogram({
    name: 'gatehouse_revocation_propagation_seconds',
    help: "Time from a revocation's NOTIFY on the revoking node to its receipt on this node",
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers,
  });
  const delivered = new Counter({
    name: 'gatehouse_outbox_delivered_total',
    help: 'Outbox deliveries that succeeded, by kind (logout, webhook)',
    labelNames: ['kind'] as const,
    registers,
  });
  const givenUp = new Counter({
    name: 'gatehouse_outbox_given_up_total',
    help: 'Outbox deliveries given up (permanent failure or attempts exhausted), by kind',
    labelNames: ['kind'] as const,
    registers,
  });
  const rateLimited = new Counter({
    name: 'gatehouse_rate_limit_rejections_total',
    help: 'Requests answered 429, by limiter',
    labelNames: ['limiter'] as const,
    registers,
  });
  const transactions = new Histogram({
    name: 'gatehouse_db_transaction_duration_seconds',
    help: 'Database transactions (withTenant, withPlatform, withResolvedTenant), including pool wait',
    labelNames: ['kind'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers,
  });
  const SCOPES = new Set(['session', 'user', 'connection', 'app', 'tenant']);
  const KINDS = new Set(['logout', 'webhook']);
  const TRANSACTIONS = new Set(['tenant', 'platform', 'resolved']);
  const oneOf = (set: Set<string>, value: string) => (set.has(value) ? value : 'other');
  return {
    sessionsRevoked: (scope, count) => revoked.inc(labels({ scope: oneOf(SCOPES, scope) }), count),
    revocationHeard: (seconds) => propagation.observe(seconds),
    outboxFinished: (kind, result) =>
      (result === 'delivered' ? delivered : givenUp).inc(labels({ kind: oneOf(KINDS, kind) })),
    rateLimited: (limiter) => rateLimited.inc(labels({ limiter: codeLabel(limiter) })),
    transactionEnded: (kind, seconds) =>
      transactions.observe(labels({ kind: oneOf(TRANSACTIONS, kind) }), seconds),
  };
}

/** Pool and outbox gauges, read at scrape time: one pool read and one cheap query. */
function databaseGauges(registry: Registry, db: Database): void {
  const registers = [registry];
  new Gauge({
    name: 'gatehouse_db_pool_connections',
    help: "This node's runtime pool connections, by state (in_use, idle)",
    labelNames: ['state'] as const,
    registers,
    collect() {
      const stats = db.poolStats();
      if (!stats) return;
      this.set(labels({ state: 'in_use' }), Math.max(0, stats.total - stats.idle));
      this.set(labels({ state: 'idle' }), stats.idle);
    },
  });
  new Gauge({
    name: 'gatehouse_db_pool_waiting',
    help: 'Requests waiting for a connection of the runtime pool',
    registers,
    collect() {
      this.set(db.poolStats()?.waiting ?? 0);
    },
  });
  // One query feeds both outbox gauges: the first collect of a scrape runs it, the second reuses it.
  let pending: Promise<OutboxStats[]> | null = null;
  const outboxStats = (): Promise<OutboxStats[]> => {
    pending ??= db
      .queryOutsideTenant<OutboxStats>(
        'SELECT kind, pending, oldest_age_seconds FROM outbox_pending_stats()',
        [],
      )
      .catch(() => [] as OutboxStats[])
      .finally(() => setTimeout(() => (pending = null), 0).unref());
    return pending;
  };
  new Gauge({
    name: 'gatehouse_outbox_pending',
    help: 'Outbox rows waiting for delivery, all tenants, by kind (logout, webhook)',
    labelNames: ['kind'] as const,
    registers,
    async collect() {
      for (const row of await outboxStats()) this.set(labels({ kind: row.kind }), Number(row.pending));
    },
  });
  new Gauge({
    name: 'gatehouse_outbox_oldest_pending_age_seconds',
    help: 'Age of the oldest outbox row waiting for delivery, by kind (0 when none)',
    labelNames: ['kind'] as const,
    registers,
    async collect() {
      for (const row of await outboxStats())
        this.set(labels({ kind: row.kind }), Number(row.oldest_age_seconds));
    },
  });
}

/**
 * Issue 16: IdP signing certificates of SAML connections, all tenants, expired or expiring within 7 or 30 days,
 * read at scrape time (connection_certificate_expiry_stats(), migration 1766400000000): counts only.
 */
function certificateGauge(registry: Registry, db: Database): void {
  new Gauge({
    name: 'gatehouse_connection_certificates_expiring',
    help: 'IdP signing certificates of SAML connections, all tenants, by status (expired, within_7d, within_30d)',
    labelNames: ['status'] as const,
    registers: [registry],
    async collect() {
      const rows = await db
        .queryOutsideTenant<{ status: string; certificates: string }>(
          'SELECT status, certificates FROM connection_certificate_expiry_stats()',
          [],
        )
        .catch(() => []);
      for (const row of rows)
        if (CERTIFICATE_STATUSES.includes(row.status as (typeof CERTIFICATE_STATUSES)[number]))
          this.set(labels({ status: row.status }), Number(row.certificates));
    },
  });
}
const CERTIFICATE_STATUSES = ['expired', 'within_7d', 'within_30d'] as const;

interface OutboxStats {
  kind: 'logout' | 'webhook';
  pending: string;
  oldest_age_seconds: number;
}

/**
 * A limiter's store that reports each rejection (observability/signals.ts).
 * express-rate-limit answers 429 exactly when the count after increment
 * exceeds a numeric `limit`, and so does the discovery probe's own consume
 * (tokens/rate-limits.ts), so counting here covers every limiter in one place.
 */
export function countingRejections<S extends Store>(store: S, limiter: string): S {
  let limit: number | undefined;
  return new Proxy(store, {
    get(target, property) {
      if (property === 'init')
        return (options: Options) => {
          limit = typeof options.limit === 'number' ? options.limit : undefined;
          return target.init?.(options);
        };
      if (property === 'increment')
        return async (key: string) => {
          const result = await target.increment(key);
          if (limit !== undefined && result.totalHits > limit) signals.rateLimited(limiter);
          return result;
        };
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}
