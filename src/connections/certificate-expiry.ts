import type { ExpiryNotice, SamlCertificate } from './connection.entity.js';

/**
 * Which IdP certificates expire soon, and which notices are due? Pure, the
 * clock as an argument (issue 16). Thresholds: within 30 days, within 7 days,
 * expired. Each is announced once per certificate (its `expiryNotices`); a
 * certificate first seen already past several thresholds gets one notice, for
 * the most severe, and the milder ones count as given.
 */
const DAY_MS = 24 * 3600 * 1000;
export const EXPIRY_HORIZON_MS = 30 * DAY_MS;
const ORDER: readonly ExpiryNotice[] = ['30d', '7d', 'expired'];

export function expiryStage(cert: Pick<SamlCertificate, 'notAfter'>, now: Date): ExpiryNotice | null {
  const left = Date.parse(cert.notAfter) - now.getTime();
  if (Number.isNaN(left)) return null;
  if (left <= 0) return 'expired';
  if (left <= 7 * DAY_MS) return '7d';
  if (left <= EXPIRY_HORIZON_MS) return '30d';
  return null;
}

/** The notice to send now for a certificate (null: none due), and its notices afterwards. */
export function dueNotice(
  cert: SamlCertificate,
  now: Date,
): { notice: ExpiryNotice; notices: ExpiryNotice[] } | null {
  const stage = expiryStage(cert, now);
  if (!stage) return null;
  const given = new Set(cert.expiryNotices ?? []);
  if (given.has(stage)) return null;
  const notices = ORDER.slice(0, ORDER.indexOf(stage) + 1);
  return { notice: stage, notices: [...new Set([...given, ...notices])] };
}

/** A standing warning of the admin API's connection view. */
export interface CertificateWarning {
  /** One code for "within 30 days" and "already expired" (`expired` tells them apart). */
  code: 'certificate_expiring';
  fingerprint: string;
  expired: boolean;
  not_after: string;
  /** Whole days left (negative once expired). */
  days_left: number;
  message: string;
}

export function certificateExpiryWarnings(
  certificates: readonly SamlCertificate[],
  now: Date,
): CertificateWarning[] {
  const out: CertificateWarning[] = [];
  for (const cert of certificates) {
    const stage = expiryStage(cert, now);
    if (!stage) continue;
    const daysLeft = Math.floor((Date.parse(cert.notAfter) - now.getTime()) / DAY_MS);
    const short = `${cert.fingerprintSha256.slice(0, 23)}…`;
    out.push({
      code: 'certificate_expiring',
      fingerprint: cert.fingerprintSha256,
      expired: stage === 'expired',
      not_after: cert.notAfter,
      days_left: daysLeft,
      message:
        stage === 'expired'
          ? `the IdP signing certificate ${short} expired on ${cert.notAfter}`
          : `the IdP signing certificate ${short} expires on ${cert.notAfter} (in ${daysLeft} days)`,
    });
  }
  return out;
}
