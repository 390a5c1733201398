import { randomBytes } from 'node:crypto';
import { sha256Base64url } from '../../digest.js';

/**
 * Authorization codes and refresh tokens: `<prefix><session id>.<256 random bits>`.
 * The session id lets resolveTenantBySession find the tenant before withTenant
 * (docs/architecture.md); the random part makes the value unguessable. Only a SHA-256
 * of the whole value is stored: with 256 bits of entropy a fast hash cannot be
 * brute-forced, and a slow one (argon2) would need a lookup key besides.
 * The prefixes let secret scanners recognise leaked values.
 */
export const CODE_PREFIX = 'gh_code_';
export const REFRESH_TOKEN_PREFIX = 'gh_rt_';

const SHAPE = /^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\.([A-Za-z0-9_-]{43})$/;

export function mintSessionToken(prefix: string, sessionId: string): { token: string; hash: string } {
  const token = `${prefix}${sessionId}.${randomBytes(32).toString('base64url')}`;
  return { token, hash: sha256Base64url(token) };
}

/** The session id and hash of a well-formed value with this prefix, else null. */
export function parseSessionToken(prefix: string, token: string): { sessionId: string; hash: string } | null {
  if (!token.startsWith(prefix)) return null;
  const match = SHAPE.exec(token.slice(prefix.length));
  if (!match?.[1]) return null;
  return { sessionId: match[1], hash: sha256Base64url(token) };
}
