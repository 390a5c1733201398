import request from 'supertest';
import { open } from '../../src/config/secret-box.js';
import { spKeyContext } from '../../src/connections/sp-keys.service.js';
import { buildAdminTestApp, type AdminTestApp } from '../support/admin.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { SamlTestIdp } from '../support/saml-idp.js';
import { createSamlConnection, createTenantWithDomains, spOf } from '../support/sso-factories.js';
import { encryptedResponse, metadataCertificates } from '../sso/saml-encryption-idp.js';

/**
 * SP keys are tenant data and private keys are secrets: another tenant's
 * admin reaches none of them (404, nothing changed), and no private key ever
 * leaves the database sealed — not in an admin answer, the SP metadata, an
 * audit event or a log line, including the ACS's logs of a refused encrypted
 * assertion.
 */
let t: TestDatabase;
let a: AdminTestApp;
let acme: { tenantId: string; connectionId: string };
let globex: { tenantId: string; connectionId: string; idp: SamlTestIdp };

beforeAll(async () => {
  t = await createTestDatabase();
  a = buildAdminTestApp(t);
  const make = async (slug: string) => {
    const idp = await SamlTestIdp.create(slug);
    const tenantId = await createTenantWithDomains(t.db, slug, [`${slug}.test`]);
    const connection = await createSamlConnection(t.db, tenantId, idp);
    return { tenantId, connectionId: connection.id, idp };
  };
  acme = await make('acme');
  globex = await make('globex');
  // Globex has a current, a previous and a next encryption key.
  const keys = `/admin/v1/tenants/${globex.tenantId}/connections/${globex.connectionId}/sp-keys`;
  expect((await a.op().get(keys)).status).toBe(200);
  expect((await a.op().post(`${keys}/rotate`).send({ use: 'encryption' })).status).toBe(200);
  expect((await a.op().post(`${keys}/activate`).send({ use: 'encryption' })).status).toBe(200);
  expect((await a.op().post(`${keys}/rotate`).send({ use: 'encryption' })).status).toBe(200);
});
afterAll(() => t.close());

async function snapshot(tenantId: string) {
  return t.db.withTenant(tenantId, async (em) => ({
    keys: await em.query(
      'SELECT id, connection_id, use, status, private_key_enc, retired_at FROM connection_sp_keys ORDER BY id',
    ),
    audit: await em.query('SELECT count(*)::int AS n FROM audit_events'),
  }));
}

const SUFFIXES: [method: 'get' | 'post', suffix: string][] = [
  ['get', ''],
  ['post', '/rotate'],
  ['post', '/activate'],
  ['post', '/retire'],
];

describe('SP keys: tenant isolation and secrecy', () => {
  it("answers 404 to tenant A's admin on tenant B's SP keys and to B's connection under A's path, changing no key of B", async () => {
    const before = await snapshot(globex.tenantId);
    expect(before.keys).toHaveLength(3);
    const acmeAdmin = () => a.tenantAdmin(acme.tenantId, 'u-acme-admin');
    // Control: Acme's admin manages Acme's own keys.
    const own = await acmeAdmin().get(
      `/admin/v1/tenants/${acme.tenantId}/connections/${acme.connectionId}/sp-keys`,
    );
    expect(own.status).toBe(200);

    const onB = `/admin/v1/tenants/${globex.tenantId}/connections/${globex.connectionId}/sp-keys`;
    const mixed = `/admin/v1/tenants/${acme.tenantId}/connections/${globex.connectionId}/sp-keys`;
    for (const [agent, path] of [
      [acmeAdmin, onB],
      [acmeAdmin, mixed],
      // Even the operator cannot reach B's connection through A's path: the connection is read under A (RLS).
      [() => a.op(), mixed],
    ] as const) {
      for (const [method, suffix] of SUFFIXES) {
        for (const use of ['encryption', 'signing']) {
          const call = agent()[method](`${path}${suffix}`);
          const res = method === 'post' ? await call.send({ use }) : await call;
          expect({ call: `${method} ${path}${suffix}`, status: res.status, code: res.body.code }).toEqual({
            call: `${method} ${path}${suffix}`,
            status: 404,
            code: 'not_found',
          });
          expect(res.text).not.toContain('CERTIFICATE');
        }
      }
    }
    expect(await snapshot(globex.tenantId)).toEqual(before);
  });

  it('never shows a private key in an admin answer, the SP metadata, an audit event or a log line', async () => {
    const keys = `/admin/v1/tenants/${globex.tenantId}/connections/${globex.connectionId}/sp-keys`;
    const bodies: string[] = [];
    bodies.push((await a.op().get(keys)).text);
    bodies.push((await a.op().post(`${keys}/activate`).send({ use: 'encryption' })).text);
    bodies.push((await a.op().post(`${keys}/retire`).send({ use: 'encryption' })).text);
    bodies.push((await a.op().post(`${keys}/rotate`).send({ use: 'encryption' })).text);
    const metadata = (await request(a.app).get(`/saml/${globex.connectionId}/metadata`)).text;
    bodies.push(metadata);
    bodies.push((await a.op().get(`/admin/v1/tenants/${globex.tenantId}/audit-events`)).text);

    // The ACS decrypts (and refuses: unsolicited) and fails to decrypt: both are logged.
    const sp = spOf('https://gatehouse.test', { id: globex.connectionId });
    const stranger = await SamlTestIdp.create('stranger');
    for (const encryptTo of [...metadataCertificates(metadata, 'encryption'), stranger.certificatePem]) {
      const answer = await encryptedResponse(
        globex.idp,
        '',
        sp,
        { nameId: 'secret.person@globex.test' },
        {
          encryptTo,
          inResponseTo: null,
        },
      );
      const res = await request(a.app)
        .post(`/saml/${globex.connectionId}/acs`)
        .type('form')
        .send({ SAMLResponse: answer.samlResponse });
      expect(res.status).toBeGreaterThanOrEqual(400);
      expect(res.status).toBeLessThan(500);
      bodies.push(res.text);
    }

    const rows = await t.db.withTenant(globex.tenantId, (em) =>
      em.query<{ id: string; connection_id: string; private_key_enc: string | null }[]>(
        'SELECT id, connection_id, private_key_enc FROM connection_sp_keys WHERE private_key_enc IS NOT NULL',
      ),
    );
    expect(rows.length).toBeGreaterThanOrEqual(2);
    const logs = a.logs();
    // Both refusals were logged, so the log is worth searching.
    expect(logs).toContain('saml_decryption_failed');
    expect(logs).toContain('saml_unsolicited_response');
    for (const row of rows) {
      const pem = open(
        a.secrets.masterKey,
        row.private_key_enc ?? '',
        spKeyContext(globex.tenantId, row.connection_id, row.id),
      );
      const body = pem.replace(/-----(BEGIN|END) PRIVATE KEY-----|\s/g, '');
      // Any 48-character window of the key, and the sealed form, appear nowhere.
      const windows = [0, 400, 800, body.length - 48].map((at) => body.slice(at, at + 48));
      for (const text of [...bodies, logs]) {
        for (const w of windows) expect(text.includes(w)).toBe(false);
        expect(text.includes(row.private_key_enc ?? '')).toBe(false);
      }
    }
    for (const text of [...bodies, logs]) expect(text).not.toContain('PRIVATE KEY');
    // The decrypted assertion's subject is not logged either (docs/security.md §7).
    expect(logs).not.toContain('secret.person@globex.test');
  });
});
