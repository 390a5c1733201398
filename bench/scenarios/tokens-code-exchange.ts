import { createHash, randomUUID } from 'node:crypto';
import type { BenchResult, Scenario } from '../harness.js';
import { opsPerSecond } from '../harness.js';
import { openBenchDatabase } from '../support/bench-db.js';
import type { Database } from '../../src/db/database.js';
import { createSession } from '../../src/sessions/sessions.service.js';
import { createApp as registerApp } from '../../src/apps/apps.service.js';
import { CODE_PREFIX, mintSessionToken } from '../../src/tokens/grants/opaque-tokens.js';
import { seedPerson, startBenchGatehouse } from './tokens-support.js';

const REDIRECT_URI = 'http://localhost:3000/callback';
const VERIFIER = 'dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk';
const CHALLENGE = createHash('sha256').update(VERIFIER).digest('base64url');

/** Codes as /oauth/authorize/continue leaves them: a session each, PKCE S256, unused. */
async function mintCodes(
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
      return results;
    } finally {
      await gh.close();
      await bench.close();
    }
  },
};
