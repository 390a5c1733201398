import type { Request, Response } from 'express';
import { publishedClientJwks } from '../../connections/client-keys.js';
import { findConnectionForLogin } from '../../connections/connections.service.js';
import type { Database } from '../../db/database.js';
import { resolveTenantByConnection } from '../../db/resolvers.js';

/**
 * GET /oidc/{connectionId}/jwks: which public keys may sign this connection's
 * client assertions? (private_key_jwt, RFC 7523 §2.2; the IdP registers this
 * URL as the client's `jwks_uri`, OIDC Dynamic Client Registration §2.) Public
 * by design, like the SAML SP metadata: the current and next public keys of
 * this one connection, nothing else. A connection that does not use
 * private_key_jwt, or that does not exist, answers 404 alike.
 */
export async function serveClientJwks(db: Database, req: Request, res: Response): Promise<void> {
  const connectionId = String(req.params.connectionId);
  const tenantId = await resolveTenantByConnection(db, connectionId);
  const jwks = tenantId
    ? await db.withTenant(tenantId, async (em) => {
        const connection = await findConnectionForLogin(em, connectionId, { type: 'oidc' });
        if (connection?.oidcClientAuthMethod !== 'private_key_jwt') return null;
        return publishedClientJwks(em, connectionId);
      })
    : null;
  if (!jwks) {
    res.status(404).json({ code: 'not_found', message: 'no such client JWKS' });
    return;
  }
  // Short: a key published by `rotate` must reach IdPs well before it is activated.
  res.set('Cache-Control', 'public, max-age=60');
  res.type('application/jwk-set+json').send(JSON.stringify(jwks));
}
