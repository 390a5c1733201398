import { jwtVerify } from 'jose';
import type { EntityManager } from 'typeorm';
import { z } from 'zod';
import type { Database } from '../../db/database.js';
import { resolveTenantBySession } from '../../db/resolvers.js';
import { rolesForUser } from '../../directory/roles.service.js';
import { User } from '../../directory/user.entity.js';
import type { Session } from '../../sessions/session.entity.js';
import { findActiveSession } from '../../sessions/sessions.service.js';
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
 * The session behind a token, if it is live, belongs to `tid` and `sub`, the
 * person is active, and neither the token's app (`client_id`) nor the
 * session's app has been deleted.
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
    const session = await findActiveSession(em, claims.sid, now);
    if (!session || session.userId !== claims.sub) return null;
    if (await anyAppDeleted(em, [claims.client_id, session.appId])) return null;
    const user = await em.findOneBy(User, { id: session.userId });
    if (!user || user.status !== 'active' || !(await tenantIsActive(em, tenantId))) return null;
    return { tenantId, session, user, roles: await rolesForSession(em, session) };
  });
}

/** Whether one of these apps is deleted (or unknown): its tokens and sessions no longer count. */
export async function anyAppDeleted(em: EntityManager, ids: (string | null | undefined)[]): Promise<boolean> {
  const wanted = [...new Set(ids.filter((id): id is string => typeof id === 'string'))];
  if (wanted.length === 0) return false;
  const rows = await em.query<{ id: string }[]>(
    'SELECT id FROM apps WHERE id = ANY($1::uuid[]) AND deleted_at IS NULL',
    [wanted],
  );
  return rows.length !== wanted.length;
}

/** A suspended or deleted tenant's sessions stop working, whatever their own state. */
export async function tenantIsActive(em: EntityManager, tenantId: string): Promise<boolean> {
  const rows = await em.query<{ status: string }[]>('SELECT status FROM tenants WHERE id = $1', [tenantId]);
  return rows[0]?.status === 'active';
}

/** The person's roles now: mapped from their groups, else the default role of the connection they used. */
export async function rolesForSession(em: EntityManager, session: Session): Promise<string[]> {
  const connections = session.connectionId
    ? await em.query<{ default_role: string }[]>('SELECT default_role FROM connections WHERE id = $1', [
        session.connectionId,
      ])
    : [];
  return rolesForUser(em, session.userId, connections[0]?.default_role ?? null);
}
