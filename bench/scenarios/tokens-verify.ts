import { createRemoteJWKSet, importJWK, jwtVerify, type JWK } from 'jose';
import type { Scenario } from '../harness.js';
import { opsPerSecond } from '../harness.js';
import { openBenchDatabase } from '../support/bench-db.js';
import { seedPerson, startBenchGatehouse } from './tokens-support.js';

/**
 * What a main app pays per request to verify a Gatehouse access token the
 * recommended way — jose's createRemoteJWKSet against the jwks_uri (fetched
 * once, then cached) — against raw jose.jwtVerify with the public key already
 * imported. Both pin the algorithm, issuer, audience and typ.
 */
export const tokensVerifyScenario: Scenario = {
  name: 'tokens-verify',
  async run() {
    const bench = await openBenchDatabase('tokens_verify');
    const gh = await startBenchGatehouse(bench.db);
    try {
      const person = await seedPerson(bench.db);
      const now = Math.floor(Date.now() / 1000);
      const audience = '00000000-0000-4000-8000-0000000000aa';
      const token = await gh.keys.sign(
        {
          iss: gh.config.baseUrl,
          sub: person.userId,
          aud: audience,
          client_id: audience,
          iat: now,
          exp: now + 3600,
          jti: 'bench',
          tid: person.tenantId,
          sid: person.userId,
          roles: ['member'],
        },
        { alg: 'ES256', typ: 'at+jwt' },
      );
      const options = { issuer: gh.config.baseUrl, audience, typ: 'at+jwt', algorithms: ['ES256'] };
      const remote = createRemoteJWKSet(new URL(`${gh.url}/.well-known/jwks.json`));
      const { keys } = (await (await fetch(`${gh.url}/.well-known/jwks.json`)).json()) as { keys: JWK[] };
      const { kid } = JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString()) as {
        kid: string;
      };
      const local = await importJWK(
        keys.find((k) => k.kid === kid)!,
        'ES256',
      );

      const baseline = await opsPerSecond(() => jwtVerify(token, local, options), 2000, 1);
      const value = await opsPerSecond(() => jwtVerify(token, remote, options), 2000, 1);
      return [
        {
          name: 'access-token verification with a jose remote JWKS (createRemoteJWKSet)',
          unit: 'verifications/s',
          value,
          baseline: { name: 'raw jose.jwtVerify with the imported public key', value: baseline },
        },
      ];
    } finally {
      await gh.close();
      await bench.close();
    }
  },
};
