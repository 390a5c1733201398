import { recordAudit } from '../audit/audit.service.js';
import type { Database } from '../db/database.js';
import { enqueueWebhookEvent } from '../webhooks/webhook-events.js';
import { dueNotice } from './certificate-expiry.js';
import { Connection, type SamlCertificate } from './connection.entity.js';

/**
 * Which expiry notices does one connection owe now, and are they sent exactly
 * once? (issue 16.) In one transaction that locks the row (`SKIP LOCKED`: a
 * node already on it is left to it): each certificate past a threshold it
 * was not yet announced for gets one `connection.certificate_expiring`
 * webhook event and one audit event, and the threshold is written into its
 * `expiryNotices`, so a second node or the next sweep sends nothing again.
 * Returns the number of notices queued.
 */
export async function checkCertificateExpiry(
  db: Database,
  tenantId: string,
  connectionId: string,
  now: Date,
): Promise<number> {
  return db.withTenant(tenantId, async (em) => {
    // idor check: RLS scopes the read to the tenant of the transaction
    const connection = await em.findOne(Connection, {
      where: { id: connectionId, type: 'saml' },
      lock: { mode: 'pessimistic_write', onLocked: 'skip_locked' },
    });
    if (!connection) return 0;
    let sent = 0;
    const certificates: SamlCertificate[] = [];
    for (const cert of connection.samlCertificates) {
      const due = dueNotice(cert, now);
      if (!due) {
        certificates.push(cert);
        continue;
      }
      const data = {
        object: 'connection_certificate',
        connection_id: connectionId,
        fingerprint_sha256: cert.fingerprintSha256,
        not_before: cert.notBefore,
        not_after: cert.notAfter,
        threshold: due.notice,
        expired: due.notice === 'expired',
      };
      await enqueueWebhookEvent(em, tenantId, 'connection.certificate_expiring', data, now);
      await recordAudit(em, tenantId, {
        actor: { type: 'system', id: 'certificate-expiry' },
        action: 'connection.certificate_expiring',
        target: { type: 'connection', id: connectionId },
        after: {
          fingerprint_sha256: cert.fingerprintSha256,
          not_after: cert.notAfter,
          threshold: due.notice,
        },
      });
      certificates.push({ ...cert, expiryNotices: due.notices });
      sent += 1;
    }
    // Bookkeeping only: updated_at stays, so no login cache is invalidated by a notice.
    if (sent > 0)
      await em.update(Connection, { tenantId, id: connectionId }, { samlCertificates: certificates });
    return sent;
  });
}
