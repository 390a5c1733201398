/**
 * Domain errors: a code from a closed set, an internal detail (never sent to
 * clients as-is) and a cause. Each HTTP surface translates them at its edge.
 */
export type ErrorCode =
  | 'bad_request'
  | 'unauthorized'
  | 'forbidden'
  | 'not_found'
  | 'conflict'
  | 'payload_too_large'
  | 'rate_limited'
  | 'unavailable'
  | 'internal'
  // Specific refusals a client (the CLI) tells apart: domain verification, connection create.
  | 'dns_record_not_found'
  | 'dns_record_mismatch'
  | 'dns_lookup_failed'
  | 'dns_unavailable'
  | 'idp_entity_id_in_use'
  // Tenant export and import (src/offboarding).
  | 'export_already_downloaded'
  | 'export_expired'
  | 'audit_chain_mismatch';

export class DomainError extends Error {
  constructor(
    readonly code: ErrorCode,
    /** Safe to show to the caller. */
    message: string,
    options: { detail?: string; cause?: unknown } = {},
  ) {
    super(message, { cause: options.cause });
    this.name = new.target.name;
    this.detail = options.detail;
  }
  /** Internal explanation: logged, never sent. */
  readonly detail: string | undefined;
}

export class NotFoundError extends DomainError {
  constructor(what: string, options: { detail?: string; cause?: unknown } = {}) {
    super('not_found', `${what} not found`, options);
  }
}

export class ConflictError extends DomainError {
  constructor(message: string, options: { detail?: string; cause?: unknown } = {}) {
    super('conflict', message, options);
  }
}

export class BadRequestError extends DomainError {
  constructor(message: string, options: { detail?: string; cause?: unknown } = {}) {
    super('bad_request', message, options);
  }
}
