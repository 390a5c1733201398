import { jwtVerify } from 'jose';
import type { EntityManager } from 'typeorm';
import { z } from 'zod';
import type { Database } from '../../db/database.js';
import { resolveTenantBySession } from '../../db/resolvers.js';
import { rolesForLogin } from '../../directory/roles.service.js';
import { User } from '../../directory/user.entity.js';
import type { Session } from '../../sessions/session.entity.js';
import { liveGrant, type LiveGrantInput, type NotLiveReason } from '../../sessions/live-grant.js';
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

export interface LiveSession {
  tenantId: string;
  session: Session;
  user: User;
  roles: string[];
}

/**
 * The session behind a token, if it is live (sessions/live-grant.ts: not
 * revoked or expired, the person active, the tenant live, neither the token's
 * app — `client_id` — nor the session's app deleted), belongs to `tid` and to
 * `sub`; with the person and their roles now.
 */
export async function liveSession(
  db: Database,
  claims: { tid: string; sid: string; sub: string; client_id?: string },
  now: Date,
): Promise<LiveSession | null> {
  const tenantId = await resolveTenantBySession(db, claims.sid);
  // idor check: the session must live in the tenant the token names
  if (!tenantId || tenantId !== claims.tid) return null;
  return db.withTenant(tenantId, async (em) => {
    const grant = await liveGrantWithPerson(em, {
      sessionId: claims.sid,
      userId: claims.sub,
      appId: claims.client_id,
      now,
    });
    return grant.live ? { tenantId, session: grant.session, user: grant.user, roles: grant.roles } : null;
  });
}

export type LiveGrantWithPerson =
  { live: true; session: Session; user: User; roles: string[] } | { live: false; reason: NotLiveReason };

/**
 * liveGrant (the one "still true?" answer) plus what a token carries about the
 * person: their record and their roles now. In the caller's tenant transaction.
 */
export async function liveGrantWithPerson(
  em: EntityManager,
  input: LiveGrantInput,
): Promise<LiveGrantWithPerson> {
  const grant = await liveGrant(em, input);
  if (!grant.live) return grant;
  const user = await em.findOneBy(User, { id: grant.session.userId });
  // liveGrant saw the person active in this transaction; a row gone since is not.
  if (!user) return { live: false, reason: 'person_not_active' };
  return { live: true, session: grant.session, user, roles: await rolesForSession(em, grant.session) };
}

/** The person's roles now: mapped from their groups, else the default role of the connection they used. */
export async function rolesForSession(em: EntityManager, session: Session): Promise<string[]> {
  return rolesForLogin(em, session.userId, session.connectionId);
}
