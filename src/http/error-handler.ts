import type { ErrorRequestHandler, Request, RequestHandler } from 'express';
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

/** Any thrown value as a domain error; unknown errors become a generic `internal`. */
export function toDomainError(error: unknown): DomainError {
  if (error instanceof DomainError) return error;
  return fromBodyParserError(error) ?? new DomainError('internal', 'Internal server error', { cause: error });
}

export function logFailure(req: Request, error: DomainError): void {
  if (error.code === 'internal') {
    req.log.error({ err: error.cause ?? error, request_id: req.requestId }, 'request failed');
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
  res
    .status(status)
    .json({ code: domainError.code, message: domainError.message, request_id: req.requestId });
};

export const jsonNotFound: RequestHandler = (req, res) => {
  res.status(404).json({ code: 'not_found', message: 'No such endpoint', request_id: req.requestId });
};
