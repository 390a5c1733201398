import fc from 'fast-check';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { CALLBACK } from '../support/main-app.js';
import { registerApp, startOAuthServer, type OAuthServer } from '../support/oauth-server.js';

/**
 * Issue 8: the OAuth endpoints under generated hostile parameters —
 * /oauth/authorize (GET and POST), /oauth/token, /oauth/revoke and
 * /oauth/introspect — built from every parameter name they read plus
 * prototype keys, with huge strings, NUL and other control characters, lone
 * surrogates, grapheme clusters and repeated parameters (arrays). Invariants
 * per request:
 *   - never a 5xx;
 *   - /oauth/authorize redirects only to the registered redirect_uri, and a
 *     refused request (a page, or an error other than the login flow's own
 *     access_denied) stores no authorization request;
 *   - on any 4xx from the token-side endpoints no authorization request,
 *     code, session or refresh token is written;
 * and after the run no built-in prototype gained a key and the node answers
 * /healthz. GATEHOUSE_FUZZ_RUNS sets the budget (npm run fuzz),
 * GATEHOUSE_FUZZ_SEED the seed.
 */
const RUNS = Number(process.env.GATEHOUSE_FUZZ_RUNS ?? 150);
const SEED = Number(process.env.GATEHOUSE_FUZZ_SEED ?? 0x0a07);

let t: TestDatabase;
let gh: OAuthServer;
let clientId: string;
let clientSecret: string;
const prototypeBefore = Object.getOwnPropertyNames(Object.prototype).sort();

beforeAll(async () => {
  t = await createTestDatabase();
  gh = await startOAuthServer(t, {
    // The limits are tested elsewhere; here every request must reach the validation.
    GATEHOUSE_LOGIN_DISCOVERY_RATE_LIMIT: '1000000',
    GATEHOUSE_CLIENT_AUTH_FAILURE_LIMIT: '1000000',
    GATEHOUSE_CLIENT_AUTH_FAILURE_LIMIT_PER_CLIENT: '1000000',
  });
  const app = await registerApp(gh, { redirect_uris: [CALLBACK] });
  clientId = app.clientId;
  clientSecret = app.clientSecret ?? '';
});
afterAll(async () => {
  await gh.close();
  await t.close();
});

/** Rows an OAuth request could write, counted as the owner (no tenant filter). */
async function footprint(): Promise<string> {
  const [row] = await t.asOwner<Record<string, string>>(
    `SELECT (SELECT count(*) FROM authorization_requests) AS requests,
            (SELECT count(*) FROM authorization_requests WHERE completed_at IS NULL) AS pending,
            (SELECT count(*) FROM authorization_codes) AS codes,
            (SELECT count(*) FROM sessions) AS sessions,
            (SELECT count(*) FROM refresh_tokens) AS refresh_tokens`,
  );
  return JSON.stringify(row);
}

const NAMES = [
  'client_id',
  'redirect_uri',
  'response_type',
  'response_mode',
  'scope',
  'state',
  'nonce',
  'code_challenge',
  'code_challenge_method',
  'login_hint',
  'organization',
  'connection',
  'prompt',
  'request',
  'request_uri',
  'grant_type',
  'code',
  'code_verifier',
  'refresh_token',
  'token',
  'token_type_hint',
  'client_secret',
  '__proto__',
  'constructor',
  'prototype',
  'toString',
  'hasOwnProperty',
  '__proto__[polluted]',
  'constructor[prototype][polluted]',
];

const hostileValue = fc.oneof(
  fc.constantFrom('openid', 'code', 'S256', 'query', 'none', 'a@b.test', CALLBACK, '', ' '),
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.string({ unit: 'grapheme', maxLength: 20 }),
  fc.string({ maxLength: 8 }).map((s) => `${s}\u0000${s}`),
  fc.constantFrom('\ud800', '\udfff x', '\u202eevil', 'e\u0301', '%00', '\r\nSet-Cookie: x=1'),
  fc.integer({ min: 300, max: 40_000 }).map((n) => 'a'.repeat(n)),
  fc.integer({ min: 1, max: 3_000 }).map((n) => '\u{1F600}'.repeat(n)),
);

const pairs = fc.array(
  fc.record({ name: fc.constantFrom(...NAMES), value: hostileValue, repeat: fc.boolean() }),
  { maxLength: 6 },
);

type Endpoint = 'authorize-get' | 'authorize-post' | 'token' | 'revoke' | 'introspect';

function authorizeBase(): URLSearchParams {
  return new URLSearchParams({
    response_type: 'code',
    client_id: clientId,
    redirect_uri: CALLBACK,
    scope: 'openid email',
    state: 'fuzz-state',
    code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
    code_challenge_method: 'S256',
  });
}

function tokenBase(endpoint: Endpoint): URLSearchParams {
  if (endpoint === 'token')
    return new URLSearchParams({
      grant_type: 'authorization_code',
      code: 'gh_code_x',
      redirect_uri: CALLBACK,
    });
  return new URLSearchParams({ token: 'not-a-token' });
}

function apply(params: URLSearchParams, generated: { name: string; value: string; repeat: boolean }[]) {
  for (const { name, value, repeat } of generated) {
    if (repeat) params.append(name, value);
    else params.set(name, value);
  }
  return params;
}

async function send(endpoint: Endpoint, params: URLSearchParams, basic: boolean) {
  const form = { 'content-type': 'application/x-www-form-urlencoded' };
  if (endpoint === 'authorize-get')
    return fetch(`${gh.url}/oauth/authorize?${params.toString()}`, { redirect: 'manual' });
  if (endpoint === 'authorize-post')
    return fetch(`${gh.url}/oauth/authorize`, {
      method: 'POST',
      headers: form,
      body: params.toString(),
      redirect: 'manual',
    });
  const headers: Record<string, string> = { ...form };
  if (basic)
    headers.authorization = `Basic ${Buffer.from(
      `${encodeURIComponent(clientId)}:${encodeURIComponent(clientSecret)}`,
    ).toString('base64')}`;
  return fetch(`${gh.url}/oauth/${endpoint}`, { method: 'POST', headers, body: params.toString() });
}

describe('OAuth endpoints under generated hostile parameters', () => {
  it('never answer 5xx, redirect only to the registered URI, and write nothing when they refuse', async () => {
    const seen = new Map<string, number>();
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom<Endpoint>('authorize-get', 'authorize-post', 'token', 'revoke', 'introspect'),
        pairs,
        fc.boolean(),
        async (endpoint, generated, basic) => {
          const isAuthorize = endpoint.startsWith('authorize');
          const params = apply(isAuthorize ? authorizeBase() : tokenBase(endpoint), generated);
          const before = await footprint();
          const res = await send(endpoint, params, basic);
          const body = await res.text();
          expect(res.status).toBeLessThan(500);
          const location = res.headers.get('location');
          let outcome = String(res.status);
          let refused = res.status >= 400;
          if (isAuthorize && location) {
            expect(location.startsWith(`${CALLBACK}?`)).toBe(true);
            const error = new URL(location).searchParams.get('error');
            outcome = `redirect:${error ?? 'code'}`;
            // access_denied is the login flow's answer to a request it accepted (and stored).
            refused = error !== null && error !== 'access_denied';
          }
          if (!isAuthorize && res.status >= 400) {
            expect(typeof (JSON.parse(body) as { error?: unknown }).error).toBe('string');
          }
          if (refused) expect(await footprint()).toBe(before);
          const key = `${endpoint} ${outcome}`;
          seen.set(key, (seen.get(key) ?? 0) + 1);
        },
      ),
      { numRuns: RUNS, seed: SEED, endOnFailure: true },
    );
    // The run reached the validation, not only the first check.
    expect([...seen.keys()].some((k) => k.includes('redirect:invalid_request'))).toBe(true);
    expect(Object.getOwnPropertyNames(Object.prototype).sort()).toEqual(prototypeBefore);
    expect(Object.keys(Object.create({}) as object)).toEqual([]);
    expect((await fetch(`${gh.url}/healthz`)).status).toBe(200);
  }, 120_000);
});
