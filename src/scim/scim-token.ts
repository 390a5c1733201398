import { randomBytes, randomUUID } from 'node:crypto';
import argon2 from 'argon2';

/**
 * SCIM bearer tokens: `gh_scim_<token id, 32 hex>_<secret, 43 base64url>`.
 * The id locates the row (inside the path tenant's withTenant); the whole token
 * is stored argon2id-hashed and shown once. The prefix lets secret scanners
 * recognise a leaked token.
 */
export const SCIM_TOKEN_PREFIX = 'gh_scim_';
const FORMAT = /^gh_scim_([0-9a-f]{32})_([A-Za-z0-9_-]{43})$/;

export interface IssuedScimToken {
  id: string;
  token: string;
  hash: string;
}

export async function issueScimToken(): Promise<IssuedScimToken> {
  const id = randomUUID();
  const token = `${SCIM_TOKEN_PREFIX}${id.replaceAll('-', '')}_${randomBytes(32).toString('base64url')}`;
  return { id, token, hash: await argon2.hash(token, { type: argon2.argon2id }) };
}

/** The token id, when the token is well-formed; null otherwise (answer 401, look nothing up). */
export function scimTokenId(token: string): string | null {
  const m = FORMAT.exec(token);
  if (!m?.[1]) return null;
  const h = m[1];
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

export function verifyScimTokenHash(hash: string, token: string): Promise<boolean> {
  return argon2.verify(hash, token);
}
