import { jwtVerify } from 'jose';
import { z } from 'zod';
import { OAuthError } from '../oauth-errors.js';
import type { SigningKeyStore } from '../keys/key-store.js';
import { SIGNING_ALGS } from '../keys/signing-keys.service.js';
import { ACCESS_TOKEN_TYP } from '../grants/token-claims.js';

/**
 * Verifying Gatehouse's own access tokens (introspection, userinfo, revocation,
 * tenant admins): signature by a published key with the algorithm pinned to
 * the key's own (no `none`, no HS*), issuer, `typ: at+jwt` (so an ID token is
 * never accepted as an access token), expiry — then the session row, so a
 * revoked session or a deactivated person is refused at once on every node.
 */
const claimsSchema = z.object({
  iss: z.string(),
  sub: z.uuid(),
  aud: z.union([z.string(), z.array(z.string())]),
  client_id: z.uuid(),
  exp: z.number(),
  iat: z.number(),
  jti: z.string(),
  tid: z.uuid(),
  sid: z.uuid(),
  scope: z.string().default(''),
  roles: z.array(z.string()).default([]),
});

export type AccessTokenClaims = z.infer<typeof claimsSchema>;

const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

export function looksLikeJwt(token: string): boolean {
  return JWT_SHAPE.test(token);
}

export async function verifyAccessToken(
  keys: SigningKeyStore,
  issuer: string,
  token: string,
  now: Date,
): Promise<AccessTokenClaims> {
  if (!looksLikeJwt(token)) throw new OAuthError('invalid_token', 'The access token is invalid');
  try {
    const { payload } = await jwtVerify(token, keys.publishedKey, {
      issuer,
      typ: ACCESS_TOKEN_TYP,
      algorithms: [...SIGNING_ALGS],
      currentDate: now,
      requiredClaims: ['sub', 'aud', 'exp', 'iat', 'jti'],
    });
    return claimsSchema.parse(payload);
  } catch (error) {
    throw new OAuthError('invalid_token', 'The access token is invalid or has expired', {
      detail: error instanceof Error ? error.message : 'invalid',
    });
  }
}
