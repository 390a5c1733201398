import { createHash, randomUUID } from 'node:crypto';
import type { BenchResult, Scenario } from '../harness.js';
import { opsPerSecond } from '../harness.js';
import selfsigned from 'selfsigned';
import { startPolis } from '../peers/polis/polis.js';
import { idpMetadata, responseXml, runAll, signAssertion } from './saml-acs.js';
import { performance } from 'node:perf_hooks';
import { openBenchDatabase } from '../support/bench-db.js';
import type { Database } from '../../src/db/database.js';
import { createSession } from '../../src/sessions/sessions.service.js';
import { createApp as registerApp } from '../../src/apps/apps.service.js';
import { CODE_PREFIX, mintSessionToken } from '../../src/tokens/grants/opaque-tokens.js';
import { seedPerson, startBenchGatehouse } from './tokens-support.js';

export const REDIRECT_URI = 'http://localhost:3000/callback';
const VERIFIER = 'dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk';
const CHALLENGE = createHash('sha256').update(VERIFIER).digest('base64url');
/** The PKCE pair (RFC 7636, S256) every minted code carries. */
export const VERIFIER_CHALLENGE = { verifier: VERIFIER, challenge: CHALLENGE };

/** Codes as /oauth/authorize/continue leaves them: a session each, PKCE S256, unused. */
export async function mintCodes(
  db: Database,
  person: { tenantId: string; userId: string; connectionId: string },
  appId: string,
  count: number,
): Promise<string[]> {
  const codes: string[] = [];
  for (let done = 0; done < count; done += 250) {
    await db.withTenant(person.tenantId, async (em) => {
      for (let i = 0; i < Math.min(250, count - done); i++) {
        const session = await createSession(em, person.tenantId, {
          userId: person.userId,
          appId,
          connectionId: person.connectionId,
          authTime: new Date(),
          ttlSeconds: 3600,
        });
        const { token, hash } = mintSessionToken(CODE_PREFIX, session.id);
        await em.query(
          `INSERT INTO authorization_codes (tenant_id, id, session_id, app_id, code_hash, redirect_uri, scope,
             code_challenge, code_challenge_method, expires_at)
           VALUES ($1, $2, $3, $4, $5, $6, 'openid email profile', $7, 'S256', now() + interval '1 hour')`,
          [person.tenantId, randomUUID(), session.id, appId, hash, REDIRECT_URI, CHALLENGE],
        );
        codes.push(token);
      }
    });
  }
  return codes;
}

/**
 * Token endpoint code exchanges per second over HTTP on one process (client
 * authentication, single-use consumption, session and roles read, refresh
 * token stored, access + ID token signed with ES256), against the floor of a
 * primary-key read inside withTenant on the same pool — an exchange is a few
 * such transactions plus two signatures.
 */
export const tokensCodeExchangeScenario: Scenario = {
  name: 'tokens-code-exchange',
  async run() {
    const bench = await openBenchDatabase('tokens_code_exchange');
    const gh = await startBenchGatehouse(bench.db);
    try {
      const { db } = bench;
      const person = await seedPerson(db);
      const ctx = { actor: { type: 'operator' as const, id: 'bench' } };
      const pub = await registerApp(
        db,
        { name: 'SPA', redirect_uris: [REDIRECT_URI], client_type: 'public' },
        ctx,
      );
      const conf = await registerApp(db, { name: 'Web', redirect_uris: [REDIRECT_URI] }, ctx);

      const exchange = async (
        codes: string[],
        auth: Record<string, string>,
        headers: Record<string, string> = {},
      ) => {
        const code = codes.pop();
        if (!code) throw new Error('bench ran out of codes: mint more');
        const res = await fetch(`${gh.url}/oauth/token`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
          body: new URLSearchParams({
            grant_type: 'authorization_code',
            code,
            redirect_uri: REDIRECT_URI,
            code_verifier: VERIFIER,
            ...auth,
          }).toString(),
        });
        if (res.status !== 200) throw new Error(`exchange failed: ${res.status} ${await res.text()}`);
        await res.arrayBuffer();
      };

      const publicCodes = await mintCodes(db, person, pub.client_id, 6000);
      const publicRate = await opsPerSecond(
        () => exchange(publicCodes, { client_id: pub.client_id }),
        2000,
        4,
      );
      const basic = `Basic ${Buffer.from(`${conf.client_id}:${conf.client_secret}`).toString('base64')}`;
      const confidentialCodes = await mintCodes(db, person, conf.client_id, 6000);
      const confidentialRate = await opsPerSecond(
        () => exchange(confidentialCodes, {}, { authorization: basic }),
        2000,
        4,
      );

      const floor = await opsPerSecond(
        () =>
          db.withTenant(person.tenantId, (em) =>
            em.query('SELECT * FROM users WHERE tenant_id = $1 AND id = $2', [
              person.tenantId,
              person.userId,
            ]),
          ),
        2000,
        4,
      );
      const signRate = await opsPerSecond(
        () => gh.keys.sign({ sub: person.userId, iat: 0 }, { alg: 'ES256', typ: 'at+jwt' }),
        1000,
        1,
      );
      const baseline = { name: 'a primary-key read inside withTenant', value: floor };
      const results: BenchResult[] = [
        {
          name: 'code exchanges at /oauth/token (public client, PKCE)',
          unit: 'ops/s',
          value: publicRate,
          baseline,
          extra: { bare_es256_signs_per_s: signRate },
        },
        {
          name: 'code exchanges at /oauth/token (confidential client, client_secret_basic, verified secret cached)',
          unit: 'ops/s',
          value: confidentialRate,
          baseline,
        },
      ];
      if (process.env.GATEHOUSE_BENCH_POLIS !== '0')
        results.push(
          await versusPolis(
            bench.adminUrl,
            (n) => mintCodes(db, person, conf.client_id, n),
            (codes) => exchange(codes, {}, { authorization: basic }),
          ),
        );
      return results;
    } finally {
      await gh.close();
      await bench.close();
    }
  },
};

const POLIS_ROUNDS = 2;

/**
 * Code exchange, Gatehouse vs Ory Polis (bench/peers/polis, `oauthController.token` over HTTP,
 * client_secret in the body as its API takes it): codes Polis issued after real SAML logins at its
 * ACS, against Gatehouse's confidential-client exchange, 4 in flight, interleaved rounds. Polis
 * signs no ID token here (no `openid` signing keys configured), Gatehouse signs two JWTs.
 * GATEHOUSE_BENCH_POLIS_CODES per side (default 600).
 */
async function versusPolis(
  adminUrl: string,
  mint: (count: number) => Promise<string[]>,
  exchange: (codes: string[]) => Promise<void>,
): Promise<BenchResult> {
  const count = Number(process.env.GATEHOUSE_BENCH_POLIS_CODES ?? 600);
  const pems = await selfsigned.generate([{ name: 'commonName', value: 'bench-idp' }], {
    keyType: 'rsa',
    keySize: 2048,
    algorithm: 'sha256',
  });
  const idpEntityId = 'https://bench.idp.test/metadata';
  const polis = await startPolis({
    adminUrl,
    name: 'tokens',
    idpMetadataXml: idpMetadata(idpEntityId, pems.cert),
    redirectUri: REDIRECT_URI,
  });
  try {
    const now = new Date();
    const logins = await polis.startLogins(count + 20);
    const polisCodes = await polis.codesFor(
      logins.map(({ requestId, relayState }) => ({
        relayState,
        samlResponse: Buffer.from(
          signAssertion(
            responseXml({
              requestId,
              idpEntityId,
              spEntityId: polis.audience,
              acsUrl: polis.acsUrl,
              nameId: 'person@bench.test',
              now,
            }),
            pems.private,
            pems.cert,
          ),
        ).toString('base64'),
      })),
    );
    const polisExchange = async (code: string) => {
      const res = await fetch(polis.tokenUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({
          grant_type: 'authorization_code',
          code,
          redirect_uri: REDIRECT_URI,
          client_id: polis.clientId,
          client_secret: polis.clientSecret,
        }).toString(),
      });
      const text = await res.text();
      if (res.status !== 200) throw new Error(`Polis token: HTTP ${res.status} ${text.slice(0, 200)}`);
    };
    const ghCodes = await mint(count + 20);
    // Warm-up, then A/B/A/B.
    await runAll(polisCodes.splice(0, 20), 1, polisExchange);
    for (let i = 0; i < 20; i++) await exchange(ghCodes);
    const per = Math.ceil(count / POLIS_ROUNDS);
    let ghMs = 0;
    let polisMs = 0;
    for (let r = 0; r < POLIS_ROUNDS; r++) {
      const n = Math.min(per, count - r * per);
      let start = performance.now();
      await runAll(
        Array.from({ length: n }, (_, i) => i),
        4,
        () => exchange(ghCodes),
      );
      ghMs += performance.now() - start;
      start = performance.now();
      await runAll(polisCodes.splice(0, n), 4, polisExchange);
      polisMs += performance.now() - start;
    }
    return {
      name: `code exchanges, Gatehouse vs Ory Polis (confidential client, 4 in flight, ${count} each, ${POLIS_ROUNDS} interleaved rounds)`,
      unit: 'ops/s',
      value: count / (ghMs / 1000),
      baseline: { name: 'Ory Polis token() over HTTP (no ID token signed)', value: count / (polisMs / 1000) },
    };
  } finally {
    await polis.close();
  }
}
