import { randomUUID, timingSafeEqual } from 'node:crypto';
import type { EntityManager } from 'typeorm';
import type { Config } from '../../config/config.js';
import type { Database } from '../../db/database.js';
import { sha256Base64url } from '../../digest.js';
import type { NotLiveReason } from '../../sessions/live-grant.js';
import { finalStatement } from '../../db/pipelined-transaction.js';
import { inSessionTenant, liveGrantWithPerson, type LiveGrantWithPerson } from '../live-session.js';
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

/**
 * The grant's work in its session's tenant: the tenant is resolved from the
 * session inside the transaction (Database.withResolvedTenant), and the one
 * statement that consumes the code or refresh token and reads the live grant
 * is written right behind it (live-session.ts inSessionTenant): BEGIN, the
 * tenant and that statement are one round trip (issue 13).
 */
async function inSessionTransaction(
  deps: GrantDeps,
  sessionId: string,
  read: (em: EntityManager) => Promise<GrantRead>,
  fn: (em: EntityManager, tenantId: string, read: GrantRead) => Promise<Outcome>,
): Promise<TokenResponse> {
  // Tokens are signed inside the transaction: the keys are loaded before it takes its connection.
  await deps.signer.ready();
  const outcome = await deps.db.withResolvedTenant(async (em, enterTenant): Promise<Outcome> => {
    const [tenantId, seen] = await inSessionTenant(enterTenant, sessionId, () => read(em));
    if (!tenantId) return refused('The grant is invalid', 'no such session');
    return fn(em, tenantId, seen);
  });
  if ('refused' in outcome) throw outcome.refused;
  return outcome.ok;
}

type GrantRead = { grant: LiveGrantWithPerson; row: ConsumedRow };

/**
 * A one-time value consumed in the statement that also reads the live grant,
 * the person and their roles (live-session.ts liveGrantWithPerson): one round
 * trip instead of five. `UPDATE … WHERE used_at IS NULL RETURNING` consumes
 * it atomically (CONVENTIONS.md); $1 is the session, $2 the app.
 */
const consumeCode = (hash: string, now: Date) => ({
  ctes: `consumed AS (UPDATE authorization_codes SET used_at = $4
                       WHERE code_hash = $3 AND session_id = $1 AND app_id = $2 AND used_at IS NULL
                       RETURNING *)`,
  columns: '(SELECT to_jsonb(c) FROM consumed c) AS consumed',
  params: [hash, now],
});
const consumeRefreshToken = (hash: string, now: Date) => ({
  ctes: `consumed AS (UPDATE refresh_tokens SET used_at = $4
                       WHERE token_hash = $3 AND session_id = $1 AND app_id = $2 AND used_at IS NULL
                       RETURNING *)`,
  columns: '(SELECT to_jsonb(c) FROM consumed c) AS consumed',
  params: [hash, now],
});

/** A consumed row as to_jsonb wrote it: timestamps are text. */
interface ConsumedRow {
  consumed: {
    redirect_uri?: string;
    scope: string;
    nonce?: string | null;
    code_challenge?: string | null;
    expires_at: string;
  } | null;
}

export async function exchangeAuthorizationCode(
  deps: GrantDeps,
  app: App,
  input: { code: string; redirectUri: string; codeVerifier: string | null },
  now: Date,
): Promise<TokenResponse> {
  const parsed = parseSessionToken(CODE_PREFIX, input.code);
  if (!parsed) throw new OAuthError('invalid_grant', 'The authorization code is invalid');
  // The app may have been deleted since it authenticated (its sessions are being revoked): appId.
  const read = (em: EntityManager) =>
    liveGrantWithPerson<ConsumedRow>(
      em,
      { sessionId: parsed.sessionId, appId: app.id, now },
      consumeCode(parsed.hash, now),
    );
  return inSessionTransaction(deps, parsed.sessionId, read, async (em, tenantId, { grant, row }) => {
    const code = row.consumed;
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
    if (new Date(code.expires_at) <= now) return refused('The authorization code has expired');
    if (code.redirect_uri !== input.redirectUri)
      return refused('redirect_uri differs from the authorization request');
    const challenge = code.code_challenge ?? null;
    if (challenge !== null) {
      if (input.codeVerifier === null || !pkceS256Matches(input.codeVerifier, challenge)) {
        // Someone holds the code without the verifier: nothing from this login may be used.
        await revokeSessionAudited(em, tenantId, parsed.sessionId, 'pkce_verification_failed');
        return refused('PKCE verification failed');
      }
    } else if (input.codeVerifier !== null) {
      return refused('code_verifier given but the authorization request had no code_challenge');
    }
    return issueForGrant(em, deps, app, grant, code.scope, code.nonce ?? null, now);
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
  const read = (em: EntityManager) =>
    liveGrantWithPerson<ConsumedRow>(
      em,
      { sessionId: parsed.sessionId, appId: app.id, now },
      consumeRefreshToken(parsed.hash, now),
    );
  return inSessionTransaction(deps, parsed.sessionId, read, async (em, tenantId, { grant, row }) => {
    const token = row.consumed;
    if (!token) {
      const seen = await em.findOneBy(RefreshToken, { tokenHash: parsed.hash, sessionId: parsed.sessionId });
      if (seen?.usedAt && seen.appId === app.id) {
        await revokeSessionAudited(em, tenantId, parsed.sessionId, 'refresh_token_reused');
        return refused('The refresh token was already used', 'refresh reuse: session revoked');
      }
      return refused('The refresh token is invalid', seen ? 'issued to another client' : 'unknown token');
    }
    if (new Date(token.expires_at) <= now) return refused('The refresh token has expired');
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
    return issueForGrant(em, deps, app, grant, scope, null, now);
  });
}

const NOT_LIVE: Record<NotLiveReason, string> = {
  session_ended: 'The session has ended',
  person_not_active: 'The person is no longer active',
  tenant_not_active: 'The organization is not active',
  app_deleted: 'The application has been deleted',
};

/** A new refresh token and signed access + ID tokens, when the grant is still live (sessions/live-grant.ts). */
async function issueForGrant(
  em: EntityManager,
  deps: GrantDeps,
  app: App,
  grant: LiveGrantWithPerson,
  scope: string,
  nonce: string | null,
  now: Date,
): Promise<Outcome> {
  if (!grant.live) return refused(NOT_LIVE[grant.reason], grant.reason);
  const { session, user, roles } = grant;
  const { token: refreshToken, hash } = mintSessionToken(REFRESH_TOKEN_PREFIX, session.id);
  const refreshExpiry = Math.min(
    now.getTime() + deps.config.tokens.refreshTokenTtl * 1000,
    session.expiresAt.getTime(),
  );
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
  // Signed first, so the new refresh token is the transaction's last statement and travels with its
  // COMMIT (issue 13); a failed insert rolls back the consumed code too, and no token is answered.
  await finalStatement(
    em,
    `INSERT INTO refresh_tokens (tenant_id, id, session_id, app_id, token_hash, scope, created_at, expires_at, used_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL)`,
    [session.tenantId, randomUUID(), session.id, app.id, hash, scope, now, new Date(refreshExpiry)],
  );
  return { ok: response };
}
