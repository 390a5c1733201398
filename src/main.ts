import type { Server } from 'node:http';
import { createApp } from './app.js';
import {
  aggregateWorkerMetrics,
  announceListening,
  attachWorker,
  isWorker,
  ownShutdownSignals,
  runPrimary,
  runsAsPrimary,
} from './cluster.js';
import { ConfigError, configWarnings, parseConfig, redactConfig } from './config/config.js';
import { outboundPolicy } from './outbound/pinned-request.js';
import { NotificationBus } from './db/notification-bus.js';
import { openDatabase } from './db/runtime.js';
import { ENTITIES } from './entities.js';
import { plainHttpWarning } from './http/browser-binding.js';
import { createLogger } from './http/logger.js';
import { createHttpMetrics } from './http/metrics.js';
import { stopTracing } from './observability/tracing.js';
import { timeRevocationPropagation } from './sessions/session-events.js';
import { startLogoutDelivery } from './sessions/backchannel-logout.js';
import { startCleanup } from './sessions/cleanup.js';
import { spKeyRolloverOptions, startMetadataRefresh } from './connections/metadata-refresh-sweep.js';
import { startCheckpoints } from './audit/checkpoint-worker.js';
import { checkpointKey } from './audit/checkpoint-key.js';
import { publishCheckpointWebhook } from './admin/audit-checkpoints.router.js';
import { EXPORT_POLL_MS, startExportWorker } from './offboarding/export-worker.js';
import { startPurgeSweep } from './offboarding/purge-sweep.js';
import { createSigningKeyStore } from './tokens/keys/key-store.js';
import { startWebhookDelivery } from './webhooks/webhook-delivery.js';

/** The one place that wires config -> database -> app -> listen. */
async function main(): Promise<void> {
  let config;
  try {
    config = parseConfig(process.env);
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`gatehouse: ${error.message}\n`);
      process.exit(2);
    }
    throw error;
  }
  const logger = createLogger(config.logLevel);
  // Observe, never handle: an exception that escaped every request guard leaves the process in an
  // unknown state, so Node still exits (code 1 or 7); this only puts the cause in the structured log.
  // Unhandled rejections arrive here too (--unhandled-rejections=throw, Node's default).
  process.on('uncaughtExceptionMonitor', (err, origin) => {
    logger.fatal({ err, origin }, 'uncaught exception; the process exits');
  });
  // Said once per start: by the single process, or by the primary before it forks (src/cluster.ts).
  if (!isWorker) {
    logger.info({ config: redactConfig(config) }, 'effective configuration');
    for (const warning of configWarnings(process.env)) logger.warn(warning);
    const plainHttp = plainHttpWarning(config.baseUrl);
    if (plainHttp) logger.warn(plainHttp);
  }
  // GATEHOUSE_WORKERS > 1: this process becomes the primary; each worker runs the rest of main().
  if (runsAsPrimary(config)) return runPrimary(config, logger);

  // Migrates under a lock and joins the installation: a node that does not hold the first
  // node's secrets stops here with a message saying what to share (db/installation.ts).
  const runtime = await openDatabase(config, ENTITIES, (line) =>
    logger.debug({ component: 'postgres' }, line),
  );
  const { secrets } = runtime;
  if (runtime.migrationsApplied.length > 0)
    logger.info({ migrations: runtime.migrationsApplied }, 'migrations applied');

  // This node's LISTEN connection: revocations and SCIM-token revocations reach it from every node.
  // LISTEN needs a session of its own: behind PgBouncer in transaction mode, a direct URL (docs/operations.md).
  const notifications = new NotificationBus({
    url: config.databaseListenUrl ?? runtime.appUrl,
    onError: (err) => logger.warn({ err }, 'notification bus error'),
  });
  await notifications.start();
  // One key store per process, shared by the token endpoints and back-channel logout.
  const signingKeys = createSigningKeyStore(config, runtime.db, secrets.masterKey);
  const logoutDelivery = startLogoutDelivery({
    db: runtime.db,
    signer: signingKeys,
    issuer: config.baseUrl,
    notifications,
    logger: logger.child({ component: 'backchannel-logout' }),
    maxAttempts: config.backchannelLogout.maxAttempts,
    timeoutMs: config.backchannelLogout.timeoutSeconds * 1000,
    outbound: outboundPolicy(config.outboundFetch),
  });
  const webhookDelivery = startWebhookDelivery({
    db: runtime.db,
    masterKey: secrets.masterKey,
    notifications,
    logger: logger.child({ component: 'webhooks' }),
    maxAttempts: config.webhooks.maxAttempts,
    timeoutMs: config.webhooks.timeoutSeconds * 1000,
    outbound: outboundPolicy(config.outboundFetch),
  });
  // Expired codes, tokens, login state and old outbox rows; every node sweeps (safe in parallel).
  const cleanup = startCleanup({
    db: runtime.db,
    logger: logger.child({ component: 'cleanup' }),
    intervalMs: config.cleanup.intervalSeconds * 1000,
    graceMs: config.cleanup.graceSeconds * 1000,
    outboxRetentionMs: config.cleanup.outboxRetentionSeconds * 1000,
  });
  void cleanup.runNow();
  // IdP metadata re-fetched and certificate expiry announced (issue 16); every node, claims rows with SKIP LOCKED.
  const metadataRefresh = startMetadataRefresh({
    db: runtime.db,
    fetch: outboundPolicy(config.outboundFetch),
    xmlLimits: config.sso.xmlLimits,
    overlapMs: config.metadataRefresh.certOverlapSeconds * 1000,
    spKeyRollover: spKeyRolloverOptions(config, secrets.masterKey),
    intervalMs: config.metadataRefresh.intervalSeconds * 1000,
    logger: logger.child({ component: 'metadata-refresh' }),
  });
  void metadataRefresh.runNow();
  // Signed heads of every tenant's audit chain that grew (issue 12); every node, idempotent.
  const checkpoints = startCheckpoints({
    db: runtime.db,
    key: await checkpointKey(secrets.masterKey),
    intervalMs: config.auditCheckpoints.intervalSeconds * 1000,
    publish: publishCheckpointWebhook,
    logger: logger.child({ component: 'audit-checkpoints' }),
  });
  // Requested tenant exports, produced asynchronously (issue 12); every node, each export claimed once.
  const exportWorker = startExportWorker({
    db: runtime.db,
    masterKey: secrets.masterKey,
    baseUrl: config.baseUrl,
    checkpointKey: (await checkpointKey(secrets.masterKey)).publicJwk,
    intervalMs: EXPORT_POLL_MS,
    logger: logger.child({ component: 'tenant-exports' }),
  });

  // Deleted tenants past GATEHOUSE_TENANT_RETENTION are purged (issue 12); every node, one purge per tenant.
  const purgeSweep = startPurgeSweep({
    db: runtime.db,
    purgeAudit: config.tenantDeletion.purgeAudit,
    checkpointKey: await checkpointKey(secrets.masterKey),
    publish: publishCheckpointWebhook,
    intervalMs: config.cleanup.intervalSeconds * 1000,
    logger: logger.child({ component: 'tenant-purge' }),
  });

  // One registry per process: Node and process defaults, pool and outbox gauges, and the
  // process's own events (revocations, deliveries, rate limits, transactions).
  const metrics = createHttpMetrics({ defaultMetrics: true, db: runtime.db, processSignals: true });
  // A worker's /metrics answers for every worker of this node (src/cluster.ts).
  aggregateWorkerMetrics(metrics.registry);
  timeRevocationPropagation(notifications);
  const app = createApp({ config, db: runtime.db, secrets, logger, signingKeys, notifications, metrics });
  const server: Server = await new Promise((resolve) => {
    const s = app.listen(config.port, config.host, () => resolve(s));
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  if (!isWorker) announceListening(config, port, secrets);

  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    // Past the deadline, whatever is still open is cut; exit stays 0 (an orderly stop).
    const deadline = setTimeout(() => {
      logger.warn('drain deadline reached; closing remaining connections');
      server.closeAllConnections();
    }, config.shutdownTimeoutSeconds * 1000);
    deadline.unref();
    // Stop accepting; keep-alive sockets that are idle close now, busy ones after their response.
    server.close(() => {
      clearTimeout(deadline);
      // Spans are flushed while the workers stop, before the database goes: the embedded
      // database's own exit hook ends the process once it has stopped (a no-op without tracing).
      void Promise.all([
        logoutDelivery.stop(),
        cleanup.stop(),
        metadataRefresh.stop(),
        checkpoints.stop(),
        exportWorker.stop(),
        purgeSweep.stop(),
        webhookDelivery.stop(),
        stopTracing(),
      ])
        .then(() => notifications.close())
        .then(() => runtime.close())
        .then(() => {
          logger.info('stopped');
          process.exit(0);
        })
        .catch((err: unknown) => {
          logger.error({ err }, 'error while stopping');
          process.exit(1);
        });
    });
    server.closeIdleConnections();
  };
  ownShutdownSignals();
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  attachWorker(server, shutdown);
}

main().catch((error: unknown) => {
  process.stderr.write(
    `gatehouse: failed to start: ${error instanceof Error ? error.message : String(error)}\n`,
  );
  process.exit(1);
});
