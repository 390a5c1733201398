/**
 * Is tracing on before anything else loads? Run as `node --import
 * ./dist/src/observability/preload.js dist/src/main.js` (npm start, the
 * Dockerfile, spawned test servers): the instrumentations must be installed
 * before pg and http are first required. Without OTEL_EXPORTER_OTLP_ENDPOINT
 * it imports nothing.
 */
import { register } from 'node:module';
import { startTracing, tracingRequested } from './tracing.js';

if (tracingRequested(process.env)) {
  // ESM imports (our own `node:http` / `node:https` for outbound calls) are patched through
  // import-in-the-middle's loader hook; CommonJS requires (pg via TypeORM, express) through
  // require-in-the-middle, which the SDK installs itself.
  register('@opentelemetry/instrumentation/hook.mjs', import.meta.url);
  await startTracing(process.env);
}
