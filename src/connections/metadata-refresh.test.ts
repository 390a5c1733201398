import type { SamlCertificate } from './connection.entity.js';
import { checkSameEntity, mergeCertificates, MetadataRefreshError } from './metadata-refresh.js';

const DAY = 24 * 3600 * 1000;
const now = new Date('2027-03-01T00:00:00Z');
const cert = (name: string, extra: Partial<SamlCertificate> = {}): SamlCertificate => ({
  pem: `pem-${name}`,
  fingerprintSha256: name,
  notBefore: '2026-01-01T00:00:00.000Z',
  notAfter: '2028-01-01T00:00:00.000Z',
  ...extra,
});
const prints = (certs: SamlCertificate[]) => certs.map((c) => c.fingerprintSha256);

describe('mergeCertificates (the overlap rules of a metadata refresh)', () => {
  it('adds a newly published certificate at once, stamped first seen now', () => {
    const out = mergeCertificates({
      current: [cert('a')],
      published: [cert('a'), cert('b')],
      now,
      overlapMs: 7 * DAY,
    });
    expect(prints(out.certificates)).toEqual(['a', 'b']);
    expect(out.added).toEqual([
      expect.objectContaining({ fingerprintSha256: 'b', firstSeenAt: now.toISOString() }),
    ]);
  });

  it('keeps a certificate the metadata stopped listing, marked removed, until the overlap has passed', () => {
    const first = mergeCertificates({
      current: [cert('a'), cert('b')],
      published: [cert('b')],
      now,
      overlapMs: 7 * DAY,
    });
    expect(prints(first.certificates)).toEqual(['a', 'b']);
    expect(first.removed[0]).toMatchObject({ fingerprintSha256: 'a', removedAt: now.toISOString() });

    const sixDays = new Date(now.getTime() + 6 * DAY);
    const kept = mergeCertificates({
      current: first.certificates,
      published: [cert('b')],
      now: sixDays,
      overlapMs: 7 * DAY,
    });
    expect(prints(kept.certificates)).toEqual(['a', 'b']);
    expect(kept.dropped).toEqual([]);

    const sevenDays = new Date(now.getTime() + 7 * DAY);
    const gone = mergeCertificates({
      current: first.certificates,
      published: [cert('b')],
      now: sevenDays,
      overlapMs: 7 * DAY,
    });
    expect(prints(gone.certificates)).toEqual(['b']);
    expect(prints(gone.dropped)).toEqual(['a']);
  });

  it('drops removed certificates after the overlap on a 304 too, and keeps listed ones', () => {
    const current = [cert('a', { removedAt: new Date(now.getTime() - 8 * DAY).toISOString() }), cert('b')];
    const out = mergeCertificates({ current, published: null, now, overlapMs: 7 * DAY });
    expect(prints(out.certificates)).toEqual(['b']);
    expect(prints(out.dropped)).toEqual(['a']);
  });

  it('restores a certificate that reappears in the metadata', () => {
    const current = [cert('a', { removedAt: now.toISOString() }), cert('b')];
    const out = mergeCertificates({ current, published: [cert('a'), cert('b')], now, overlapMs: 7 * DAY });
    expect(out.restored).toEqual([expect.objectContaining({ fingerprintSha256: 'a', removedAt: null })]);
  });

  it('never leaves a connection without certificates', () => {
    const current = [cert('a', { removedAt: new Date(now.getTime() - 30 * DAY).toISOString() })];
    const out = mergeCertificates({ current, published: [], now, overlapMs: 0 });
    expect(prints(out.certificates)).toEqual(['a']);
  });
});

describe('checkSameEntity', () => {
  it('refuses metadata naming another entity id', () => {
    expect(() => checkSameEntity('https://idp.test/a', 'https://evil.test/a')).toThrow(MetadataRefreshError);
    expect(() => checkSameEntity('https://idp.test/a', 'https://idp.test/a')).not.toThrow();
  });
});
