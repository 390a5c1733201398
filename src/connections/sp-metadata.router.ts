import { Router } from 'express';
import type { Database } from '../db/database.js';
import { resolveTenantByConnection } from '../db/resolvers.js';
import { NotFoundError } from '../errors.js';
import { Connection } from './connection.entity.js';
import { spMetadataXml } from './sp-metadata.js';
import { serviceProviderDetails } from './sp.js';

/** The SP signing certificate (PEM) of a connection, once SP request signing keys exist. */
export type SpSigningCertificate = (tenantId: string, connectionId: string) => Promise<string | null>;

/**
 * GET /saml/{connectionId}/metadata: public, before any tenant is known. The
 * connection id resolves the tenant (SECURITY DEFINER resolver); the row is then
 * read inside withTenant. Unknown ids and OIDC connections answer 404.
 */
export function spMetadataRouter(deps: {
  db: Database;
  baseUrl: string;
  spSigningCertificate?: SpSigningCertificate;
}): Router {
  const router = Router();
  router.get('/saml/:connectionId/metadata', async (req, res) => {
    const connectionId = req.params.connectionId;
    const tenantId = await resolveTenantByConnection(deps.db, connectionId);
    if (!tenantId) throw new NotFoundError('Connection');
    req.tenantId = tenantId;
    const connection = await deps.db.withTenant(tenantId, (em) =>
      em.findOneBy(Connection, { id: connectionId, type: 'saml' }),
    );
    if (!connection) throw new NotFoundError('Connection');
    const signingCertificatePem = connection.samlSignAuthnRequests
      ? await deps.spSigningCertificate?.(tenantId, connectionId)
      : null;
    const xml = spMetadataXml({
      sp: serviceProviderDetails(deps.baseUrl, connectionId),
      authnRequestsSigned: connection.samlSignAuthnRequests,
      signingCertificatePem,
    });
    res.type('application/samlmetadata+xml').set('Cache-Control', 'public, max-age=300').send(xml);
  });
  return router;
}
