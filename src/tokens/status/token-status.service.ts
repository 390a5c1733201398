import type { Config } from '../../config/config.js';
import type { Database } from '../../db/database.js';
import { resolveTenantBySession } from '../../db/resolvers.js';
import { findSession } from '../../sessions/sessions.service.js';
import { inSessionTenant, liveGrantWithPerson, liveSession } from '../live-session.js';
import { looksLikeJwt, verifyAccessToken, type AccessTokenClaims } from './access-token.js';
import type { App } from '../../apps/app.entity.js';
import { OAuthError } from '../oauth-errors.js';
import { parseSessionToken, REFRESH_TOKEN_PREFIX } from '../grants/opaque-tokens.js';
import { RefreshToken } from '../grants/refresh-token.entity.js';
import { revokeSessionAudited } from '../session-revocation.js';
import type { SigningKeyStore } from '../keys/key-store.js';

/**
 * Introspection (RFC 7662) and revocation (RFC 7009) for registered apps. An
 * app learns about, and revokes, only tokens issued to itself; anything else
 * is simply inactive. Both read the session row, so a revocation anywhere is
 * seen at once on every node.
 */
export interface TokenStatusDeps {
  config: Config;
  db: Database;
  keys: SigningKeyStore;
}

export type IntrospectionResponse = { active: false } | ({ active: true } & Record<string, unknown>);

const INACTIVE: IntrospectionResponse = { active: false };
const seconds = (date: Date) => Math.floor(date.getTime() / 1000);

export async function introspectToken(
  deps: TokenStatusDeps,
  app: App,
  token: string,
  now: Date,
): Promise<IntrospectionResponse> {
  if (token.startsWith(REFRESH_TOKEN_PREFIX))
    return introspectRefreshToken(deps.db, app, token, now, deps.config);
  const claims = await ownAccessToken(deps, app, token, now);
  if (!claims) return INACTIVE;
  const live = await liveSession(deps.db, claims, now);
  if (!live) return INACTIVE;
  return {
    active: true,
    token_type: 'Bearer',
    iss: claims.iss,
    sub: claims.sub,
    aud: claims.aud,
    client_id: claims.client_id,
    scope: claims.scope,
    exp: claims.exp,
    iat: claims.iat,
    jti: claims.jti,
    tid: claims.tid,
    sid: claims.sid,
    roles: live.roles,
    ...(live.user.email ? { username: live.user.email } : {}),
  };
}

async function introspectRefreshToken(
  db: Database,
  app: App,
  token: string,
  now: Date,
  config: Config,
): Promise<IntrospectionResponse> {
  const parsed = parseSessionToken(REFRESH_TOKEN_PREFIX, token);
  if (!parsed) return INACTIVE;
  // One round trip (issue 13): BEGIN, the session's tenant, and the token read with the live grant, with COMMIT.
  return db.withResolvedTenant(async (em, enterTenant): Promise<IntrospectionResponse> => {
    const [tenantId, { grant, row }] = await inSessionTenant(enterTenant, parsed.sessionId, () =>
      liveGrantWithPerson<{ refresh: StoredRefreshToken | null }>(
        em,
        { sessionId: parsed.sessionId, appId: app.id, now },
        {
          columns: `(SELECT to_jsonb(r) FROM refresh_tokens r
                      WHERE r.token_hash = $3 AND r.session_id = $1) AS refresh`,
          params: [parsed.hash],
          final: true,
        },
      ),
    );
    const stored = row.refresh;
    if (!tenantId || !stored || stored.used_at) return INACTIVE;
    const expiresAt = new Date(stored.expires_at);
    if (expiresAt <= now || stored.app_id !== app.id || !grant.live) return INACTIVE;
    const { session } = grant;
    return {
      active: true,
      token_type: 'refresh_token',
      iss: config.baseUrl,
      sub: session.userId,
      client_id: app.id,
      scope: stored.scope,
      exp: seconds(expiresAt),
      iat: seconds(new Date(stored.created_at)),
      tid: tenantId,
      sid: session.id,
    };
  });
}

/** A refresh_tokens row as to_jsonb writes it (timestamps as text). */
interface StoredRefreshToken {
  app_id: string;
  scope: string;
  created_at: string;
  expires_at: string;
  used_at: string | null;
}

/** The claims of a valid access token issued to this app, else null. */
async function ownAccessToken(
  deps: TokenStatusDeps,
  app: App,
  token: string,
  now: Date,
): Promise<AccessTokenClaims | null> {
  if (!looksLikeJwt(token)) return null;
  try {
    const claims = await verifyAccessToken(deps.keys, deps.config.baseUrl, token, now);
    return claims.client_id === app.id ? claims : null;
  } catch (error) {
    if (error instanceof OAuthError) return null;
    throw error;
  }
}

/**
 * RFC 7009: revoking a refresh or access token ends the session behind it
 * (§2.1: the whole grant). Unknown, foreign or expired tokens are ignored; the
 * answer is the same either way.
 */
export async function revokeToken(
  deps: TokenStatusDeps,
  app: App,
  token: string,
  now: Date,
  context: { requestId?: string; sourceIp?: string },
): Promise<void> {
  const refresh = parseSessionToken(REFRESH_TOKEN_PREFIX, token);
  const access = refresh ? null : await ownAccessToken(deps, app, token, now);
  const sessionId = refresh?.sessionId ?? access?.sid;
  if (!sessionId) return;
  const tenantId = await resolveTenantBySession(deps.db, sessionId);
  // idor check: an access token's session must live in the tenant it names
  if (!tenantId || (access && access.tid !== tenantId)) return;
  await deps.db.withTenant(tenantId, async (em) => {
    if (refresh) {
      // idor check: the refresh token must exist and belong to the calling app
      const row = await em.findOneBy(RefreshToken, { tokenHash: refresh.hash, sessionId });
      if (!row || row.appId !== app.id) return;
    }
    if (access) {
      // idor check: the session must be the access token's person's, as liveSession and logout require
      const session = await findSession(em, sessionId);
      if (!session || session.userId !== access.sub) return;
    }
    await revokeSessionAudited(em, tenantId, sessionId, 'revoked_by_client', {
      actor: { type: 'system', id: `app:${app.id}` },
      ...context,
    });
  });
}
