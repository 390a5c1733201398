import type { SamlCertificate } from './connection.entity.js';
import { certificateExpiryWarnings, dueNotice, expiryStage } from './certificate-expiry.js';

const DAY = 24 * 3600 * 1000;
const now = new Date('2027-03-01T00:00:00Z');
const expiringIn = (days: number, extra: Partial<SamlCertificate> = {}): SamlCertificate => ({
  pem: 'pem',
  fingerprintSha256: 'AB:CD',
  notBefore: '2026-01-01T00:00:00.000Z',
  notAfter: new Date(now.getTime() + days * DAY).toISOString(),
  ...extra,
});

describe('certificate expiry thresholds', () => {
  it.each([
    [45, null],
    [30, '30d'],
    [10, '30d'],
    [7, '7d'],
    [1, '7d'],
    [0, 'expired'],
    [-3, 'expired'],
  ])('a certificate expiring in %s days is at stage %s', (days, stage) => {
    expect(expiryStage(expiringIn(days), now)).toBe(stage);
  });

  it('announces each threshold once, and only the most severe one when several were skipped', () => {
    expect(dueNotice(expiringIn(10), now)).toEqual({ notice: '30d', notices: ['30d'] });
    expect(dueNotice(expiringIn(10, { expiryNotices: ['30d'] }), now)).toBeNull();
    expect(dueNotice(expiringIn(5, { expiryNotices: ['30d'] }), now)).toEqual({
      notice: '7d',
      notices: ['30d', '7d'],
    });
    expect(dueNotice(expiringIn(-1), now)).toEqual({ notice: 'expired', notices: ['30d', '7d', 'expired'] });
    expect(dueNotice(expiringIn(-1, { expiryNotices: ['30d', '7d', 'expired'] }), now)).toBeNull();
  });

  it('shows a warning per certificate expiring within 30 days or expired', () => {
    const warnings = certificateExpiryWarnings([expiringIn(10), expiringIn(90), expiringIn(-2)], now);
    expect(warnings).toEqual([
      expect.objectContaining({
        code: 'certificate_expiring',
        expired: false,
        days_left: 10,
        fingerprint: 'AB:CD',
      }),
      expect.objectContaining({ code: 'certificate_expiring', expired: true, days_left: -2 }),
    ]);
  });
});
