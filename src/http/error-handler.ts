import type { ErrorRequestHandler, Request, RequestHandler, Response } from 'express';
import { isDatabaseUnavailable, UNAVAILABLE_RETRY_AFTER_SECONDS } from '../db/pg-errors.js';
import { DomainError, type ErrorCode } from '../errors.js';

export const STATUS_BY_CODE: Record<ErrorCode, number> = {
  bad_request: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  payload_too_large: 413,
  rate_limited: 429,
  unavailable: 503,
  internal: 500,
  dns_record_not_found: 400,
  dns_record_mismatch: 400,
  dns_lookup_failed: 400,
  dns_unavailable: 503,
  idp_entity_id_in_use: 409,
  export_already_downloaded: 410,
  export_expired: 410,
  audit_chain_mismatch: 400,
};

/** Errors raised by express's own body parsers, mapped to domain errors. */
export function fromBodyParserError(error: unknown): DomainError | undefined {
  const type = (error as { type?: unknown } | null)?.type;
  if (type === 'entity.parse.failed')
    return new DomainError('bad_request', 'Malformed JSON in the request body');
  if (type === 'entity.too.large') return new DomainError('payload_too_large', 'Request body is too large');
  if (type === 'encoding.unsupported' || type === 'charset.unsupported')
    return new DomainError('bad_request', 'Unsupported body encoding');
  return undefined;
}

/** The message every surface gives when the database cannot be reached (503, Retry-After). */
export const UNAVAILABLE_MESSAGE = 'Gatehouse cannot reach its database right now; retry shortly';

/** Any thrown value as a domain error; an unreachable database is `unavailable`, other unknown errors `internal`. */
export function toDomainError(error: unknown): DomainError {
  if (error instanceof DomainError) return error;
  if (isDatabaseUnavailable(error))
    return new DomainError('unavailable', UNAVAILABLE_MESSAGE, { cause: error });
  return fromBodyParserError(error) ?? new DomainError('internal', 'Internal server error', { cause: error });
}

/** Sets Retry-After on a 503 answer (RFC 9110 §10.2.3): the outage is expected to pass. */
export function setRetryAfter(res: Response): void {
  if (!res.headersSent) res.setHeader('Retry-After', String(UNAVAILABLE_RETRY_AFTER_SECONDS));
}

export function logFailure(req: Request, error: DomainError): void {
  if (error.code === 'internal') {
    req.log.error({ err: error.cause ?? error, request_id: req.requestId }, 'request failed');
  } else if (error.code === 'unavailable' && error.message === UNAVAILABLE_MESSAGE) {
    req.log.warn({ request_id: req.requestId }, 'database unavailable; answered 503');
  } else {
    req.log.info({ code: error.code, detail: error.detail, request_id: req.requestId }, error.message);
  }
}

/** The JSON error surface (admin API and everything without a protocol of its own): `{ code, message }`. */
export const jsonErrorHandler: ErrorRequestHandler = (error: unknown, req, res, _next) => {
  const domainError = toDomainError(error);
  logFailure(req, domainError);
  if (res.headersSent) return;
  const status = STATUS_BY_CODE[domainError.code];
  if (status === 503) setRetryAfter(res);
  res
    .status(status)
    .json({ code: domainError.code, message: domainError.message, request_id: req.requestId });
};

export const jsonNotFound: RequestHandler = (req, res) => {
  res.status(404).json({ code: 'not_found', message: 'No such endpoint', request_id: req.requestId });
};

/**
 * Every 503 carries Retry-After (RFC 9110 §10.2.3), whichever surface wrote
 * it — including answers a library sends for us (scimmy-routers' SCIM
 * errors): set as the status line is written, unless the handler set its own.
 */
export const retryAfterOnUnavailable: RequestHandler = (_req, res, next) => {
  const writeHead = res.writeHead.bind(res) as (...args: unknown[]) => Response;
  res.writeHead = ((...args: unknown[]) => {
    if (args[0] === 503 && !res.getHeader('Retry-After'))
      res.setHeader('Retry-After', String(UNAVAILABLE_RETRY_AFTER_SECONDS));
    return writeHead(...args);
  }) as Response['writeHead'];
  next();
};
