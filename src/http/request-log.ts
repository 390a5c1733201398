import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { Logger } from 'pino';
import { redactUrl } from './logger.js';

declare module 'express-serve-static-core' {
  interface Request {
    /** This request's logger: every line carries the request id and the redacted URL. */
    log: Logger;
  }
}

/** Probes and scrapes are not worth a line each. */
const QUIET_PATHS = new Set(['/healthz', '/metrics']);

/**
 * Something in a response hook failed (a logger, a metric). The request is
 * already answered; the error is reported with the request id only and then
 * swallowed, because an exception out of a `finish` listener is an
 * uncaughtException and would stop the node for every tenant.
 */
export function reportHookFailure(req: Request, hook: string, error: unknown): void {
  try {
    const type = error instanceof Error ? error.name : typeof error;
    const message = error instanceof Error ? error.message.slice(0, 200) : undefined;
    req.log.error(
      { hook, error_type: type, error_message: message, request_id: req.requestId },
      'response hook failed',
    );
  } catch {
    // The logger itself failed: nothing more can be done without risking the process.
  }
}

/**
 * One access-log line per request, written when the response finishes or the
 * connection closes. Replaces pino-http, whose `finish` listener calls our
 * serializers and the logger with no guard around them: here the whole hook
 * is one try/catch. Only the method, the redacted URL, the status, a redirect's
 * redacted Location, the duration and the tenant id are logged; never headers
 * or bodies.
 */
export function requestLogger(logger: Logger): RequestHandler {
  return (req: Request, res: Response, next: NextFunction): void => {
    const started = performance.now();
    const request = { id: req.requestId, method: req.method, url: redactUrl(req.originalUrl) };
    req.log = logger.child({ request_id: req.requestId, req: request });
    if (QUIET_PATHS.has(req.path)) return next();

    let logged = false;
    const onDone = () => {
      if (logged) return;
      logged = true;
      try {
        const location = res.getHeader('location');
        const line = {
          res: {
            statusCode: res.statusCode,
            ...(typeof location === 'string' ? { location: redactUrl(location) } : {}),
          },
          responseTime: Math.round(performance.now() - started),
          tenant_id: req.tenantId,
          ...(res.writableFinished ? {} : { aborted: true }),
        };
        // 503 is a dependency outage answered as designed (docs/operations.md): a warning, not an error.
        if (res.statusCode === 503) req.log.warn(line, 'request unavailable');
        else if (res.statusCode >= 500) req.log.error(line, 'request errored');
        else req.log.info(line, res.writableFinished ? 'request completed' : 'request aborted');
      } catch (error) {
        reportHookFailure(req, 'request-log', error);
      }
    };
    res.once('finish', onDone);
    res.once('close', onDone);
    next();
  };
}
