import { randomUUID } from 'node:crypto';
import type http from 'node:http';
import request from 'supertest';
import {
  refreshConnectionMetadata,
  runMetadataSweep,
  type MetadataRefreshOptions,
} from '../../src/connections/metadata-refresh-sweep.js';
import { outboundPolicy } from '../../src/outbound/pinned-request.js';
import { TestBrowser } from '../support/browser.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { startLocalServer, type LocalServer } from '../support/local-http.js';
import { SamlTestIdp } from '../support/saml-idp.js';
import { RecordingCompleter, startSsoServer, type SsoServer } from '../support/sso-app.js';
import { auditEvents, createTenantWithDomains, spOf } from '../support/sso-factories.js';
import { metadataXml } from './metadata-refresh-support.js';
import { outboxRows, registerWebhookApp } from '../webhooks/support.js';

/**
 * Certificates that renew themselves (issue 16): a SAML connection created
 * from a metadata URL is re-fetched through the outbound guard with
 * If-None-Match; a real HTTP server on loopback plays the IdP's metadata
 * endpoint, samlify (SamlTestIdp) signs the logins.
 */
let t: TestDatabase;
let gh: SsoServer;
let server: LocalServer;
const completer = new RecordingCompleter();
const routes: Record<string, (req: http.IncomingMessage, res: http.ServerResponse) => void> = {};
const DAY = 24 * 3600 * 1000;

beforeAll(async () => {
  t = await createTestDatabase();
  gh = await startSsoServer(t, { completer });
  server = await startLocalServer(routes);
  // An app that takes webhooks: a new IdP certificate is announced to it (queued in the change's transaction).
  await registerWebhookApp(t.db, gh.secrets.masterKey, `${server.url}/hooks`);
});
afterAll(async () => {
  await server.close();
  await gh.close();
  await t.close();
});

/** An IdP metadata endpoint answering 304 to a matching If-None-Match, and recording what it was sent. */
function serveMetadata(path: string, initial: string) {
  let body = initial;
  let version = 1;
  const seen: { ifNoneMatch: string | undefined; status: number }[] = [];
  routes[path] = (req, res) => {
    const etag = `"v${version}"`;
    const ifNoneMatch = req.headers['if-none-match'];
    const status = ifNoneMatch === etag ? 304 : 200;
    seen.push({ ifNoneMatch, status });
    if (status === 304) res.writeHead(304, { etag }).end();
    else res.writeHead(200, { etag, 'content-type': 'application/samlmetadata+xml' }).end(body);
  };
  return {
    url: `${server.url}${path}`,
    seen,
    publish(next: string) {
      body = next;
      version += 1;
    },
  };
}

const op = () => request.agent(gh.app).set('Authorization', `Bearer ${gh.secrets.adminToken}`);

async function connectionFromUrl(domain: string, metadataUrl: string) {
  const tenantId = await createTenantWithDomains(t.db, `t-${randomUUID().slice(0, 8)}`, [domain]);
  const res = await op()
    .post(`/admin/v1/tenants/${tenantId}/connections`)
    .send({ type: 'saml', name: 'IdP', status: 'active', metadata_url: metadataUrl });
  expect(res.status).toBe(201);
  return { tenantId, connectionId: res.body.id as string };
}

const refreshNow = (tenantId: string, connectionId: string) =>
  op().post(`/admin/v1/tenants/${tenantId}/connections/${connectionId}/metadata/refresh`).send({});

const view = async (tenantId: string, connectionId: string) =>
  (await op().get(`/admin/v1/tenants/${tenantId}/connections/${connectionId}`)).body as {
    warnings: unknown[];
    saml: {
      idp_entity_id: string;
      certificates: { fingerprint_sha256: string; removed_at: string | null; first_seen_at: string | null }[];
      metadata: { url: string | null; refreshed_at: string | null; refresh_error: string | null };
    };
  };

const options = (overlapMs = 7 * DAY): MetadataRefreshOptions => ({
  db: t.db,
  fetch: outboundPolicy(gh.config.outboundFetch),
  overlapMs,
});

async function signIn(connectionId: string, email: string, idp: SamlTestIdp) {
  const browser = new TestBrowser();
  const loginId = randomUUID();
  const start = await browser.visit(
    `${gh.baseUrl}/login?login=${loginId}&email=${encodeURIComponent(email)}`,
    idp.ssoUrl,
  );
  if (!start.redirectedTo) throw new Error(`no redirect to the IdP: ${start.status} ${start.body}`);
  const sp = spOf(gh.baseUrl, { id: connectionId });
  const answer = await idp.answer(start.redirectedTo, sp, { nameId: email, attributes: { email } });
  const done = await browser.visit(sp.acsUrl, 'about:', {
    method: 'POST',
    form: { SAMLResponse: answer.samlResponse },
  });
  return { loginId, done };
}

describe('IdP metadata refresh', () => {
  it('keeps the metadata URL, re-fetches with If-None-Match and changes nothing on 304', async () => {
    const idp = await SamlTestIdp.create('etag');
    const doc = serveMetadata('/etag', metadataXml(idp.entityId, idp.ssoUrl, [idp.certificatePem]));
    const { tenantId, connectionId } = await connectionFromUrl('etag.test', doc.url);
    const before = await view(tenantId, connectionId);
    expect(before.saml.metadata).toMatchObject({ url: doc.url, refresh_error: null });

    // The creation's fetch left its ETag (metadata-etag.test.ts): the first refresh is already conditional.
    const first = await refreshNow(tenantId, connectionId);
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({
      outcome: 'not_modified',
      changes: { added: [], removed: [], dropped: [] },
    });
    const second = await refreshNow(tenantId, connectionId);
    expect(second.body.outcome).toBe('not_modified');
    expect(doc.seen.map((s) => s.status)).toEqual([200, 304, 304]);
    expect(doc.seen[2]?.ifNoneMatch).toBe('"v1"');
    expect((await view(tenantId, connectionId)).saml.certificates).toEqual(before.saml.certificates);
  });

  it('adds a rotated certificate at once, keeps the old one through the overlap, then drops it', async () => {
    const idp = await SamlTestIdp.create('rotating');
    const next = await SamlTestIdp.rotated(idp);
    const doc = serveMetadata('/rotating', metadataXml(idp.entityId, idp.ssoUrl, [idp.certificatePem]));
    const { tenantId, connectionId } = await connectionFromUrl('rotating.test', doc.url);
    const oldPrint = idp.certificate().fingerprintSha256;
    const newPrint = next.certificate().fingerprintSha256;

    // The IdP publishes its next certificate beside the current one, then signs with it.
    doc.publish(metadataXml(idp.entityId, idp.ssoUrl, [idp.certificatePem, next.certificatePem]));
    const added = await refreshNow(tenantId, connectionId);
    expect(added.body).toMatchObject({ outcome: 'updated', changes: { added: [expect.any(String)] } });
    const login = await signIn(connectionId, 'ann@rotating.test', next);
    expect(login.done.body).toBe(`completed ${login.loginId}`);

    // The old certificate leaves the metadata: it keeps verifying during the overlap.
    doc.publish(metadataXml(idp.entityId, idp.ssoUrl, [next.certificatePem]));
    expect((await refreshNow(tenantId, connectionId)).body.changes.removed).toHaveLength(1);
    const during = await view(tenantId, connectionId);
    const old = during.saml.certificates.find(
      (c) =>
        c.fingerprint_sha256.replace(/:/g, '').toLowerCase() === oldPrint.replace(/:/g, '').toLowerCase(),
    );
    expect(old?.removed_at).toEqual(expect.any(String));
    const stillOld = await signIn(connectionId, 'bob@rotating.test', idp);
    expect(stillOld.done.body).toBe(`completed ${stillOld.loginId}`);

    // After the overlap the next refresh drops it; logins signed with it are refused.
    const later = await refreshConnectionMetadata(options(), tenantId, connectionId, {
      now: new Date(Date.now() + 8 * DAY),
      dueBefore: null,
    });
    expect(later).toMatchObject({ outcome: 'not_modified', changes: { dropped: [expect.any(String)] } });
    const after = await view(tenantId, connectionId);
    expect(after.saml.certificates).toHaveLength(1);
    expect(after.saml.certificates[0]?.fingerprint_sha256.replace(/:/g, '').toLowerCase()).toBe(
      newPrint.replace(/:/g, '').toLowerCase(),
    );
    const refused = await signIn(connectionId, 'cy@rotating.test', idp);
    expect(refused.done.body).not.toContain('completed');
    const queued = (await outboxRows(t.db, tenantId)).filter(
      (r) => r.event_type === 'connection.certificate_added',
    );
    expect(queued).toHaveLength(1);
    for (const action of ['certificate_added', 'certificate_removed', 'certificate_dropped'])
      expect(await auditEvents(t.db, tenantId, `connection.${action}`)).toHaveLength(1);
  });

  it("follows the IdP's SingleLogoutService: added, moved and dropped with the metadata, each change audited", async () => {
    const idp = await SamlTestIdp.create('slo-moving');
    const cert = [idp.certificatePem];
    const doc = serveMetadata('/slo-moving', metadataXml(idp.entityId, idp.ssoUrl, cert));
    const { tenantId, connectionId } = await connectionFromUrl('slo-moving.test', doc.url);
    const slo = async () =>
      (
        (await op().get(`/admin/v1/tenants/${tenantId}/connections/${connectionId}`)).body as {
          saml: { idp_slo_url: string | null };
        }
      ).saml.idp_slo_url;
    expect(await slo()).toBeNull();

    doc.publish(metadataXml(idp.entityId, idp.ssoUrl, cert, 'https://idp.slo-moving.test/slo'));
    expect((await refreshNow(tenantId, connectionId)).body).toMatchObject({ outcome: 'updated' });
    expect(await slo()).toBe('https://idp.slo-moving.test/slo');

    doc.publish(metadataXml(idp.entityId, idp.ssoUrl, cert, 'https://idp.slo-moving.test/logout'));
    await refreshNow(tenantId, connectionId);
    expect(await slo()).toBe('https://idp.slo-moving.test/logout');

    doc.publish(metadataXml(idp.entityId, idp.ssoUrl, cert));
    await refreshNow(tenantId, connectionId);
    expect(await slo()).toBeNull();
    const changes = await auditEvents(t.db, tenantId, 'connection.slo_url_changed');
    expect(changes.map((e) => (e.after as { slo_url: string | null }).slo_url)).toEqual([
      'https://idp.slo-moving.test/slo',
      'https://idp.slo-moving.test/logout',
      null,
    ]);
    // A document that did not change is not a change.
    expect((await refreshNow(tenantId, connectionId)).body).toMatchObject({ outcome: 'not_modified' });
  });

  it('refuses metadata naming another entity id: error recorded, certificates and entity id unchanged', async () => {
    const idp = await SamlTestIdp.create('entity');
    const doc = serveMetadata('/entity', metadataXml(idp.entityId, idp.ssoUrl, [idp.certificatePem]));
    const { tenantId, connectionId } = await connectionFromUrl('entity.test', doc.url);
    const before = await view(tenantId, connectionId);
    const other = await SamlTestIdp.create('hijack');
    doc.publish(metadataXml(other.entityId, other.ssoUrl, [other.certificatePem]));

    const res = await refreshNow(tenantId, connectionId);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ outcome: 'failed', error: { code: 'metadata_entity_id_changed' } });
    const after = await view(tenantId, connectionId);
    expect(after.saml.idp_entity_id).toBe(idp.entityId);
    expect(after.saml.certificates).toEqual(before.saml.certificates);
    expect(after.saml.metadata.refresh_error).toMatch(/^metadata_entity_id_changed: /);
    expect(await auditEvents(t.db, tenantId, 'connection.metadata_refresh_failed')).toHaveLength(1);
  });

  it('records an unreachable metadata URL as an error and keeps the working certificates', async () => {
    const idp = await SamlTestIdp.create('gone');
    const gone = await startLocalServer({
      '/m': (_req, res) =>
        res.writeHead(200).end(metadataXml(idp.entityId, idp.ssoUrl, [idp.certificatePem])),
    });
    const { tenantId, connectionId } = await connectionFromUrl('gone.test', `${gone.url}/m`);
    const before = await view(tenantId, connectionId);
    await gone.close();

    const res = await refreshNow(tenantId, connectionId);
    expect(res.body).toMatchObject({ outcome: 'failed', error: { code: 'metadata_fetch_failed' } });
    const after = await view(tenantId, connectionId);
    expect(after.saml.certificates).toEqual(before.saml.certificates);
    expect(after.saml.metadata.refresh_error).toMatch(/^metadata_fetch_failed: /);
    const login = await signIn(connectionId, 'dee@gone.test', idp);
    expect(login.done.body).toBe(`completed ${login.loginId}`);
  });

  it('answers 409 for a connection without a metadata URL and 404 for an unknown one', async () => {
    const idp = await SamlTestIdp.create('xml');
    const tenantId = await createTenantWithDomains(t.db, `t-${randomUUID().slice(0, 8)}`, ['xml.test']);
    const created = await op()
      .post(`/admin/v1/tenants/${tenantId}/connections`)
      .send({
        type: 'saml',
        name: 'IdP',
        metadata_xml: metadataXml(idp.entityId, idp.ssoUrl, [idp.certificatePem]),
      });
    expect(created.body.saml.metadata.url).toBeNull();
    const res = await refreshNow(tenantId, created.body.id as string);
    expect(res.status).toBe(409);
    expect(res.body).toMatchObject({ code: 'conflict' });
    const unknown = await refreshNow(tenantId, randomUUID());
    expect(unknown.status).toBe(404);
  });

  it('has two nodes sweeping at once fetch each due connection once, and skips one refreshed recently', async () => {
    const idp = await SamlTestIdp.create('sweep');
    const doc = serveMetadata('/sweep', metadataXml(idp.entityId, idp.ssoUrl, [idp.certificatePem]));
    const { tenantId, connectionId } = await connectionFromUrl('sweep.test', doc.url);
    const fetchesAfterCreate = doc.seen.length;
    const sweep = { ...options(), intervalMs: DAY };

    // Created just now: not due yet.
    await runMetadataSweep(sweep, new Date());
    expect(doc.seen.length).toBe(fetchesAfterCreate);

    const tomorrow = new Date(Date.now() + DAY + 60_000);
    await Promise.all([runMetadataSweep(sweep, tomorrow), runMetadataSweep(sweep, tomorrow)]);
    expect(doc.seen.length).toBe(fetchesAfterCreate + 1);
    expect((await view(tenantId, connectionId)).saml.metadata.refreshed_at).toBe(tomorrow.toISOString());
  });
});
