import type { Connection } from '../../src/connections/connection.entity.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { SamlTestIdp, type ServiceProviderTarget } from '../support/saml-idp.js';
import { RecordingCompleter, startSsoServer, type SsoServer } from '../support/sso-app.js';
import {
  auditEvents,
  createSamlConnection,
  createTenantWithDomains,
  spOf,
} from '../support/sso-factories.js';
import {
  encryptedResponse,
  metadataCertificates,
  post,
  reasonOf,
  startLogin,
} from '../sso/saml-encryption-idp.js';

/**
 * Per-connection SP keys through the admin API (issue 16): rotation publishes
 * the next certificate in the SP metadata before it is used, activation keeps
 * the replaced key accepted (and listed) until it is retired, and a login
 * never fails on the way; the IdP is samlify, which encrypts to the
 * certificate it imported and verifies signed AuthnRequests.
 */
let t: TestDatabase;
let gh: SsoServer;
const completer = new RecordingCompleter();

beforeAll(async () => {
  t = await createTestDatabase();
  gh = await startSsoServer(t, { completer });
});
afterAll(async () => {
  await gh.close();
  await t.close();
});

interface KeyView {
  id: string;
  use: 'signing' | 'encryption';
  status: string;
  certificate_pem: string;
  fingerprint_sha256: string;
  not_after: string;
  created_at: string;
  activated_at: string | null;
  retired_at: string | null;
}

async function admin(
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; json: { data?: KeyView[]; code?: string }; text: string }> {
  const res = await fetch(`${gh.address}/admin/v1${path}`, {
    method,
    headers: { Authorization: `Bearer ${gh.secrets.adminToken}`, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, json: JSON.parse(text) as { data?: KeyView[] }, text };
}

async function setup(slug: string, signRequests = false) {
  const idp = await SamlTestIdp.create(slug);
  const tenantId = await createTenantWithDomains(t.db, slug, [`${slug}.test`]);
  const connection = await createSamlConnection(t.db, tenantId, idp);
  if (signRequests)
    await t.db.withTenant(tenantId, (em) =>
      em.query('UPDATE connections SET saml_sign_authn_requests = true WHERE id = $1', [connection.id]),
    );
  const keys = `/tenants/${tenantId}/connections/${connection.id}/sp-keys`;
  return { idp, tenantId, connection, sp: spOf(gh.baseUrl, connection), keys };
}

async function metadata(connection: Connection): Promise<string> {
  return (await fetch(`${gh.baseUrl}/saml/${connection.id}/metadata`)).text();
}

/** A full login with the assertion encrypted to `encryptTo`; the reason it was refused, or null. */
async function loginEncryptedTo(
  s: { idp: SamlTestIdp; sp: ServiceProviderTarget; slug: string },
  encryptTo: string,
): Promise<string | null> {
  const email = `pat@${s.slug}.test`;
  const login = await startLogin(gh.baseUrl, s.idp, s.sp, email);
  const answer = await encryptedResponse(s.idp, login.requestId, s.sp, { nameId: email }, { encryptTo });
  const res = await post(login.browser, s.sp, answer.samlResponse);
  return res.body === `completed ${login.loginId}` ? null : reasonOf(res.body);
}

const pemBody = (pem: string) => pem.replace(/-----(BEGIN|END) CERTIFICATE-----|\s/g, '');

describe('SP keys', () => {
  it('lists the connection’s keys with certificates only, creating the current encryption key on first need', async () => {
    const s = await setup('list');
    const res = await admin('GET', s.keys);
    expect(res.status).toBe(200);
    expect(res.json.data).toHaveLength(1);
    const [key] = res.json.data ?? [];
    expect(key).toMatchObject({ use: 'encryption', status: 'current', retired_at: null });
    expect(Object.keys(key ?? {}).sort()).toEqual(
      [
        'activated_at',
        'certificate_pem',
        'created_at',
        'fingerprint_sha256',
        'id',
        'not_after',
        'retired_at',
        'status',
        'use',
      ].sort(),
    );
    expect(res.text).not.toMatch(/PRIVATE|private/);
    // Ten years of validity: rotation, not expiry, replaces a key.
    expect(new Date(key?.not_after ?? 0).getTime()).toBeGreaterThan(Date.now() + 9 * 365 * 86_400_000);
    // The metadata lists the same certificate.
    expect(metadataCertificates(await metadata(s.connection), 'encryption').map(pemBody)).toEqual([
      pemBody(key?.certificate_pem ?? ''),
    ]);
  });

  it('rotates the encryption key without a failed login: next published at once, previous accepted until retired', async () => {
    const s = { ...(await setup('roll')), slug: 'roll' };
    const [first] = metadataCertificates(await metadata(s.connection), 'encryption');
    if (!first) throw new Error('no encryption certificate');
    expect(await loginEncryptedTo(s, first)).toBeNull();

    const rotated = await admin('POST', `${s.keys}/rotate`, { use: 'encryption' });
    expect(rotated.status).toBe(200);
    const next = rotated.json.data?.find((k) => k.status === 'next');
    if (!next) throw new Error('no next key');
    // Published at once, after the current one; an IdP that moves early is served too.
    expect(metadataCertificates(await metadata(s.connection), 'encryption').map(pemBody)).toEqual([
      pemBody(first),
      pemBody(next.certificate_pem),
    ]);
    expect(await loginEncryptedTo(s, next.certificate_pem)).toBeNull();
    expect(await loginEncryptedTo(s, first)).toBeNull();

    expect((await admin('POST', `${s.keys}/activate`, { use: 'encryption' })).status).toBe(200);
    expect(metadataCertificates(await metadata(s.connection), 'encryption').map(pemBody)).toEqual([
      pemBody(next.certificate_pem),
      pemBody(first),
    ]);
    // The overlap: an IdP still encrypting to the previous certificate signs people in.
    expect(await loginEncryptedTo(s, first)).toBeNull();
    expect(await loginEncryptedTo(s, next.certificate_pem)).toBeNull();

    const retired = await admin('POST', `${s.keys}/retire`, { use: 'encryption' });
    expect(retired.status).toBe(200);
    expect(retired.json.data?.map((k) => k.status).sort()).toEqual(['current', 'retired']);
    expect(metadataCertificates(await metadata(s.connection), 'encryption').map(pemBody)).toEqual([
      pemBody(next.certificate_pem),
    ]);
    expect(await loginEncryptedTo(s, first)).toBe('saml_decryption_failed');
    expect(await loginEncryptedTo(s, next.certificate_pem)).toBeNull();
    // The retired key keeps no private key.
    const [row] = await t.db.withTenant(s.tenantId, (em) =>
      em.query<{ private_key_enc: string | null }[]>(
        `SELECT private_key_enc FROM connection_sp_keys WHERE status = 'retired' AND connection_id = $1`,
        [s.connection.id],
      ),
    );
    expect(row?.private_key_enc).toBeNull();

    for (const action of ['rotated', 'activated', 'retired']) {
      const events = await auditEvents(t.db, s.tenantId, `connection.sp_key_${action}`);
      expect({ action, events: events.length, actor: events[0]?.actor_type }).toEqual({
        action,
        events: 1,
        actor: 'operator',
      });
      expect(events[0]?.target_id).toBe(s.connection.id);
      expect(JSON.stringify(events[0]?.after)).not.toContain('BEGIN');
    }
  });

  it('signs AuthnRequests with the current signing key, and with the new one only after activation', async () => {
    const s = await setup('signroll', true);
    const signing = async () => metadataCertificates(await metadata(s.connection), 'signing');
    const [first] = await signing();
    if (!first) throw new Error('no signing certificate');
    expect(await metadata(s.connection)).toContain('AuthnRequestsSigned="true"');
    const requestVerifiesWith = async (cert: string) => {
      const target = { ...s.sp, signingCert: cert };
      try {
        await startLogin(gh.baseUrl, s.idp, target, 'req@signroll.test');
        return true;
      } catch {
        return false;
      }
    };
    expect(await requestVerifiesWith(first)).toBe(true);

    const rotated = await admin('POST', `${s.keys}/rotate`, { use: 'signing' });
    const next = rotated.json.data?.find((k) => k.use === 'signing' && k.status === 'next');
    if (!next) throw new Error('no next signing key');
    expect((await signing()).map(pemBody)).toEqual([pemBody(first), pemBody(next.certificate_pem)]);
    // Published, not yet used: requests are still signed by the current key.
    expect(await requestVerifiesWith(first)).toBe(true);
    expect(await requestVerifiesWith(next.certificate_pem)).toBe(false);

    await admin('POST', `${s.keys}/activate`, { use: 'signing' });
    expect(await requestVerifiesWith(next.certificate_pem)).toBe(true);
    expect(await requestVerifiesWith(first)).toBe(false);
    expect((await signing()).map(pemBody)).toEqual([pemBody(next.certificate_pem), pemBody(first)]);
  });

  it('answers 409 to rotate with a next key waiting, activate without one and retire without a previous one, 400 to an unknown use, changing nothing', async () => {
    const s = await setup('conflict');
    await admin('GET', s.keys);
    expect((await admin('POST', `${s.keys}/rotate`, { use: 'encryption' })).status).toBe(200);
    const state = () =>
      t.db.withTenant(s.tenantId, async (em) => ({
        keys: await em.query('SELECT id, status, private_key_enc FROM connection_sp_keys ORDER BY id'),
        audit: await em.query('SELECT count(*)::int AS n FROM audit_events'),
      }));
    const before = await state();
    const again = await admin('POST', `${s.keys}/rotate`, { use: 'encryption' });
    expect([again.status, again.json.code]).toEqual([409, 'conflict']);
    const noNext = await admin('POST', `${s.keys}/activate`, { use: 'signing' });
    expect([noNext.status, noNext.json.code]).toEqual([409, 'conflict']);
    const noPrevious = await admin('POST', `${s.keys}/retire`, { use: 'encryption' });
    expect([noPrevious.status, noPrevious.json.code]).toEqual([409, 'conflict']);
    for (const body of [{ use: 'decryption' }, {}, { use: 'signing', extra: 1 }, { use: ['signing'] }]) {
      const bad = await admin('POST', `${s.keys}/rotate`, body);
      expect([bad.status, bad.json.code]).toEqual([400, 'bad_request']);
    }
    expect((await admin('GET', `/tenants/${s.tenantId}/connections/not-a-uuid/sp-keys`)).status).toBe(404);
    expect(await state()).toEqual(before);
  });
});
