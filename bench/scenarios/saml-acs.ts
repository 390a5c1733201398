import { createHash, randomBytes, randomUUID, X509Certificate } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { SAML, ValidateInResponseTo } from '@node-saml/node-saml';
import { DOMParser } from '@xmldom/xmldom';
import type { Request, Response } from 'express';
import selfsigned from 'selfsigned';
import { SignedXml } from 'xml-crypto';
import { createApp } from '../../src/app.js';
import { parseConfig } from '../../src/config/config.js';
import { serviceProviderDetails } from '../../src/connections/sp.js';
import { createLogger } from '../../src/http/logger.js';
import { sha256Base64url as hashBinding } from '../../src/digest.js';
import type { BenchResult, Scenario } from '../harness.js';
import { percentile, roundTrips } from '../harness.js';
import { openBenchDatabase } from '../support/bench-db.js';
import { startPolis, type PolisPeer } from '../peers/polis/polis.js';

/**
 * SAML ACS logins per second on one process: a browser POSTs a signed
 * Response answering a pending AuthnRequest; Gatehouse checks it (raw XML
 * checks, node-saml signature/time/audience/InResponseTo, the signed
 * assertion's issuer/recipient, the replay cache), runs completeLogin
 * (identity match, profile and IdP groups, audit event) and hands the
 * person to the completer (here a stub answering 204, so the figure is the
 * IdP side alone). Floors: node-saml's validatePostResponse of the same
 * responses alone (issue 13: per core ≥ 0.65 × it), and raw xml-crypto
 * verification of the same signed assertion, the floor any SAML SP pays.
 *
 * Responses and pending requests are made before the clock starts (the
 * IdP's signing is not ours to measure); each is used once, as in life.
 *
 * Peer: Ory Polis (bench/peers/polis) answers the same kind of response at
 * its ACS in the same process, in interleaved rounds (Gatehouse, Polis,
 * Gatehouse, Polis…) so that both see the same machine; its row is the ratio.
 * GATEHOUSE_BENCH_POLIS=0 leaves the peer out.
 */
const LOGINS = Number(process.env.BENCH_SAML_LOGINS ?? 1500);
const CONCURRENCY = 4;
const ROUNDS = 2;
const WITH_POLIS = process.env.GATEHOUSE_BENCH_POLIS !== '0';
const NS =
  'xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion"';

interface Prepared {
  xml: string;
  samlResponse: string;
  /** Polis's RelayState, which names its pending login. */
  relayState?: string;
}

export function responseXml(input: {
  requestId: string;
  idpEntityId: string;
  spEntityId: string;
  acsUrl: string;
  nameId: string;
  now: Date;
}): string {
  const issued = input.now.toISOString();
  const until = new Date(input.now.getTime() + 9 * 60 * 1000).toISOString();
  const id = () => `_${randomBytes(16).toString('hex')}`;
  const attribute = (name: string, values: string[]) =>
    `<saml:Attribute Name="${name}">${values.map((v) => `<saml:AttributeValue>${v}</saml:AttributeValue>`).join('')}</saml:Attribute>`;
  return (
    `<samlp:Response ${NS} ID="${id()}" Version="2.0" IssueInstant="${issued}" Destination="${input.acsUrl}" InResponseTo="${input.requestId}">` +
    `<saml:Issuer>${input.idpEntityId}</saml:Issuer><samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status>` +
    `<saml:Assertion ID="${id()}" Version="2.0" IssueInstant="${issued}"><saml:Issuer>${input.idpEntityId}</saml:Issuer>` +
    `<saml:Subject><saml:NameID Format="urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress">${input.nameId}</saml:NameID>` +
    `<saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer"><saml:SubjectConfirmationData NotOnOrAfter="${until}" Recipient="${input.acsUrl}" InResponseTo="${input.requestId}"/></saml:SubjectConfirmation></saml:Subject>` +
    `<saml:Conditions NotBefore="${issued}" NotOnOrAfter="${until}"><saml:AudienceRestriction><saml:Audience>${input.spEntityId}</saml:Audience></saml:AudienceRestriction></saml:Conditions>` +
    `<saml:AuthnStatement AuthnInstant="${issued}"><saml:AuthnContext><saml:AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport</saml:AuthnContextClassRef></saml:AuthnContext></saml:AuthnStatement>` +
    `<saml:AttributeStatement>${attribute('email', [input.nameId])}${attribute('firstName', ['Bench'])}${attribute('groups', ['Engineering', 'Everyone'])}</saml:AttributeStatement>` +
    `</saml:Assertion></samlp:Response>`
  );
}

export function signAssertion(xml: string, key: string, cert: string): string {
  const sig = new SignedXml({
    privateKey: key,
    publicCert: cert,
    signatureAlgorithm: 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256',
    canonicalizationAlgorithm: 'http://www.w3.org/2001/10/xml-exc-c14n#',
  });
  sig.addReference({
    xpath: "/*[local-name(.)='Response']/*[local-name(.)='Assertion']",
    transforms: [
      'http://www.w3.org/2000/09/xmldsig#enveloped-signature',
      'http://www.w3.org/2001/10/xml-exc-c14n#',
    ],
    digestAlgorithm: 'http://www.w3.org/2001/04/xmlenc#sha256',
  });
  sig.computeSignature(xml, {
    prefix: 'ds',
    location: {
      reference: "/*[local-name(.)='Response']/*[local-name(.)='Assertion']/*[local-name(.)='Issuer']",
      action: 'after',
    },
  });
  return sig.getSignedXml();
}

/** Raw xml-crypto: parse, find the assertion's signature, verify it with the IdP certificate. */
function verifyRaw(xml: string, cert: string): boolean {
  const doc = new DOMParser().parseFromString(xml, 'text/xml');
  const signature = doc.getElementsByTagNameNS('http://www.w3.org/2000/09/xmldsig#', 'Signature')[0];
  if (!signature) return false;
  const sig = new SignedXml({ publicCert: cert });
  sig.loadSignature(signature);
  return sig.checkSignature(xml);
}

export async function runAll<T>(items: T[], concurrency: number, fn: (item: T) => Promise<void>) {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < items.length) await fn(items[next++] as T);
    }),
  );
}

export const samlAcsScenario: Scenario = {
  name: 'saml-acs',
  async run(): Promise<BenchResult[]> {
    const bench = await openBenchDatabase('saml_acs');
    let server: Server | undefined;
    let polis: PolisPeer | undefined;
    try {
      const { db } = bench;
      // The app needs the listening address (its base URL), so it is made after listen.
      const holder: { app?: ReturnType<typeof createApp> } = {};
      server = createServer((req, res) => (holder.app ? holder.app(req, res) : res.writeHead(503).end()));
      // The baseline loop blocks the event loop for seconds: keep idle client sockets open across it.
      server.keepAliveTimeout = 60_000;
      await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve));
      const baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const config = parseConfig({ GATEHOUSE_BASE_URL: baseUrl, LOG_LEVEL: 'silent' });
      const completer = {
        complete: async (_req: Request, res: Response) => void res.status(204).end(),
        fail: async (_req: Request, res: Response) => void res.status(403).end(),
      };
      holder.app = createApp({
        config,
        db,
        secrets: {
          adminToken: randomBytes(24).toString('hex'),
          masterKey: randomBytes(32),
          adminTokenGenerated: false,
        },
        logger: createLogger('silent'),
        authorizationCompleter: completer,
      });

      const pems = await selfsigned.generate([{ name: 'commonName', value: 'bench-idp' }], {
        keyType: 'rsa',
        keySize: 2048,
        algorithm: 'sha256',
      });
      const x509 = new X509Certificate(pems.cert);
      const tenantId = randomUUID();
      const connectionId = randomUUID();
      const idpEntityId = 'https://bench.idp.test/metadata';
      const sp = serviceProviderDetails(baseUrl, connectionId);
      const cookie = randomBytes(32).toString('base64url');
      await db.withTenant(tenantId, async (em) => {
        await em.query(`INSERT INTO tenants (id, slug, name) VALUES ($1, 'bench', 'Bench')`, [tenantId]);
        await em.query(
          `INSERT INTO domains (tenant_id, domain, verification_token, verified_at, verification_method)
           VALUES ($1, 'bench.test', 'x', now(), 'manual')`,
          [tenantId],
        );
        await em.query(
          `INSERT INTO connections (tenant_id, id, type, name, status, saml_idp_entity_id, saml_sso_url, saml_certificates)
           VALUES ($1, $2, 'saml', 'Bench IdP', 'active', $3, 'https://bench.idp.test/sso', $4)`,
          [
            tenantId,
            connectionId,
            idpEntityId,
            JSON.stringify([
              {
                pem: pems.cert,
                fingerprintSha256: createHash('sha256').update(x509.raw).digest('hex'),
                notBefore: new Date(x509.validFrom).toISOString(),
                notAfter: new Date(x509.validTo).toISOString(),
              },
            ]),
          ],
        );
      });

      const prepare = async (count: number): Promise<Prepared[]> => {
        const now = new Date();
        const prepared: Prepared[] = [];
        const requests: string[] = [];
        for (let i = 0; i < count; i++) {
          const requestId = `_${randomBytes(20).toString('hex')}`;
          requests.push(requestId);
          const xml = signAssertion(
            responseXml({
              requestId,
              idpEntityId,
              spEntityId: sp.entityId,
              acsUrl: sp.acsUrl,
              nameId: 'person@bench.test',
              now,
            }),
            pems.private,
            pems.cert,
          );
          prepared.push({ xml, samlResponse: Buffer.from(xml).toString('base64') });
        }
        // The pending AuthnRequests the start of each login would have stored, bound to one browser.
        await db.withTenant(tenantId, (em) =>
          em.query(
            `INSERT INTO saml_requests (tenant_id, id, connection_id, login_id, browser_hash, expires_at)
             SELECT $1, unnest($2::text[]), $3, 'bench-login', $4, now() + interval '15 minutes'`,
            [tenantId, requests, connectionId, hashBinding(cookie)],
          ),
        );
        return prepared;
      };

      const post = async (p: Prepared) => {
        const res = await fetch(sp.acsUrl, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: `gatehouse_sso=${cookie}` },
          body: new URLSearchParams({ SAMLResponse: p.samlResponse }).toString(),
        });
        await res.arrayBuffer();
        if (res.status !== 204) throw new Error(`ACS answered ${res.status}`);
      };

      // Warm-up (first login creates the user; JIT path excluded from the figure).
      await runAll(await prepare(30), 1, post);
      const pool = await prepare(LOGINS);

      const baselineStart = performance.now();
      for (const p of pool) if (!verifyRaw(p.xml, pems.cert)) throw new Error('raw verification failed');
      const baseline = pool.length / ((performance.now() - baselineStart) / 1000);
      // The issue's floor: node-saml alone validating the same responses (signature, time, audience,
      // issuer), one at a time, without HTTP, database or Gatehouse's own checks.
      const rawSaml = new SAML({
        idpCert: pems.cert,
        issuer: sp.entityId,
        audience: sp.entityId,
        callbackUrl: sp.acsUrl,
        idpIssuer: idpEntityId,
        wantAssertionsSigned: true,
        wantAuthnResponseSigned: false,
        validateInResponseTo: ValidateInResponseTo.never,
      });
      const nodeSamlStart = performance.now();
      for (const p of pool) {
        const { profile } = await rawSaml.validatePostResponseAsync({ SAMLResponse: p.samlResponse });
        if (profile?.nameID !== 'person@bench.test') throw new Error('raw node-saml validation failed');
      }
      const nodeSamlFloor = pool.length / ((performance.now() - nodeSamlStart) / 1000);

      // The peer: the same IdP (certificate, issuer), the same response shape, at Polis's ACS.
      let polisPool: Prepared[][] = [];
      let polisPost: ((p: Prepared) => Promise<void>) | undefined;
      if (WITH_POLIS) {
        const peer = await startPolis({
          adminUrl: bench.adminUrl,
          name: 'saml_acs',
          idpMetadataXml: idpMetadata(idpEntityId, pems.cert),
          redirectUri: 'http://localhost:3000/callback',
        });
        polis = peer;
        const preparePolis = async (count: number) => {
          const now = new Date();
          return (await peer.startLogins(count)).map(({ requestId, relayState }) => {
            const xml = signAssertion(
              responseXml({
                requestId,
                idpEntityId,
                spEntityId: peer.audience,
                acsUrl: peer.acsUrl,
                nameId: 'person@bench.test',
                now,
              }),
              pems.private,
              pems.cert,
            );
            return { xml, samlResponse: Buffer.from(xml).toString('base64'), relayState };
          });
        };
        polisPost = async (p: Prepared) => {
          const res = await fetch(peer.acsUrl, {
            method: 'POST',
            headers: { 'content-type': 'application/x-www-form-urlencoded' },
            body: new URLSearchParams({ SAMLResponse: p.samlResponse, RelayState: p.relayState ?? '' }),
            redirect: 'manual',
          });
          const text = await res.text();
          if (res.status !== 302) throw new Error(`Polis ACS answered ${res.status}: ${text.slice(0, 200)}`);
        };
        await runAll(await preparePolis(30), 1, polisPost);
        const all = await preparePolis(LOGINS);
        polisPool = chunks(all, ROUNDS);
      }

      const timed = async (items: Prepared[], post: (p: Prepared) => Promise<void>, latencies: number[]) => {
        const start = performance.now();
        await runAll(items, CONCURRENCY, async (p) => {
          const t0 = performance.now();
          await post(p);
          latencies.push(performance.now() - t0);
        });
        return performance.now() - start;
      };
      const latencies: number[] = [];
      const polisLatencies: number[] = [];
      let ghMs = 0;
      let polisMs = 0;
      const ghChunks = chunks(pool, ROUNDS);
      const counted = await roundTrips();
      // A/B/A/B: each round runs Gatehouse's share, then Polis's, on the same machine.
      for (let r = 0; r < ROUNDS; r++) {
        ghMs += await timed(ghChunks[r] ?? [], post, latencies);
        if (polisPost) polisMs += await timed(polisPool[r] ?? [], polisPost, polisLatencies);
      }
      const ghRoundTrips = counted();
      const value = pool.length / (ghMs / 1000);
      latencies.sort((a, b) => a - b);
      polisLatencies.sort((a, b) => a - b);
      const results: BenchResult[] = [
        {
          name: `SAML ACS logins per core vs raw node-saml (issue 13: ratio ≥ 0.65; ${CONCURRENCY} concurrent, one process)`,
          unit: 'logins/s',
          value,
          baseline: {
            name: 'node-saml validatePostResponse of the same responses, alone',
            value: nodeSamlFloor,
          },
        },
        {
          name: `SAML ACS logins (SP-initiated, ${CONCURRENCY} concurrent, one process)`,
          unit: 'logins/s',
          value,
          baseline: { name: 'raw xml-crypto signature verification of the same response', value: baseline },
          extra: {
            p50_ms: percentile(latencies, 50),
            p99_ms: percentile(latencies, 99),
            logins: pool.length,
            round_trips_per_login: ghRoundTrips / pool.length,
          },
        },
      ];
      if (polisPost) {
        const polisCount = polisPool.reduce((n, c) => n + c.length, 0);
        results.push({
          name: `SAML ACS logins, Gatehouse vs Ory Polis (same responses, ${CONCURRENCY} concurrent, ${ROUNDS} interleaved rounds)`,
          unit: 'logins/s',
          value,
          baseline: { name: 'Ory Polis samlResponse over HTTP', value: polisCount / (polisMs / 1000) },
          extra: {
            polis_p50_ms: percentile(polisLatencies, 50),
            polis_p99_ms: percentile(polisLatencies, 99),
          },
        });
      }
      return results;
    } finally {
      if (server) {
        server.closeAllConnections();
        await new Promise((resolve) => server?.close(resolve));
      }
      await polis?.close();
      await bench.close();
    }
  },
};

/** `items` cut into `n` nearly equal consecutive parts. */
function chunks<T>(items: T[], n: number): T[][] {
  const size = Math.ceil(items.length / n);
  return Array.from({ length: n }, (_, i) => items.slice(i * size, (i + 1) * size));
}

/** The IdP's metadata document, as Polis imports it (the same certificate Gatehouse's connection holds). */
export function idpMetadata(entityId: string, certPem: string): string {
  const cert = certPem.replace(/-----[A-Z ]+-----|\s/g, '');
  return `<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="${entityId}"><md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol"><md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>${cert}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor><md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://bench.idp.test/sso"/></md:IDPSSODescriptor></md:EntityDescriptor>`;
}
