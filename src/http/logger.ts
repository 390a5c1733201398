import { pino, stdSerializers, type Logger } from 'pino';
import { currentTenantId } from '../db/tenant-context.js';

/**
 * Query and form fields whose values never reach a log line: credentials,
 * one-time values, protocol messages, and anything that names a person
 * (an email in `login_hint`, a SCIM filter such as `userName eq "alice@…"`).
 * Compared lowercased, with any `[…]` suffix dropped (`email[]=` is `email`).
 */
const SENSITIVE_PARAMS = new Set([
  'code',
  'samlresponse',
  'samlrequest',
  'relaystate',
  'token',
  'access_token',
  'id_token',
  'refresh_token',
  'id_token_hint',
  'client_secret',
  'client_assertion',
  'code_verifier',
  'password',
  'state',
  'logout_token',
  'handoff',
  'login',
  // Names a person (OIDC Core §3.1.2.1 login_hint; /login?email=; SCIM filters and user names).
  'login_hint',
  'email',
  'username',
  'user_name',
  'filter',
  // The customer's domain: not personal, but client-chosen and often an email pasted whole.
  'domain_hint',
]);

const isSensitive = (key: string) => SENSITIVE_PARAMS.has(key.toLowerCase().replace(/\[.*$/, ''));

/** A URL as it may be logged: values of sensitive query parameters replaced. */
export function redactUrl(url: string): string {
  const q = url.indexOf('?');
  if (q < 0) return url;
  const params = new URLSearchParams(url.slice(q + 1));
  for (const key of new Set(params.keys())) {
    if (isSensitive(key)) params.set(key, '[redacted]');
  }
  return `${url.slice(0, q)}?${params.toString()}`;
}

/** Paths pino censors in any object it logs. */
export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-gatehouse-admin-token"]',
  'res.headers["set-cookie"]',
  '*.SAMLResponse',
  '*.SAMLRequest',
  '*.password',
  '*.secret',
  '*.client_secret',
  '*.clientSecret',
  '*.token',
  '*.access_token',
  '*.refresh_token',
  '*.id_token',
  '*.code',
  '*.adminToken',
  '*.masterKey',
  '*.email',
  '*.login_hint',
];

/**
 * The last line of defence, applied to every serialized line: whatever a
 * caller passed by mistake, an email address, a Gatehouse secret (its
 * recognisable `gh_…_` prefix) or a JWT does not reach the log. Each pattern
 * starts only where a run of its characters starts (lookbehind), so a long
 * hostile URL costs linear time.
 */
const SCRUBBERS: [RegExp, string][] = [
  [/(?<![\w.%+-])[\w.%+-]+(?:@|%40)[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}/gi, '[email]'],
  [/gh_(admin|scim|whsec|secret|code|rt)_[\w-]+/g, 'gh_$1_[redacted]'],
  [/(?<![\w-])eyJ[\w-]*\.[\w-]*\.[\w-]*/g, '[jwt]'],
];

export function scrubLine(line: string): string {
  let out = line;
  for (const [pattern, replacement] of SCRUBBERS) out = out.replace(pattern, replacement);
  return out;
}

/**
 * Errors as logged: pino's standard shape without the bound values a database
 * error carries (TypeORM's `parameters` hold user names, emails and token
 * hashes; PostgreSQL's `detail` repeats the conflicting key's value).
 */
function errSerializer(error: unknown): unknown {
  const shown = stdSerializers.err(error as Error) as unknown as Record<string, unknown>;
  if (typeof shown !== 'object' || shown === null) return shown;
  delete shown.parameters;
  delete shown.driverError;
  if (typeof shown.severity === 'string' || typeof shown.routine === 'string') delete shown.detail;
  return shown;
}

export function createLogger(level: string, destination?: NodeJS.WritableStream): Logger {
  return pino(
    {
      level,
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      base: { service: 'gatehouse' },
      serializers: { err: errSerializer },
      hooks: { streamWrite: scrubLine },
      // Inside a tenant's transaction every line carries its id (db/tenant-context.ts); a line that
      // names its own tenant_id keeps it (the log object wins over the mixin).
      mixin: () => {
        const tenantId = currentTenantId();
        return tenantId ? { tenant_id: tenantId } : {};
      },
      // One key, not two: the line's own fields override the mixin's.
      mixinMergeStrategy: (mergeObject: object, mixinObject: object) =>
        Object.assign(mixinObject, mergeObject),
    },
    destination as never,
  );
}
