import SCIMMY from 'scimmy';
import type { AuditActor } from '../audit/audit.service.js';
import type { Database } from '../db/database.js';
import { DomainError } from '../errors.js';
import { GroupNameTakenError, UnknownMembersError } from '../directory/groups.service.js';
import { StaleVersionError, UserNameTakenError } from '../directory/users.service.js';
import type { FilterNode } from './scim-filter-parser.js';
import { isDatabaseUnavailable } from '../db/pg-errors.js';
import { UNAVAILABLE_MESSAGE } from '../http/error-handler.js';

export const ScimError = SCIMMY.Types.Error;
export type ScimError = InstanceType<typeof SCIMMY.Types.Error>;

/**
 * What a SCIM handler knows about its request. Built per request by
 * scimmy-routers' `context` callback (CONVENTIONS: scimmy's registry is global,
 * so the tenant travels here, never in module state).
 */
export interface ScimContext {
  tenantId: string;
  db: Database;
  /** `${baseUrl}/scim/v2/${tenantId}`: the base of every meta.location. */
  baseUrl: string;
  actor: AuditActor;
  requestId: string;
  sourceIp: string | undefined;
  /** The If-Match header, when sent (RFC 7644 §3.14). */
  ifMatch: string | undefined;
  maxPageSize: number;
  /** GATEHOUSE_SCIM_DELETE_ERASES: DELETE /Users/{id} erases the person's personal data too. */
  deleteErases?: boolean;
  /**
   * The request's `filter` (query or /.search body), parsed by our RFC 7644
   * §3.4.2.2 parser; scimmy never sees it (its lexer mangles escaped quotes).
   */
  filter?: FilterNode;
  setHeader(name: string, value: string): void;
  /** Logs an unexpected error with the request's id (never sent to the client). */
  logError(error: unknown): void;
  /**
   * Marks the answer as 503, the database unreachable: scimmy-routers' error handler cannot build that
   * message (scimmy's error statuses have no 503) and passes on a TypeError, so Gatehouse's handler
   * answers it (scim/scim.router.ts, scimErrorHandler).
   */
  unavailable(): void;
}

export function asContext(ctx: unknown): ScimContext {
  const c = ctx as Partial<ScimContext> | undefined;
  if (!c?.tenantId || !c.db) throw new ScimError(500, '', 'Internal server error');
  return c as ScimContext;
}

export const etagOf = (version: number) => `W/"${version}"`;

/** RFC 7232 §3.1 as RFC 7644 §3.14 uses it: any listed tag (weak or strong) or `*` matches. */
export function checkIfMatch(ifMatch: string | undefined, version: number): void {
  if (ifMatch === undefined) return;
  const tags = ifMatch.split(',').map((t) => t.trim());
  const matches = tags.some(
    (t) => t === '*' || t.replace(/^W\//, '').replace(/^"|"$/g, '') === String(version),
  );
  if (!matches) throw new ScimError(412, '', 'The resource has changed: its version does not match If-Match');
}

/** Maps what a handler threw to an RFC 7644 §3.12 error; unexpected errors are logged and hidden. */
export function toScimError(error: unknown, ctx: ScimContext): ScimError {
  if (error instanceof ScimError) return error;
  if (error instanceof StaleVersionError)
    return new ScimError(412, '', 'The resource has changed: its version does not match If-Match');
  if (error instanceof UserNameTakenError || error instanceof GroupNameTakenError)
    return new ScimError(409, 'uniqueness', error.message);
  if (error instanceof UnknownMembersError) return new ScimError(400, 'invalidValue', error.message);
  if (error instanceof DomainError) {
    if (error.code === 'not_found') return new ScimError(404, '', error.message);
    if (error.code === 'conflict') return new ScimError(409, '', error.message);
    if (error.code === 'bad_request') return new ScimError(400, 'invalidValue', error.message);
  }
  // An unreachable database is 503 (Retry-After set app-wide), never 500: docs/operations.md.
  if (isDatabaseUnavailable(error)) {
    ctx.unavailable();
    return new ScimError(503, '', UNAVAILABLE_MESSAGE);
  }
  ctx.logError(error);
  return new ScimError(500, '', 'Internal server error');
}

/** Runs a handler body, translating whatever it throws (DomainError, pg errors) to SCIM errors. */
export async function scimRun<T>(ctx: ScimContext, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    throw toScimError(error, ctx);
  }
}

/**
 * scimmy validates through its schema classes and throws TypeError with a
 * client-facing message (wrong type, missing userName, unknown attribute):
 * those are 400 invalidValue, not server errors.
 */
export function scimmyValidation<T>(fn: () => T): T {
  try {
    return fn();
  } catch (error) {
    if (error instanceof TypeError) throw new ScimError(400, 'invalidValue', error.message);
    throw error;
  }
}

export const notFound = (what: string, id: string | undefined) =>
  new ScimError(404, '', `${what} ${id ?? ''} not found`.replace(/\s+/g, ' ').trim());
