import type { SamlCertificate } from './connection.entity.js';

/**
 * What does a freshly fetched IdP metadata document change in a connection's
 * signing certificates? Pure decisions, the clock as an argument (issue 16):
 *
 * - a certificate the metadata lists that the connection lacks is added at
 *   once (an IdP publishes its next certificate before it signs with it);
 * - one the metadata no longer lists keeps verifying for the overlap period
 *   from when it disappeared (`removedAt`), then is dropped — an IdP that
 *   switches before every SP has the new certificate, or our refresh running
 *   late, never breaks logins;
 * - one that reappears is no longer marked removed.
 *
 * Certificates are never dropped any other way: a failed fetch or a refused
 * document changes nothing (metadata-refresh-sweep.ts).
 */
export interface CertificateChanges {
  certificates: SamlCertificate[];
  added: SamlCertificate[];
  /** Newly missing from the metadata: kept, marked `removedAt`. */
  removed: SamlCertificate[];
  /** Missing for longer than the overlap: gone from the connection. */
  dropped: SamlCertificate[];
  /** Listed again after being marked removed. */
  restored: SamlCertificate[];
}

export function mergeCertificates(input: {
  current: readonly SamlCertificate[];
  /** The signing certificates of the new metadata; null: not fetched anew (HTTP 304). */
  published: readonly SamlCertificate[] | null;
  now: Date;
  overlapMs: number;
}): CertificateChanges {
  const { current, published, now, overlapMs } = input;
  const listed = published ? new Set(published.map((c) => c.fingerprintSha256)) : null;
  const known = new Set(current.map((c) => c.fingerprintSha256));
  const out: CertificateChanges = { certificates: [], added: [], removed: [], dropped: [], restored: [] };
  for (const cert of current) {
    const stillListed = listed ? listed.has(cert.fingerprintSha256) : !cert.removedAt;
    if (stillListed) {
      if (cert.removedAt) {
        const restored = { ...cert, removedAt: null };
        out.restored.push(restored);
        out.certificates.push(restored);
      } else out.certificates.push(cert);
      continue;
    }
    if (!cert.removedAt) {
      const removed = { ...cert, removedAt: now.toISOString() };
      out.removed.push(removed);
      out.certificates.push(removed);
    } else if (now.getTime() - Date.parse(cert.removedAt) >= overlapMs) {
      out.dropped.push(cert);
    } else out.certificates.push(cert);
  }
  for (const cert of published ?? []) {
    if (known.has(cert.fingerprintSha256)) continue;
    known.add(cert.fingerprintSha256);
    const added = { ...cert, firstSeenAt: now.toISOString(), removedAt: null };
    out.added.push(added);
    out.certificates.push(added);
  }
  // Safety net: whatever the inputs, a connection never ends with no certificate from a refresh.
  if (out.certificates.length === 0 && current.length > 0) {
    return { certificates: [...current], added: [], removed: [], dropped: [], restored: [] };
  }
  return out;
}

export function certificatesChanged(changes: CertificateChanges): boolean {
  return changes.added.length + changes.removed.length + changes.dropped.length + changes.restored.length > 0;
}

/** Why a refresh did not apply a document (stored in metadata_refresh_error, shown to the admin). */
export type RefreshErrorCode = 'metadata_fetch_failed' | 'metadata_invalid' | 'metadata_entity_id_changed';

export class MetadataRefreshError extends Error {
  constructor(
    readonly code: RefreshErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'MetadataRefreshError';
  }
}

/** The entity id names the IdP: a document naming another is never applied (not silently re-pointed). */
export function checkSameEntity(stored: string | null, fetched: string): void {
  if (stored !== null && stored !== fetched) {
    throw new MetadataRefreshError(
      'metadata_entity_id_changed',
      `the metadata now names the entity ${fetched.slice(0, 200)}, not ${stored.slice(0, 200)}; ` +
        'refused (re-import it on purpose with PATCH metadata_url)',
    );
  }
}

/**
 * The validators a later conditional GET sends back (RFC 9110 §8.8: ETag,
 * Last-Modified), from an answer's headers; an absent, repeated or oversized
 * one is not kept (the columns hold at most 512 and 128 characters).
 */
export function cacheValidators(headers: Record<string, string | string[] | undefined>): {
  etag: string | null;
  lastModified: string | null;
} {
  const one = (name: string, max: number) => {
    const v = headers[name];
    return typeof v === 'string' && v.length > 0 && v.length <= max ? v : null;
  };
  return { etag: one('etag', 512), lastModified: one('last-modified', 128) };
}
