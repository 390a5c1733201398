import { Router, type Request } from 'express';
import { z } from 'zod';
import type { Config } from '../config/config.js';
import type { ConnectionDeps } from '../connections/connections.service.js';
import { renewCertificatesFromMetadata } from '../connections/metadata-renewal.js';
import { NotFoundError } from '../errors.js';
import { auditContext } from './principal.js';
import { tenantIdParam } from './tenants.router.js';
import { parseBody, uuidParam } from './validation.js';

/**
 * How does an admin renew an IdP's signing certificate through the API, as the
 * portal's `certificate_renewal` pages do? POST
 * tenants/{tenantId}/connections/{connectionId}/metadata-renewal (operator, or
 * an admin of that tenant) with the IdP's new metadata document: applied by
 * the metadata refresh's rules (src/connections/metadata-renewal.ts: a new
 * certificate trusted at once, one the document no longer lists kept through
 * GATEHOUSE_CERT_OVERLAP), audited as `connection.certificate_added` /
 * `_removed` with the caller as actor. Certificates only: another entity id is
 * a 400, another sign-in URL is reported in `sso_url_ignored` and left as it
 * was. 200 with what changed (`outcome` `updated` or `unchanged`).
 */

/** The portal's limit for the same document (src/portal/certificates.pages.ts). */
const MAX_METADATA_CHARS = 512 * 1024;
const renewalBody = z.strictObject({ metadata_xml: z.string().min(1).max(MAX_METADATA_CHARS) });

function connectionIdParam(req: Request): string {
  const parsed = uuidParam.safeParse(req.params.connectionId);
  if (!parsed.success) throw new NotFoundError('Connection');
  return parsed.data;
}

export function metadataRenewalRouter(deps: ConnectionDeps, config: Pick<Config, 'metadataRefresh'>): Router {
  const router = Router();
  const overlapMs = config.metadataRefresh.certOverlapSeconds * 1000;
  router.post('/tenants/:tenantId/connections/:connectionId/metadata-renewal', async (req, res) => {
    const tenantId = tenantIdParam(req);
    const connectionId = connectionIdParam(req);
    const { metadata_xml } = parseBody(renewalBody, req);
    const result = await renewCertificatesFromMetadata(
      { db: deps.db, fetch: deps.fetch, xmlLimits: deps.xmlLimits, overlapMs },
      tenantId,
      connectionId,
      metadata_xml,
      auditContext(req),
    );
    res.json(result);
  });
  return router;
}
