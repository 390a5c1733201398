import { Router } from 'express';
import type { Database } from '../db/database.js';
import { resolveTenantByConnection } from '../db/resolvers.js';
import { NotFoundError } from '../errors.js';
import { Connection } from './connection.entity.js';
import { spMetadataXml } from './sp-metadata.js';
import { spMetadataCertificates } from './sp-keys.service.js';
import { serviceProviderDetails } from './sp.js';

/** The deployment-wide SP signing certificate (PEM; null: the operator configured none). */
export type SpSigningCertificate = (tenantId: string, connectionId: string) => Promise<string | null>;

/**
 * GET /saml/{connectionId}/metadata: public, before any tenant is known. The
 * connection id resolves the tenant (SECURITY DEFINER resolver); the row is then
 * read inside withTenant. Unknown ids and OIDC connections answer 404. The
 * connection's SP keys (connections/sp-keys.service.ts) are made on the first
 * read when it has none: the encryption key always, a signing key when it
 * signs AuthnRequests and the operator configured no deployment-wide key.
 */
export function spMetadataRouter(deps: {
  db: Database;
  baseUrl: string;
  /** Seals the connection's SP private keys; without it the metadata lists no per-connection key. */
  masterKey?: Buffer;
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
    const deploymentCertificate = (await deps.spSigningCertificate?.(tenantId, connectionId)) ?? null;
    // Issue 16: single logout messages are always signed, so an IdP with an SLO URL needs our signing key too.
    const signs = connection.samlSignAuthnRequests || connection.samlIdpSloUrl !== null;
    const certificates = deps.masterKey
      ? await spMetadataCertificates(
          deps.db,
          { ...connection, samlSignAuthnRequests: signs },
          {
            masterKey: deps.masterKey,
            deploymentSigningKey: deploymentCertificate !== null,
            deploymentSigningCertificatePem: deploymentCertificate,
          },
        )
      : { signing: deploymentCertificate ? [deploymentCertificate] : [], encryption: [] };
    const xml = spMetadataXml({
      sp: serviceProviderDetails(deps.baseUrl, connectionId),
      authnRequestsSigned: connection.samlSignAuthnRequests,
      signingCertificatePems: signs ? certificates.signing : [],
      encryptionCertificatePems: certificates.encryption,
    });
    res.type('application/samlmetadata+xml').set('Cache-Control', 'public, max-age=300').send(xml);
  });
  return router;
}
