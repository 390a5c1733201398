import { createHash } from 'node:crypto';

/**
 * SHA-256 of a string's UTF-8 bytes, base64url without padding: what Gatehouse
 * stores in place of a high-entropy value it must not keep in clear
 * (authorization codes, refresh tokens, completion tokens, browser-binding
 * cookies), and the key of its verified-secret caches. A fast hash suffices
 * only for values with 256 random bits; secrets that are checked rather than
 * looked up (client secrets, SCIM tokens) are stored argon2id-hashed.
 */
export function sha256Base64url(value: string): string {
  return createHash('sha256').update(value, 'utf8').digest('base64url');
}
