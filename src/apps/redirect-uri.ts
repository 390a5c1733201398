/**
 * Redirect URIs of registered apps (RFC 6749 §3.1.2, RFC 9700 §4.1.3): absolute,
 * https — or http on the loopback interface for development and native apps
 * (RFC 8252 §7.3) — no fragment, no credentials, no wildcard; matched as exact
 * strings, never by prefix or pattern.
 */
const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]']);

/** Why a URI cannot be registered, or null when it can. */
export function redirectUriProblem(uri: string): string | null {
  // eslint-disable-next-line no-control-regex
  if (/[\s\u0000-\u001f\u007f]/.test(uri)) return 'must not contain whitespace or control characters';
  const url = URL.parse(uri);
  if (!url) return 'must be an absolute URL';
  if (uri.includes('#')) return 'must not contain a fragment';
  if (url.username || url.password) return 'must not contain credentials';
  if (url.hostname.includes('*')) return 'must not contain a wildcard';
  if (url.protocol === 'https:' && url.hostname) return null;
  if (url.protocol === 'http:' && LOOPBACK_HOSTS.has(url.hostname)) return null;
  return 'must use https (http only for localhost, 127.0.0.1 or [::1])';
}

/** Exact string comparison against the registered list: the only matching there is. */
export function redirectUriMatches(registered: readonly string[], given: string): boolean {
  return registered.includes(given);
}
