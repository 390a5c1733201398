import type { TenantAdminResolver } from './auth.js';
import type { Config } from '../config/config.js';
import { TENANT_ADMIN_ROLE } from '../directory/roles.service.js';
import type { Database } from '../db/database.js';
import { liveSession } from '../tokens/live-session.js';
import { verifyAccessToken } from '../tokens/status/access-token.js';
import { OAuthError } from '../tokens/oauth-errors.js';
import type { SigningKeyStore } from '../tokens/keys/key-store.js';

/**
 * Tenant admins on the admin API: an access token Gatehouse issued to its own
 * admin client (config GATEHOUSE_ADMIN_CLIENT_ID, a registered app), for a
 * person whose roles — read now, not from the token — include `admin`, on a
 * live session of an active tenant (liveSession: a suspended tenant's admins
 * are refused at once on every node, a deleted tenant has no sessions left).
 * Anything else resolves to null (401). The principal carries
 * the session's tenant, so authorizeTenant answers 404 for every other tenant.
 */
export function createTenantAdminResolver(deps: {
  config: Config;
  db: Database;
  keys: SigningKeyStore;
}): TenantAdminResolver {
  const adminClientId = deps.config.tokens.adminClientId;
  return async (token) => {
    if (!adminClientId) return null;
    const now = new Date();
    let claims;
    try {
      claims = await verifyAccessToken(deps.keys, deps.config.baseUrl, token, now);
    } catch (error) {
      if (error instanceof OAuthError) return null;
      throw error;
    }
    const audiences = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
    if (claims.client_id !== adminClientId || !audiences.includes(adminClientId)) return null;
    const live = await liveSession(deps.db, claims, now);
    if (!live || !live.roles.includes(TENANT_ADMIN_ROLE)) return null;
    return { kind: 'tenant_admin', tenantId: live.tenantId, userId: live.user.id };
  };
}
