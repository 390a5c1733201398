import { createHash, randomUUID } from 'node:crypto';
import express from 'express';
import { ipKeyGenerator } from 'express-rate-limit';
import fc from 'fast-check';
import request from 'supertest';
import { createApp } from '../../src/app.js';
import { ConfigError, parseConfig } from '../../src/config/config.js';
import { createDataSource } from '../../src/db/data-source.js';
import { Database } from '../../src/db/database.js';
import { ENTITIES } from '../../src/entities.js';
import { counterKey, keyDigest as keyedDigest, sweepEndedWindows } from '../../src/http/rate-limit-store.js';
import { buildTestApp, installationSecrets } from '../support/app.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { capturingLogger, freshSecrets, startGatehouseNode } from '../support/gatehouse-node.js';
import { CALLBACK } from '../support/main-app.js';
import { registerApp, startOAuthServer, type OAuthServer } from '../support/oauth-server.js';
import { fuzzRuns, fuzzSeed } from '../scim/hardening-support.js';
import {
  createTenant,
  ERROR,
  issueToken,
  newUser,
  scimClient,
  startNode,
  type ScimNode,
} from '../scim/support.js';

/**
 * Limits hold across nodes (issue 11): two app instances on one database are
 * two Gatehouse nodes, and every limit — failed client authentications per
 * address and per client, /login discovery per address, failed admin
 * authentications, the per-tenant SCIM limit — counts their requests
 * together (src/http/rate-limit-store.ts). The client address is the one
 * GATEHOUSE_TRUST_PROXY makes it: the forwarded client behind a trusted proxy,
 * the socket's address otherwise, whatever X-Forwarded-For says.
 *
 * Each test uses its own forwarded address (trust proxy `loopback`, the test
 * client being on loopback), so the counters of one test never reach another.
 */
let t: TestDatabase;
/** A counter's stored key: HMAC under the installation's counter key, as every node computes it. */
const keyDigest = (key: string) => keyedDigest(counterKey(installationSecrets(t).masterKey), key);
beforeAll(async () => {
  t = await createTestDatabase();
});
afterAll(() => t.close());

const TRUST_LOOPBACK = { GATEHOUSE_TRUST_PROXY: 'loopback' };
const LIMITERS = [
  'admin-auth',
  'client-auth-address',
  'client-auth-client',
  'login-discovery',
  'scim-tenant',
  'scim-auth',
];

interface CounterRow {
  limiter: string;
  key: string;
  hits: number;
}
const counters = () =>
  t.asOwner<CounterRow>('SELECT limiter, key, hits FROM rate_limit_counters ORDER BY limiter, key');
const counterOf = async (limiter: string, key: string) =>
  (await counters()).find((r) => r.limiter === limiter && r.key === keyDigest(key));

describe('failed client authentication, counted by every node', () => {
  let a: OAuthServer;
  let b: OAuthServer;
  let client: { clientId: string; clientSecret: string };
  beforeAll(async () => {
    const env = {
      ...TRUST_LOOPBACK,
      GATEHOUSE_CLIENT_AUTH_FAILURE_LIMIT: '3',
      GATEHOUSE_CLIENT_AUTH_FAILURE_LIMIT_PER_CLIENT: '3',
    };
    a = await startOAuthServer(t, env);
    b = await startOAuthServer(t, env);
    const registered = await registerApp(a, { redirect_uris: [CALLBACK] });
    client = { clientId: registered.clientId, clientSecret: registered.clientSecret! };
  });
  afterAll(async () => {
    await a.close();
    await b.close();
  });

  const introspect = (node: OAuthServer, secret: string, from: string, clientId = client.clientId) =>
    fetch(`${node.url}/oauth/introspect`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: `Basic ${Buffer.from(`${clientId}:${secret}`).toString('base64')}`,
        'x-forwarded-for': from,
      },
      body: 'token=not-a-token',
    });

  it('answers 429 on node B after the per-address limit was spent on node A', async () => {
    const guessed = await registerApp(a, { redirect_uris: [CALLBACK] });
    const from = '203.0.113.11';
    for (let i = 0; i < 3; i++)
      expect((await introspect(a, 'wrong-secret', from, guessed.clientId)).status).toBe(401);
    const limited = await introspect(b, guessed.clientSecret!, from, guessed.clientId);
    expect(limited.status).toBe(429);
    expect(await limited.json()).toEqual({
      error: 'temporarily_unavailable',
      error_description: expect.any(String),
    });
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
    // Another address is not limited, on either node.
    expect((await introspect(b, client.clientSecret, '203.0.113.12')).status).toBe(200);
  });

  it('shares the per-client limit: two failures on A, one on B, then B refuses the client from a fresh address', async () => {
    const other = await registerApp(a, { redirect_uris: [CALLBACK] });
    for (const [node, from] of [
      [a, '203.0.113.21'],
      [a, '203.0.113.22'],
      [b, '203.0.113.23'],
    ] as const)
      expect((await introspect(node, 'wrong-secret', from, other.clientId)).status).toBe(401);
    expect((await introspect(b, other.clientSecret!, '203.0.113.24', other.clientId)).status).toBe(429);
    expect((await introspect(a, client.clientSecret, '203.0.113.25')).status).toBe(200);
  });

  it('counts only failures: successful authentications on both nodes leave the address free', async () => {
    const from = '203.0.113.31';
    for (let i = 0; i < 5; i++)
      expect((await introspect(i % 2 ? a : b, client.clientSecret, from)).status).toBe(200);
    // Five counted successes would have spent the limit of 3; they were given back.
    expect((await introspect(a, 'wrong-secret', from)).status).toBe(401);
    expect((await introspect(b, 'wrong-secret', from)).status).toBe(401);
    expect(await counterOf('client-auth-address', ipKeyGenerator(from))).toBeDefined();
  });
});

describe('/login discovery, counted by every node', () => {
  it('refuses the probe past the limit on whichever node receives it', async () => {
    const env = { ...TRUST_LOOPBACK, GATEHOUSE_LOGIN_DISCOVERY_RATE_LIMIT: '3' };
    const nodeA = buildTestApp(t, env).app;
    const nodeB = buildTestApp(t, env).app;
    const probe = (app: express.Express, from: string) =>
      request(app).get('/login').set('X-Forwarded-For', from).query({ login: 'login-1', email: 'x@a.test' });
    const from = '203.0.113.41';
    expect((await probe(nodeA, from)).status).not.toBe(429);
    expect((await probe(nodeB, from)).status).not.toBe(429);
    expect((await probe(nodeA, from)).status).not.toBe(429);
    const limited = await probe(nodeB, from);
    expect(limited.status).toBe(429);
    expect(limited.text).toContain('rate_limited');
    expect((await probe(nodeA, from)).status).toBe(429);
    expect((await probe(nodeA, '203.0.113.42')).status).not.toBe(429);
  });
});

describe('failed admin authentication, counted by every node', () => {
  it('answers 429 on node B, even to the right token, after failures on both nodes', async () => {
    const env = { ...TRUST_LOOPBACK, GATEHOUSE_ADMIN_AUTH_FAILURE_LIMIT: '3' };
    const nodeA = await startGatehouseNode(t, { env });
    const nodeB = await startGatehouseNode(t, { env });
    try {
      const tenants = (node: typeof nodeA, token: string) =>
        fetch(`${node.address}/admin/v1/tenants`, {
          headers: { authorization: `Bearer ${token}`, 'x-forwarded-for': '203.0.113.51' },
        });
      expect((await tenants(nodeA, 'gh_admin_wrong')).status).toBe(401);
      expect((await tenants(nodeA, 'gh_admin_wrong')).status).toBe(401);
      expect((await tenants(nodeB, 'gh_admin_wrong')).status).toBe(401);
      const limited = await tenants(nodeB, nodeB.secrets.adminToken);
      expect(limited.status).toBe(429);
      expect(await limited.json()).toMatchObject({ code: 'rate_limited' });
    } finally {
      await nodeA.close();
      await nodeB.close();
    }
  });
});

describe('the per-tenant SCIM limit, counted by every node', () => {
  let nodeA: ScimNode;
  let nodeB: ScimNode;
  beforeAll(async () => {
    // Two nodes with a pool each, as two processes would have.
    const env = { GATEHOUSE_SCIM_RATE_LIMIT: '3' };
    nodeA = await startNode(t, { env, listen: false, ownPool: true });
    nodeB = await startNode(t, { env, listen: false, ownPool: true });
  });
  afterAll(async () => {
    await nodeA.close();
    await nodeB.close();
  });

  it('limits tenant A on both nodes, leaves tenant B alone, and a limited write changes nothing', async () => {
    const tenantA = await createTenant(t);
    const tenantB = await createTenant(t);
    const tokenA = (await issueToken(t.db, tenantA)).token;
    const onA = scimClient(nodeA.app, tenantA, tokenA);
    const onB = scimClient(nodeB.app, tenantA, tokenA);
    await onA.get('/Users').expect(200);
    await onB.get('/Users').expect(200);
    await onA.get('/Users').expect(200);

    const limited = await onB.post('/Users', newUser('flood@acme.test'));
    expect(limited.status).toBe(429);
    expect(limited.body).toEqual({ schemas: [ERROR], status: '429', detail: expect.any(String) });
    expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
    expect(await t.db.withTenant(tenantA, (em) => em.query('SELECT 1 FROM users'))).toEqual([]);
    await onA.get('/Users').expect(429);

    const other = scimClient(nodeA.app, tenantB, (await issueToken(t.db, tenantB)).token);
    await other.get('/Users').expect(200);
    expect(await counterOf('scim-tenant', tenantB)).toMatchObject({ hits: 1 });
  });

  it('frees the key when its window ends, and the sweep deletes only ended windows', async () => {
    const tenant = await createTenant(t);
    const live = await createTenant(t);
    const c = scimClient(nodeA.app, tenant, (await issueToken(t.db, tenant)).token);
    for (let i = 0; i < 3; i++) await c.get('/Users').expect(200);
    await c.get('/Users').expect(429);
    await scimClient(nodeB.app, live, (await issueToken(t.db, live)).token)
      .get('/Users')
      .expect(200);

    // The window ends (moved into the past rather than waited for).
    await t.asOwner(
      `UPDATE rate_limit_counters SET reset_at = now() - interval '1 second' WHERE limiter = 'scim-tenant' AND key = $1`,
      [keyDigest(tenant)],
    );
    await scimClient(nodeB.app, tenant, (await issueToken(t.db, tenant)).token)
      .get('/Users')
      .expect(200);
    expect(await counterOf('scim-tenant', tenant)).toMatchObject({ hits: 1 });

    await t.asOwner(
      `UPDATE rate_limit_counters SET reset_at = now() - interval '1 second' WHERE limiter = 'scim-tenant' AND key = $1`,
      [keyDigest(tenant)],
    );
    expect(await sweepEndedWindows(t.db)).toBeGreaterThanOrEqual(1);
    expect(await counterOf('scim-tenant', tenant)).toBeUndefined();
    expect(await counterOf('scim-tenant', live)).toMatchObject({ hits: 1 });
  });
});

describe('failed SCIM authentications, counted by every node', () => {
  it('refuses guesses past the shared count on every node, one more per node at most, and leaves other tenants alone', async () => {
    const env = { GATEHOUSE_SCIM_AUTH_FAILURE_LIMIT: '3' };
    const nodeA = await startNode(t, { env, listen: false, ownPool: true });
    const nodeB = await startNode(t, { env, listen: false, ownPool: true });
    try {
      const tenant = await createTenant(t);
      const good = (await issueToken(t.db, tenant)).token;
      const wrong = `gh_scim_${'0'.repeat(32)}_${'A'.repeat(43)}`;
      const hits = async () =>
        (await counters()).filter((r) => r.limiter === 'scim-auth').reduce((n, r) => n + r.hits, 0);
      const settled = async (n: number) => {
        const until = Date.now() + 5000;
        while ((await hits()) < n) {
          if (Date.now() > until) throw new Error(`scim-auth count never reached ${n}`);
          await new Promise((r) => setTimeout(r, 20));
        }
      };
      await scimClient(nodeA.app, tenant, wrong).get('/Users').expect(401);
      await settled(1);
      await scimClient(nodeA.app, tenant, wrong).get('/Users').expect(401);
      await settled(2);
      // Node B has seen no failure: its guess goes through, fails, and brings back the shared count.
      await scimClient(nodeB.app, tenant, wrong).get('/Users').expect(401);
      await settled(3);
      const refused = await scimClient(nodeB.app, tenant, wrong).get('/Users').expect(429);
      expect(refused.body).toMatchObject({ schemas: [ERROR], status: '429' });
      // Node A last saw 2: one more guess, then it knows.
      await scimClient(nodeA.app, tenant, wrong).get('/Users').expect(401);
      await settled(4);
      await scimClient(nodeA.app, tenant, wrong).get('/Users').expect(429);
      // Even the right token waits out the window from this address (the guessing is not told apart).
      await scimClient(nodeB.app, tenant, good).get('/Users').expect(429);
      // Another tenant, same address: its own count.
      const other = await createTenant(t);
      await scimClient(nodeA.app, other, (await issueToken(t.db, other)).token)
        .get('/Users')
        .expect(200);
    } finally {
      await nodeA.close();
      await nodeB.close();
    }
  });
});

describe('the client address behind a proxy (GATEHOUSE_TRUST_PROXY)', () => {
  const probe = (app: express.Express, forwardedFor: string) =>
    request(app)
      .get('/login')
      .set('X-Forwarded-For', forwardedFor)
      .query({ login: 'login-1', email: 'x@b.test' });

  it('keys on the forwarded client with one trusted hop (1)', async () => {
    const env = { GATEHOUSE_TRUST_PROXY: '1', GATEHOUSE_LOGIN_DISCOVERY_RATE_LIMIT: '2' };
    const nodeA = buildTestApp(t, env).app;
    const nodeB = buildTestApp(t, env).app;
    // What the proxy appended is the client; what the client wrote before it is not trusted.
    expect((await probe(nodeA, '198.51.100.1')).status).not.toBe(429);
    expect((await probe(nodeB, '10.9.9.9, 198.51.100.1')).status).not.toBe(429);
    expect((await probe(nodeA, '198.51.100.1')).status).toBe(429);
    expect((await probe(nodeB, '198.51.100.2')).status).not.toBe(429);
    expect(await counterOf('login-discovery', '198.51.100.1')).toMatchObject({ hits: 3 });
  });

  it('keys on the socket address when no proxy is trusted: a made-up X-Forwarded-For dodges nothing', async () => {
    const env = { GATEHOUSE_TRUST_PROXY: 'false', GATEHOUSE_LOGIN_DISCOVERY_RATE_LIMIT: '2' };
    const nodeA = buildTestApp(t, env).app;
    const nodeB = buildTestApp(t, env).app;
    expect((await probe(nodeA, '192.0.2.1')).status).not.toBe(429);
    expect((await probe(nodeB, '192.0.2.2')).status).not.toBe(429);
    expect((await probe(nodeA, '192.0.2.3')).status).toBe(429);
    expect(await counterOf('login-discovery', '192.0.2.3')).toBeUndefined();
  });

  it('stores no address: every key is a keyed digest, not one a guess of the address can be tested against', async () => {
    await probe(buildTestApp(t, TRUST_LOOPBACK).app, '203.0.113.77');
    const rows = await counters();
    expect(rows.length).toBeGreaterThan(0);
    expect(rows.filter((r) => !/^[0-9a-f]{64}$/.test(r.key))).toEqual([]);
    // A plain SHA-256 of an IPv4 address is reversed by hashing all 2^32 of them; the HMAC needs the master key.
    const plain = createHash('sha256').update('203.0.113.77', 'utf8').digest('hex');
    expect(rows.map((r) => r.key)).not.toContain(plain);
    const dump = JSON.stringify(await t.asOwner('SELECT * FROM rate_limit_counters'));
    for (const address of ['203.0.113.77', '198.51.100.1', '127.0.0.1', '::1'])
      expect(dump).not.toContain(address);
    expect(await counterOf('login-discovery', '203.0.113.77')).toMatchObject({ hits: 1 });
  });
});

describe('a database that cannot count', () => {
  it('lets the request through (fail open) instead of answering 500', async () => {
    const dataSource = createDataSource({ url: t.appUrl, entities: ENTITIES, poolSize: 1 });
    await dataSource.initialize();
    const db = new Database(dataSource);
    const config = parseConfig({
      GATEHOUSE_BASE_URL: 'https://gatehouse.test',
      GATEHOUSE_ADMIN_AUTH_FAILURE_LIMIT: '2',
    });
    const { logger } = capturingLogger('silent');
    const app = createApp({ config, db, secrets: freshSecrets(), logger });
    await db.close();
    // No counter can be written; the operator-token check needs no database, so each answer is the refusal itself.
    for (let i = 0; i < 4; i++)
      expect((await request(app).get('/admin/v1/tenants').set('Authorization', 'Bearer wrong')).status).toBe(
        401,
      );
  });
});

describe('GATEHOUSE_TRUST_PROXY (property)', () => {
  const RUNS = fuzzRuns(200);
  const SEED = fuzzSeed(0x7a11);
  const PRESETS = ['loopback', 'linklocal', 'uniquelocal'];

  /** What Express does with the value: compile it and ask about one address. */
  const expressAccepts = (value: unknown) => {
    const app = express();
    app.set('trust proxy', value);
    const trust = app.get('trust proxy fn') as (addr: string, i: number) => boolean;
    return typeof trust('127.0.0.1', 0) === 'boolean';
  };

  it('is either refused at start with a message naming it, or a value Express compiles', () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.string({ maxLength: 40 }), fc.string({ unit: 'binary', maxLength: 40 })),
        (raw) => {
          let parsed: unknown;
          try {
            parsed = parseConfig({ GATEHOUSE_TRUST_PROXY: raw }).trustProxy;
          } catch (err) {
            expect(err).toBeInstanceOf(ConfigError);
            expect((err as ConfigError).problems.join('\n')).toContain('GATEHOUSE_TRUST_PROXY');
            return;
          }
          expect(expressAccepts(parsed)).toBe(true);
        },
      ),
      { numRuns: RUNS, seed: SEED },
    );
  });

  it('accepts a list of addresses, CIDR ranges and presets as given exactly when Express takes each entry', () => {
    const entry = fc.oneof(
      fc.ipV4(),
      fc.ipV6(),
      fc.tuple(fc.ipV4(), fc.integer({ min: 0, max: 32 })).map(([ip, bits]) => `${ip}/${bits}`),
      fc.tuple(fc.ipV6(), fc.integer({ min: 0, max: 128 })).map(([ip, bits]) => `${ip}/${bits}`),
      fc.constantFrom(...PRESETS),
    );
    fc.assert(
      fc.property(fc.array(entry, { minLength: 1, maxLength: 5 }), (entries) => {
        const takenByExpress = entries.every((e) => {
          try {
            return expressAccepts([e]);
          } catch {
            return false;
          }
        });
        if (!takenByExpress) {
          expect(() => parseConfig({ GATEHOUSE_TRUST_PROXY: entries.join(', ') })).toThrow(ConfigError);
          return;
        }
        const parsed = parseConfig({ GATEHOUSE_TRUST_PROXY: entries.join(', ') }).trustProxy;
        expect(parsed).toEqual(entries);
        expect(expressAccepts(parsed)).toBe(true);
      }),
      { numRuns: RUNS, seed: SEED },
    );
    expect(parseConfig({}).trustProxy).toBe(false);
    expect(parseConfig({ GATEHOUSE_TRUST_PROXY: '2' }).trustProxy).toBe(2);
    expect(parseConfig({ GATEHOUSE_TRUST_PROXY: 'true' }).trustProxy).toBe(true);
    expect(() => parseConfig({ GATEHOUSE_TRUST_PROXY: 'yes' })).toThrow(ConfigError);
    expect(() => parseConfig({ GATEHOUSE_TRUST_PROXY: '10.0.0.0/33' })).toThrow(ConfigError);
  });
});

describe('any X-Forwarded-For behind one trusted hop (property)', () => {
  it('never answers 5xx, and the counters hold only digests', async () => {
    const app = buildTestApp(t, {
      GATEHOUSE_TRUST_PROXY: '1',
      GATEHOUSE_LOGIN_DISCOVERY_RATE_LIMIT: '1000000',
    }).app;
    const headerText = fc.string({
      unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)),
      maxLength: 60,
    });
    const forwarded = fc.oneof(
      headerText,
      fc.array(fc.oneof(fc.ipV4(), fc.ipV6(), headerText), { maxLength: 4 }).map((list) => list.join(', ')),
    );
    await fc.assert(
      fc.asyncProperty(forwarded, async (value) => {
        const res = await request(app)
          .get('/login')
          .set('X-Forwarded-For', value)
          .query({ login: randomUUID(), email: 'x@c.test' });
        expect(res.status).toBeLessThan(500);
      }),
      { numRuns: fuzzRuns(60), seed: fuzzSeed(0xf0f0) },
    );
    // The only text a row holds is the limiter's name and a digest: no header value is stored.
    const rows = await counters();
    expect(rows.length).toBeGreaterThan(0);
    expect(rows.filter((r) => !/^[0-9a-f]{64}$/.test(r.key) || !LIMITERS.includes(r.limiter))).toEqual([]);
  });
});
