import { randomUUID } from 'node:crypto';
import type http from 'node:http';
import fc from 'fast-check';
import request from 'supertest';
import { cacheValidators } from '../../src/connections/metadata-refresh.js';
import { runMetadataSweep } from '../../src/connections/metadata-refresh-sweep.js';
import { outboundPolicy } from '../../src/outbound/pinned-request.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { startLocalServer, type LocalServer } from '../support/local-http.js';
import { SamlTestIdp } from '../support/saml-idp.js';
import { RecordingCompleter, startSsoServer, type SsoServer } from '../support/sso-app.js';
import { createTenantWithDomains } from '../support/sso-factories.js';
import { metadataXml } from './metadata-refresh-support.js';

/**
 * ETag at creation (issue 16): a SAML connection created from a metadata URL
 * keeps the validators of that first fetch (RFC 9110 §8.8), so the first
 * scheduled refresh is already conditional and an unchanged document costs a
 * 304, not a download and a re-parse. A real HTTP server on loopback plays the
 * IdP's metadata endpoint and counts the conditional requests it gets.
 */
let t: TestDatabase;
let gh: SsoServer;
let server: LocalServer;
const routes: Record<string, (req: http.IncomingMessage, res: http.ServerResponse) => void> = {};
const DAY = 24 * 3600 * 1000;

beforeAll(async () => {
  t = await createTestDatabase();
  gh = await startSsoServer(t, { completer: new RecordingCompleter() });
  server = await startLocalServer(routes);
});
afterAll(async () => {
  await server.close();
  await gh.close();
  await t.close();
});

interface Seen {
  ifNoneMatch: string | undefined;
  ifModifiedSince: string | undefined;
  status: number;
}

/** A metadata endpoint with fixed validators; 304 when the request carries a matching one. */
function serveMetadata(path: string, body: string, validators: { etag?: string; lastModified?: string }) {
  const seen: Seen[] = [];
  routes[path] = (req, res) => {
    const ifNoneMatch = req.headers['if-none-match'];
    const ifModifiedSince = req.headers['if-modified-since'];
    const matches =
      (validators.etag !== undefined && ifNoneMatch === validators.etag) ||
      (validators.etag === undefined &&
        validators.lastModified !== undefined &&
        ifModifiedSince === validators.lastModified);
    const headers: Record<string, string> = {};
    if (validators.etag !== undefined) headers.etag = validators.etag;
    if (validators.lastModified !== undefined) headers['last-modified'] = validators.lastModified;
    seen.push({ ifNoneMatch, ifModifiedSince, status: matches ? 304 : 200 });
    if (matches) res.writeHead(304, headers).end();
    else res.writeHead(200, { ...headers, 'content-type': 'application/samlmetadata+xml' }).end(body);
  };
  return {
    url: `${server.url}${path}`,
    seen,
    conditional: () => seen.filter((s) => s.ifNoneMatch !== undefined || s.ifModifiedSince !== undefined),
  };
}

const op = () => request.agent(gh.app).set('Authorization', `Bearer ${gh.secrets.adminToken}`);

async function createFromUrl(metadataUrl: string) {
  const tenantId = await createTenantWithDomains(t.db, `t-${randomUUID().slice(0, 8)}`, [
    `${randomUUID().slice(0, 8)}.test`,
  ]);
  const res = await op()
    .post(`/admin/v1/tenants/${tenantId}/connections`)
    .send({ type: 'saml', name: 'IdP', status: 'active', metadata_url: metadataUrl });
  expect(res.status).toBe(201);
  return { tenantId, connectionId: res.body.id as string };
}

async function storedValidators(tenantId: string, connectionId: string) {
  const rows = await t.db.withTenant(tenantId, (em) =>
    em.query<{ metadata_etag: string | null; metadata_last_modified: string | null }[]>(
      'SELECT metadata_etag, metadata_last_modified FROM connections WHERE id = $1',
      [connectionId],
    ),
  );
  return rows[0];
}

const sweepOptions = () => ({
  db: t.db,
  fetch: outboundPolicy(gh.config.outboundFetch),
  overlapMs: 7 * DAY,
  intervalMs: DAY,
});

/** Runs the sweep as the scheduler would a day later: every connection created now is due. */
const sweepTomorrow = () => runMetadataSweep(sweepOptions(), new Date(Date.now() + DAY + 60_000));

describe('metadata validators kept from the connection’s creation', () => {
  it('stores the first fetch’s ETag and Last-Modified, so the first scheduled refresh gets a 304', async () => {
    const idp = await SamlTestIdp.create('etag-create');
    const lastModified = 'Tue, 01 Dec 2026 10:00:00 GMT';
    const doc = serveMetadata('/etag-create', metadataXml(idp.entityId, idp.ssoUrl, [idp.certificatePem]), {
      etag: '"idp-v7"',
      lastModified,
    });
    const { tenantId, connectionId } = await createFromUrl(doc.url);
    expect(await storedValidators(tenantId, connectionId)).toEqual({
      metadata_etag: '"idp-v7"',
      metadata_last_modified: lastModified,
    });
    expect(doc.seen).toEqual([{ ifNoneMatch: undefined, ifModifiedSince: undefined, status: 200 }]);
    const certificates = (await op().get(`/admin/v1/tenants/${tenantId}/connections/${connectionId}`)).body
      .saml.certificates as unknown[];

    await sweepTomorrow();
    // The first refresh after creation is conditional and unchanged: one request, answered 304.
    expect(doc.conditional()).toEqual([
      { ifNoneMatch: '"idp-v7"', ifModifiedSince: lastModified, status: 304 },
    ]);
    expect(doc.seen).toHaveLength(2);
    const after = (await op().get(`/admin/v1/tenants/${tenantId}/connections/${connectionId}`)).body;
    expect(after.saml.certificates).toEqual(certificates);
    expect(after.saml.metadata).toMatchObject({ url: doc.url, refresh_error: null });
  });

  it('sends If-Modified-Since when the IdP gives only Last-Modified', async () => {
    const idp = await SamlTestIdp.create('lm-create');
    const lastModified = 'Wed, 02 Dec 2026 08:30:00 GMT';
    const doc = serveMetadata('/lm-create', metadataXml(idp.entityId, idp.ssoUrl, [idp.certificatePem]), {
      lastModified,
    });
    const { tenantId, connectionId } = await createFromUrl(doc.url);
    expect(await storedValidators(tenantId, connectionId)).toEqual({
      metadata_etag: null,
      metadata_last_modified: lastModified,
    });
    await sweepTomorrow();
    expect(doc.conditional()).toEqual([
      { ifNoneMatch: undefined, ifModifiedSince: lastModified, status: 304 },
    ]);
  });

  it('keeps no validators from metadata served without them: the first refresh downloads', async () => {
    const idp = await SamlTestIdp.create('no-validators');
    const doc = serveMetadata(
      '/no-validators',
      metadataXml(idp.entityId, idp.ssoUrl, [idp.certificatePem]),
      {},
    );
    const { tenantId, connectionId } = await createFromUrl(doc.url);
    expect(await storedValidators(tenantId, connectionId)).toEqual({
      metadata_etag: null,
      metadata_last_modified: null,
    });
    await sweepTomorrow();
    expect(doc.conditional()).toEqual([]);
    expect(doc.seen.map((s) => s.status)).toEqual([200, 200]);
  });

  it('property: whatever validator headers the IdP sends, creation never fails on them and keeps only a usable one', async () => {
    const runs = Math.min(Number(process.env.GATEHOUSE_FUZZ_RUNS ?? 12), 60);
    const seed = Number.isInteger(Number(process.env.GATEHOUSE_FUZZ_SEED))
      ? Number(process.env.GATEHOUSE_FUZZ_SEED)
      : 1616;
    const idp = await SamlTestIdp.create('fuzz-validators');
    const body = metadataXml(idp.entityId, idp.ssoUrl, [idp.certificatePem]);
    // Header values node can put on the wire: visible ASCII and spaces, any length around the column limits.
    const value = fc.oneof(
      fc.stringMatching(/^[\x21-\x7e][\x20-\x7e]{0,40}$/),
      fc.integer({ min: 100, max: 700 }).map((n) => `"${'e'.repeat(n)}"`),
    );
    let n = 0;
    await fc.assert(
      fc.asyncProperty(fc.option(value), fc.option(value), async (etag, lastModified) => {
        n += 1;
        const path = `/fuzz-${n}`;
        serveMetadata(path, body, {
          ...(etag === null ? {} : { etag }),
          ...(lastModified === null ? {} : { lastModified }),
        });
        const { tenantId, connectionId } = await createFromUrl(`${server.url}${path}`);
        const stored = await storedValidators(tenantId, connectionId);
        // Kept exactly, or not at all when it would not fit its column.
        expect(stored?.metadata_etag).toBe(etag !== null && etag.length <= 512 ? etag : null);
        expect(stored?.metadata_last_modified).toBe(
          lastModified !== null && lastModified.length <= 128 ? lastModified : null,
        );
      }),
      { seed, numRuns: runs },
    );
  });

  it('reads validators from headers without trusting their shape', () => {
    fc.assert(
      fc.property(
        fc.dictionary(
          fc.constantFrom('etag', 'last-modified', 'content-type', '__proto__'),
          fc.oneof(
            fc.string({ maxLength: 600 }),
            fc.array(fc.string(), { maxLength: 3 }),
            fc.constant(undefined),
          ),
        ),
        (headers) => {
          const v = cacheValidators(headers);
          for (const [name, got, max] of [
            ['etag', v.etag, 512],
            ['last-modified', v.lastModified, 128],
          ] as const) {
            const raw = headers[name];
            if (got === null)
              expect(typeof raw !== 'string' || raw.length === 0 || raw.length > max).toBe(true);
            else expect(got).toBe(raw);
          }
        },
      ),
      { seed: 16, numRuns: Number(process.env.GATEHOUSE_FUZZ_RUNS ?? 200) },
    );
  });
});
