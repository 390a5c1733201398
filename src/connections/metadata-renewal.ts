import type { AuditContext } from '../audit/audit.service.js';
import type { Database } from '../db/database.js';
import { BadRequestError, NotFoundError } from '../errors.js';
import type { OutboundPolicy } from '../outbound/pinned-request.js';
import { Connection, type SamlCertificate } from './connection.entity.js';
import {
  certificatesChanged,
  checkSameEntity,
  mergeCertificates,
  MetadataRefreshError,
} from './metadata-refresh.js';
import { announce, type ChangeSummary } from './metadata-refresh-sweep.js';
import { MetadataError, parseIdpMetadata } from './saml-metadata.js';
import type { XmlLimits } from './xml-limits.js';

/**
 * What does an IdP's new metadata, uploaded or pasted by an admin renewing a
 * certificate (issue 15, the `certificate_renewal` intent), change? Only the
 * signing certificates, by the metadata refresh's rules (metadata-refresh.ts
 * mergeCertificates: a new certificate is trusted at once, one the document no
 * longer lists keeps verifying for the overlap), audited and announced as a
 * refresh announces them. Never anything else: a document naming another
 * entity id is refused, and a different sign-in URL is reported, not applied
 * (changing where people sign in is an SSO change, not a renewal).
 */
export interface RenewalDeps {
  db: Database;
  fetch: Pick<OutboundPolicy, 'allowPrivate'>;
  xmlLimits?: XmlLimits | undefined;
  /** A removed certificate keeps verifying this long (GATEHOUSE_CERT_OVERLAP). */
  overlapMs: number;
}

export interface RenewalResult {
  outcome: 'updated' | 'unchanged';
  changes: ChangeSummary;
  /** The document names a sign-in URL other than the connection's; it was left as it was. */
  sso_url_ignored: string | null;
}

const fingerprints = (certs: SamlCertificate[]) => certs.map((c) => c.fingerprintSha256);

export async function renewCertificatesFromMetadata(
  deps: RenewalDeps,
  tenantId: string,
  connectionId: string,
  xml: string,
  ctx: AuditContext,
  now: Date = new Date(),
): Promise<RenewalResult> {
  let metadata;
  try {
    metadata = parseIdpMetadata(xml, { now, allowHttp: deps.fetch.allowPrivate, xmlLimits: deps.xmlLimits });
  } catch (error) {
    // Whatever the document does to the parser, it is a refused document (as in the refresh sweep).
    if (error instanceof MetadataError) throw error;
    throw new BadRequestError('metadata: the document could not be read', { cause: error });
  }
  return deps.db.withTenant(tenantId, async (em) => {
    // idor check: RLS scopes the read to the tenant of the transaction
    const connection = await em.findOne(Connection, {
      where: { id: connectionId },
      lock: { mode: 'pessimistic_write' },
    });
    if (!connection) throw new NotFoundError('Connection');
    if (connection.type !== 'saml' || !connection.samlIdpEntityId)
      throw new BadRequestError(
        'metadata: this connection has no SAML metadata to renew yet; set it up first',
      );
    try {
      checkSameEntity(connection.samlIdpEntityId, metadata.entityId);
    } catch (error) {
      if (error instanceof MetadataRefreshError) throw new BadRequestError(error.message, { cause: error });
      throw error;
    }
    const changes = mergeCertificates({
      current: connection.samlCertificates,
      published: metadata.certificates,
      now,
      overlapMs: deps.overlapMs,
    });
    const changed = certificatesChanged(changes);
    if (changed) {
      const columns: Partial<Connection> = { samlCertificates: changes.certificates, updatedAt: now };
      await em.update(Connection, { tenantId, id: connectionId }, columns);
      await announce(em, connection, changes, ctx, now);
    }
    return {
      outcome: changed ? 'updated' : 'unchanged',
      changes: {
        added: fingerprints(changes.added),
        removed: fingerprints(changes.removed),
        dropped: fingerprints(changes.dropped),
        restored: fingerprints(changes.restored),
      },
      sso_url_ignored: metadata.ssoUrl !== connection.samlSsoUrl ? metadata.ssoUrl : null,
    };
  });
}
