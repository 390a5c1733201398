import { randomUUID, timingSafeEqual } from 'node:crypto';
import type { EntityManager } from 'typeorm';
import type { Config } from '../../config/config.js';
import type { Database } from '../../db/database.js';
import { resolveTenantBySession } from '../../db/resolvers.js';
import { sha256Base64url } from '../../digest.js';
import type { NotLiveReason } from '../../sessions/live-grant.js';
import { liveGrantWithPerson } from '../live-session.js';
import type { App } from '../../apps/app.entity.js';
import { AuthorizationCode } from './authorization-code.entity.js';
import { OAuthError } from '../oauth-errors.js';
import { CODE_PREFIX, mintSessionToken, parseSessionToken, REFRESH_TOKEN_PREFIX } from './opaque-tokens.js';
import { RefreshToken } from './refresh-token.entity.js';
import { revokeSessionAudited } from '../session-revocation.js';
import { signTokenResponse, type TokenResponse } from './token-claims.js';
import type { TokenSigner } from '../../sessions/token-signer.js';

/**
 * The token endpoint's grants (RFC 6749 §4.1.3, §6). Codes and refresh tokens
 * are consumed with one `UPDATE … WHERE used_at IS NULL RETURNING`; a value
 * presented again after use revokes its whole session (RFC 9700 §4.14,
 * §2.2.2). Work that must survive the refusal (the revocation) commits; the
 * refusal is returned, not thrown, out of the transaction.
 */
export interface GrantDeps {
  config: Config;
  db: Database;
  signer: TokenSigner;
}

type Outcome = { ok: TokenResponse } | { refused: OAuthError };

const refused = (description: string, detail?: string): Outcome => ({
  refused: new OAuthError('invalid_grant', description, { detail }),
});

/** RFC 7636 §4.1: 43–128 unreserved characters. */
const VERIFIER = /^[A-Za-z0-9\-._~]{43,128}$/;

export function pkceS256Matches(verifier: string, challenge: string): boolean {
  if (!VERIFIER.test(verifier)) return false;
  // §4.6: BASE64URL(SHA256(ASCII(verifier))); VERIFIER admits only ASCII, whose UTF-8 is the same bytes.
  const computed = Buffer.from(sha256Base64url(verifier));
  const expected = Buffer.from(challenge);
  return computed.length === expected.length && timingSafeEqual(computed, expected);
}

async function inSessionTenant(
  db: Database,
  sessionId: string,
  fn: (em: EntityManager, tenantId: string) => Promise<Outcome>,
): Promise<TokenResponse> {
  const tenantId = await resolveTenantBySession(db, sessionId);
  if (!tenantId) throw new OAuthError('invalid_grant', 'The grant is invalid', { detail: 'no such session' });
  const outcome = await db.withTenant(tenantId, (em) => fn(em, tenantId));
  if ('refused' in outcome) throw outcome.refused;
  return outcome.ok;
}

export async function exchangeAuthorizationCode(
  deps: GrantDeps,
  app: App,
  input: { code: string; redirectUri: string; codeVerifier: string | null },
  now: Date,
): Promise<TokenResponse> {
  const parsed = parseSessionToken(CODE_PREFIX, input.code);
  if (!parsed) throw new OAuthError('invalid_grant', 'The authorization code is invalid');
  return inSessionTenant(deps.db, parsed.sessionId, async (em, tenantId) => {
    const consumed = await em.query<[AuthorizationCodeRow[], number]>(
      `UPDATE authorization_codes SET used_at = $4
        WHERE code_hash = $1 AND session_id = $2 AND app_id = $3 AND used_at IS NULL RETURNING *`,
      [parsed.hash, parsed.sessionId, app.id, now],
    );
    const code = consumed[0][0];
    if (!code) {
      const seen = await em.findOneBy(AuthorizationCode, {
        codeHash: parsed.hash,
        sessionId: parsed.sessionId,
      });
      if (seen?.usedAt && seen.appId === app.id) {
        await revokeSessionAudited(em, tenantId, parsed.sessionId, 'authorization_code_reused');
        return refused('The authorization code was already used', 'code reuse: session revoked');
      }
      return refused('The authorization code is invalid', seen ? 'issued to another client' : 'unknown code');
    }
    if (code.expires_at <= now) return refused('The authorization code has expired');
    if (code.redirect_uri !== input.redirectUri)
      return refused('redirect_uri differs from the authorization request');
    if (code.code_challenge !== null) {
      if (input.codeVerifier === null || !pkceS256Matches(input.codeVerifier, code.code_challenge)) {
        // Someone holds the code without the verifier: nothing from this login may be used.
        await revokeSessionAudited(em, tenantId, parsed.sessionId, 'pkce_verification_failed');
        return refused('PKCE verification failed');
      }
    } else if (input.codeVerifier !== null) {
      return refused('code_verifier given but the authorization request had no code_challenge');
    }
    return issueForSession(em, deps, app, parsed.sessionId, code.scope, code.nonce, now);
  });
}

export async function exchangeRefreshToken(
  deps: GrantDeps,
  app: App,
  input: { refreshToken: string; scope: string | null },
  now: Date,
): Promise<TokenResponse> {
  const parsed = parseSessionToken(REFRESH_TOKEN_PREFIX, input.refreshToken);
  if (!parsed) throw new OAuthError('invalid_grant', 'The refresh token is invalid');
  return inSessionTenant(deps.db, parsed.sessionId, async (em, tenantId) => {
    const consumed = await em.query<[RefreshTokenRow[], number]>(
      `UPDATE refresh_tokens SET used_at = $4
        WHERE token_hash = $1 AND session_id = $2 AND app_id = $3 AND used_at IS NULL RETURNING *`,
      [parsed.hash, parsed.sessionId, app.id, now],
    );
    const token = consumed[0][0];
    if (!token) {
      const seen = await em.findOneBy(RefreshToken, { tokenHash: parsed.hash, sessionId: parsed.sessionId });
      if (seen?.usedAt && seen.appId === app.id) {
        await revokeSessionAudited(em, tenantId, parsed.sessionId, 'refresh_token_reused');
        return refused('The refresh token was already used', 'refresh reuse: session revoked');
      }
      return refused('The refresh token is invalid', seen ? 'issued to another client' : 'unknown token');
    }
    if (token.expires_at <= now) return refused('The refresh token has expired');
    let scope = token.scope;
    if (input.scope !== null) {
      // RFC 6749 §6: a narrower scope may be asked for, never a wider one.
      const granted = new Set(token.scope.split(' '));
      const asked = input.scope.split(' ').filter(Boolean);
      // Thrown, not returned: the transaction rolls back and the token stays usable.
      if (asked.some((s) => !granted.has(s)) || !asked.includes('openid'))
        throw new OAuthError('invalid_scope', 'The scope exceeds what was granted');
      scope = [...new Set(asked)].join(' ');
    }
    return issueForSession(em, deps, app, parsed.sessionId, scope, null, now);
  });
}

const NOT_LIVE: Record<NotLiveReason, string> = {
  session_ended: 'The session has ended',
  person_not_active: 'The person is no longer active',
  tenant_not_active: 'The organization is not active',
  app_deleted: 'The application has been deleted',
};

/** A new refresh token and signed access + ID tokens, when the grant is still live (sessions/live-grant.ts). */
async function issueForSession(
  em: EntityManager,
  deps: GrantDeps,
  app: App,
  sessionId: string,
  scope: string,
  nonce: string | null,
  now: Date,
): Promise<Outcome> {
  // The app may have been deleted since it authenticated (its sessions are being revoked).
  const grant = await liveGrantWithPerson(em, { sessionId, appId: app.id, now });
  if (!grant.live) return refused(NOT_LIVE[grant.reason], grant.reason);
  const { session, user, roles } = grant;
  const { token: refreshToken, hash } = mintSessionToken(REFRESH_TOKEN_PREFIX, session.id);
  const refreshExpiry = Math.min(
    now.getTime() + deps.config.tokens.refreshTokenTtl * 1000,
    session.expiresAt.getTime(),
  );
  await em.insert(RefreshToken, {
    tenantId: session.tenantId,
    id: randomUUID(),
    sessionId: session.id,
    appId: app.id,
    tokenHash: hash,
    scope,
    createdAt: now,
    expiresAt: new Date(refreshExpiry),
    usedAt: null,
  });
  const response = await signTokenResponse(
    deps.signer,
    {
      issuer: deps.config.baseUrl,
      app,
      session,
      user,
      roles,
      scope,
      nonce,
      now,
      accessTokenTtl: deps.config.tokens.accessTokenTtl,
      idTokenTtl: deps.config.tokens.idTokenTtl,
    },
    refreshToken,
  );
  return { ok: response };
}

interface AuthorizationCodeRow {
  redirect_uri: string;
  scope: string;
  nonce: string | null;
  code_challenge: string | null;
  expires_at: Date;
}

interface RefreshTokenRow {
  scope: string;
  expires_at: Date;
}
