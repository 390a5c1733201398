import { pino, type Logger } from 'pino';

/** Query and form fields whose values never reach a log line. */
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
  'code_verifier',
  'password',
  'state',
  'logout_token',
]);

/** A URL as it may be logged: values of sensitive query parameters replaced. */
export function redactUrl(url: string): string {
  const q = url.indexOf('?');
  if (q < 0) return url;
  const params = new URLSearchParams(url.slice(q + 1));
  for (const key of [...params.keys()]) {
    if (SENSITIVE_PARAMS.has(key.toLowerCase())) params.set(key, '[redacted]');
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
];

export function createLogger(level: string, destination?: NodeJS.WritableStream): Logger {
  return pino(
    { level, redact: { paths: REDACT_PATHS, censor: '[redacted]' }, base: { service: 'gatehouse' } },
    destination as never,
  );
}
