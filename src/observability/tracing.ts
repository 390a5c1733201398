/**
 * Does this process export traces, and how? OpenTelemetry starts only when
 * `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is
 * set; otherwise nothing is imported and @opentelemetry/api stays a no-op, so
 * the spans in src/ cost a function call.
 *
 * Started from `preload.ts` (`node --import`), before the app's modules load:
 * the pg and http instrumentations patch those modules when they are first
 * required, so starting later would miss them.
 */

export interface Tracing {
  /** Flushes pending spans; called on an orderly stop. */
  shutdown(): Promise<void>;
}

let running: Tracing | null = null;

/** Whether the environment asks for traces (OTLP spec: the generic or the traces-only endpoint). */
export function tracingRequested(env: NodeJS.ProcessEnv): boolean {
  return Boolean(env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim() || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?.trim());
}

export async function startTracing(env: NodeJS.ProcessEnv): Promise<Tracing | null> {
  if (running || !tracingRequested(env)) return running;
  // Loaded only when asked for: an unset endpoint means zero cost, not an idle exporter.
  const [{ NodeSDK }, { OTLPTraceExporter }, { BatchSpanProcessor }, http, pg, express, resources] =
    await Promise.all([
      import('@opentelemetry/sdk-node'),
      import('@opentelemetry/exporter-trace-otlp-http'),
      import('@opentelemetry/sdk-trace-base'),
      import('@opentelemetry/instrumentation-http'),
      import('@opentelemetry/instrumentation-pg'),
      import('@opentelemetry/instrumentation-express'),
      import('@opentelemetry/resources'),
    ]);
  const delay = Number(env.OTEL_BSP_SCHEDULE_DELAY);
  const sdk = new NodeSDK({
    resource: resources.resourceFromAttributes({
      'service.name': env.OTEL_SERVICE_NAME?.trim() || 'gatehouse',
    }),
    // OTLP/HTTP with JSON bodies (this exporter package); the URL comes from the OTEL_EXPORTER_OTLP_* variables.
    spanProcessors: [
      new BatchSpanProcessor(new OTLPTraceExporter(), {
        scheduledDelayMillis: Number.isFinite(delay) && delay > 0 ? delay : 5000,
      }),
    ],
    instrumentations: [
      new http.HttpInstrumentation({
        // Probes and scrapes would drown the traces that matter.
        ignoreIncomingRequestHook: (req) => /^\/(healthz|readyz|metrics)(\?|$)/.test(req.url ?? ''),
        // Every query value of an incoming request is redacted (login_hint, email, code, state,
        // SAMLRequest …), as in the request log (docs/security.md §7): merged after the defaults.
        startIncomingSpanHook: (req) => {
          const query = redactedQuery(req.url ?? '');
          return query === null ? {} : { 'url.query': query };
        },
      }),
      // Statement text only: parameter values (emails, token hashes) are never recorded.
      new pg.PgInstrumentation({ enhancedDatabaseReporting: false, requireParentSpan: false }),
      // Routers and handlers; one span per middleware would bury the request's own steps.
      new express.ExpressInstrumentation({ ignoreLayersType: [express.ExpressLayerType.MIDDLEWARE] }),
    ],
  });
  sdk.start();
  running = { shutdown: () => sdk.shutdown() };
  return running;
}

/** The query of a request URL with every value replaced, or null when there is none. */
export function redactedQuery(url: string): string | null {
  const at = url.indexOf('?');
  if (at < 0) return null;
  const params = new URLSearchParams(url.slice(at + 1));
  const redacted = new URLSearchParams();
  // Keys are kept when they look like parameter names; anything else a client wrote is dropped.
  for (const key of params.keys())
    redacted.append(/^[A-Za-z0-9_.-]{1,40}$/.test(key) ? key : 'other', 'REDACTED');
  return redacted.toString();
}

/** Flushes and stops the SDK if it was started (main.ts, on SIGTERM); a no-op otherwise. */
export async function stopTracing(limitMs = 2000): Promise<void> {
  const tracing = running;
  running = null;
  if (!tracing) return;
  // An unreachable collector must not hold the stop past the drain deadline: spans are best effort.
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    tracing.shutdown().catch(() => undefined),
    new Promise<void>((resolve) => (timer = setTimeout(resolve, limitMs).unref())),
  ]);
  clearTimeout(timer);
}
