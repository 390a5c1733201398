import { randomUUID } from 'node:crypto';
import type http from 'node:http';
import fc from 'fast-check';
import { Connection, type SamlCertificate } from '../../src/connections/connection.entity.js';
import { refreshConnectionMetadata } from '../../src/connections/metadata-refresh-sweep.js';
import { parseCertificate } from '../../src/connections/saml-metadata.js';
import { outboundPolicy } from '../../src/outbound/pinned-request.js';
import { parseConfig } from '../../src/config/config.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { startLocalServer, type LocalServer } from '../support/local-http.js';
import { createTenantWithDomains } from '../support/sso-factories.js';
import { certificateUntil, metadataXml } from './metadata-refresh-support.js';

/**
 * Property (issue 16): whatever an IdP's metadata URL serves — a genuine
 * document with any subset of its certificates, another entity's document,
 * a mangled one, garbage, a DOCTYPE, a 304, a 500 or a redirect — a refresh
 * never throws out of the sweep, never changes the entity id, never drops a
 * certificate that is still within its overlap (or was never removed), and a
 * failed refresh leaves the certificates exactly as they were. Seeded,
 * bounded by GATEHOUSE_FUZZ_RUNS.
 */
const RUNS = Number(process.env.GATEHOUSE_FUZZ_RUNS ?? 40);
const SEED = Number.isInteger(Number(process.env.GATEHOUSE_FUZZ_SEED))
  ? Number(process.env.GATEHOUSE_FUZZ_SEED)
  : 16;
const DAY = 24 * 3600 * 1000;
const OVERLAP = 3 * DAY;
const ENTITY = 'https://fuzz.idp.test/metadata';
const SSO = 'https://fuzz.idp.test/sso';

let t: TestDatabase;
let server: LocalServer;
let answer: { status: number; body: string } = { status: 200, body: '' };
let pool: string[] = [];

beforeAll(async () => {
  t = await createTestDatabase();
  server = await startLocalServer({
    '/metadata': (_req: http.IncomingMessage, res: http.ServerResponse) => {
      const headers: Record<string, string> = { etag: `"${randomUUID()}"` };
      if (answer.status === 302) headers.location = 'https://elsewhere.test/metadata';
      res.writeHead(answer.status, headers).end(answer.status === 304 ? undefined : answer.body);
    },
  });
  const far = new Date(Date.now() + 5 * 365 * DAY);
  pool = await Promise.all([0, 1, 2, 3].map((i) => certificateUntil(far, `fuzz-${i}`)));
});
afterAll(async () => {
  await server.close();
  await t.close();
});

const genuine = (indexes: number[]) =>
  metadataXml(
    ENTITY,
    SSO,
    indexes.map((i) => pool[i] ?? ''),
  );

const document = fc.oneof(
  fc.uniqueArray(fc.integer({ min: 0, max: 3 }), { minLength: 0, maxLength: 4 }).map(genuine),
  fc
    .uniqueArray(fc.integer({ min: 0, max: 3 }), { minLength: 1, maxLength: 4 })
    .map((ix) => genuine(ix).replace(ENTITY, 'https://attacker.test/metadata')),
  fc
    .tuple(
      fc.uniqueArray(fc.integer({ min: 0, max: 3 }), { minLength: 1, maxLength: 4 }),
      fc.nat(),
      fc.nat({ max: 200 }),
      fc.string({ maxLength: 40 }),
    )
    .map(([ix, at, cut, insert]) => {
      const doc = genuine(ix);
      const i = at % doc.length;
      return doc.slice(0, i) + insert + doc.slice(i + cut);
    }),
  fc.string({ maxLength: 300 }),
  fc.constant(`<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]>${genuine([0])}`),
);
const status = fc.constantFrom(200, 200, 200, 304, 500, 302);

it('never throws, never changes the entity id, never drops a certificate within its overlap', async () => {
  const tenantId = await createTenantWithDomains(t.db, 'fuzz-co', ['fuzz.test']);
  const connectionId = randomUUID();
  const initial = [parseCertificate(pool[0] ?? '', 'pool[0]'), parseCertificate(pool[1] ?? '', 'pool[1]')];
  await t.db.withTenant(tenantId, (em) =>
    em.query(
      `INSERT INTO connections (tenant_id, id, type, name, status, saml_idp_entity_id, saml_sso_url, saml_sso_binding,
                                saml_certificates, metadata_url)
       VALUES ($1, $2, 'saml', 'Fuzz', 'active', $3, $4, 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect', $5, $6)`,
      [tenantId, connectionId, ENTITY, SSO, JSON.stringify(initial), `${server.url}/metadata`],
    ),
  );
  const config = parseConfig({ GATEHOUSE_ALLOW_PRIVATE_METADATA_URLS: 'true' });
  const options = { db: t.db, fetch: outboundPolicy(config.outboundFetch), overlapMs: OVERLAP };
  const load = () => t.db.withTenant(tenantId, (em) => em.findOneByOrFail(Connection, { id: connectionId }));
  let clock = Date.now();
  const outcomes = new Map<string, number>();

  await fc.assert(
    fc.asyncProperty(document, status, fc.integer({ min: 0, max: 2 * DAY }), async (body, code, step) => {
      answer = { status: code, body };
      clock += step;
      const now = new Date(clock);
      const before = await load();
      const result = await refreshConnectionMetadata(options, tenantId, connectionId, {
        now,
        dueBefore: null,
      });
      outcomes.set(result.outcome, (outcomes.get(result.outcome) ?? 0) + 1);
      const after = await load();

      expect(after.samlIdpEntityId).toBe(ENTITY);
      expect(after.samlCertificates.length).toBeGreaterThan(0);
      const kept = new Set(after.samlCertificates.map((c) => c.fingerprintSha256));
      const mustStay = (c: SamlCertificate) =>
        !c.removedAt || now.getTime() - Date.parse(c.removedAt) < OVERLAP;
      for (const cert of before.samlCertificates.filter(mustStay))
        expect(kept.has(cert.fingerprintSha256)).toBe(true);
      if (result.outcome === 'failed') {
        expect(after.samlCertificates).toEqual(before.samlCertificates);
        expect(after.metadataRefreshError).toBe(
          `${result.error.code}: ${result.error.message}`.slice(0, 1000),
        );
      } else {
        expect(after.metadataRefreshError).toBeNull();
      }
    }),
    { seed: SEED, numRuns: RUNS },
  );
  // The budget reached both sides of the property.
  expect(outcomes.get('failed')).toBeGreaterThan(0);
  expect((outcomes.get('updated') ?? 0) + (outcomes.get('unchanged') ?? 0)).toBeGreaterThan(0);
});
