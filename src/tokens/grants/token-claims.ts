import { randomUUID } from 'node:crypto';
import type { JWTPayload } from 'jose';
import type { User } from '../../directory/user.entity.js';
import type { Session } from '../../sessions/session.entity.js';
import type { App } from '../../apps/app.entity.js';
import type { TokenSigner } from '../../sessions/token-signer.js';

/** Header `typ` of Gatehouse's tokens: RFC 9068 §2.1 for access tokens; ID tokens are plain JWTs. */
export const ACCESS_TOKEN_TYP = 'at+jwt';
export const ID_TOKEN_TYP = 'JWT';

export interface TokenContext {
  issuer: string;
  app: App;
  session: Session;
  user: User;
  roles: string[];
  scope: string;
  nonce: string | null;
  now: Date;
  accessTokenTtl: number;
  idTokenTtl: number;
}

/** RFC 6749 §5.1 plus the OIDC id_token. */
export interface TokenResponse {
  access_token: string;
  token_type: 'Bearer';
  expires_in: number;
  id_token: string;
  refresh_token: string;
  scope: string;
}

const seconds = (date: Date) => Math.floor(date.getTime() / 1000);

export function displayName(user: User): string | null {
  if (user.displayName) return user.displayName;
  const joined = [user.givenName, user.familyName].filter(Boolean).join(' ');
  return joined || null;
}

/** Claims about the person, shared by the ID token and userinfo (absent values are left out). */
export function personClaims(user: User, tenantId: string, roles: string[]): Record<string, unknown> {
  const claims: Record<string, unknown> = {};
  if (user.email) {
    claims.email = user.email;
    // docs/architecture.md: true only when the email's domain is a verified domain of the tenant.
    claims.email_verified = user.emailVerified;
  }
  const name = displayName(user);
  if (name) claims.name = name;
  if (user.givenName) claims.given_name = user.givenName;
  if (user.familyName) claims.family_name = user.familyName;
  claims.tid = tenantId;
  claims.roles = roles;
  return claims;
}

/** OIDC Core §2: iss sub aud exp iat auth_time nonce sid, plus email, name, tid, roles. */
export function idTokenClaims(ctx: TokenContext): JWTPayload {
  const iat = seconds(ctx.now);
  return {
    iss: ctx.issuer,
    sub: ctx.user.id,
    aud: ctx.app.id,
    exp: Math.min(iat + ctx.idTokenTtl, seconds(ctx.session.expiresAt)),
    iat,
    auth_time: seconds(ctx.session.authTime),
    ...(ctx.nonce !== null ? { nonce: ctx.nonce } : {}),
    sid: ctx.session.id,
    ...personClaims(ctx.user, ctx.session.tenantId, ctx.roles),
  };
}

/** RFC 9068 §2.2: iss sub aud client_id exp iat jti, plus tid sid roles scope. */
export function accessTokenClaims(ctx: TokenContext): JWTPayload {
  const iat = seconds(ctx.now);
  return {
    iss: ctx.issuer,
    sub: ctx.user.id,
    // The main app is both the client and the resource server its tokens are for.
    aud: ctx.app.id,
    client_id: ctx.app.id,
    exp: Math.min(iat + ctx.accessTokenTtl, seconds(ctx.session.expiresAt)),
    iat,
    jti: randomUUID(),
    auth_time: seconds(ctx.session.authTime),
    tid: ctx.session.tenantId,
    sid: ctx.session.id,
    roles: ctx.roles,
    scope: ctx.scope,
  };
}

export async function signTokenResponse(
  signer: TokenSigner,
  ctx: TokenContext,
  refreshToken: string,
): Promise<TokenResponse> {
  const alg = ctx.app.tokenSigningAlg;
  const access = accessTokenClaims(ctx);
  const [accessToken, idToken] = await Promise.all([
    signer.sign(access, { alg, typ: ACCESS_TOKEN_TYP }),
    signer.sign(idTokenClaims(ctx), { alg, typ: ID_TOKEN_TYP }),
  ]);
  return {
    access_token: accessToken,
    token_type: 'Bearer',
    expires_in: (access.exp ?? 0) - (access.iat ?? 0),
    id_token: idToken,
    refresh_token: refreshToken,
    scope: ctx.scope,
  };
}
