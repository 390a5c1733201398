import type { EntityManager } from 'typeorm';
import { createDataSource } from '../../src/db/data-source.js';
import { Database } from '../../src/db/database.js';
import { CHANNELS, NotificationBus } from '../../src/db/notification-bus.js';
import { ENTITIES } from '../../src/entities.js';
import { ScimTokenVerifier } from '../../src/scim/scim-auth.js';
import { setTenantStatus } from '../../src/tenants/tenants.service.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import {
  eventually,
  issueScimToken,
  operator,
  scimClient,
  startCluster,
  type GatehouseNode,
} from '../e2e/support.js';
import { ERROR, newUser, nextNotification } from './support.js';

/**
 * A verified SCIM token is cached per node (argon2 once, not per request).
 * Suspending or deleting its tenant must end it at once on EVERY node: the
 * admin API's transaction NOTIFYs, and each node drops that tenant's cached
 * tokens. Two nodes (own pools, own LISTEN connections) on one database.
 */
let t: TestDatabase;
let one: GatehouseNode;
let two: GatehouseNode;

beforeAll(async () => {
  t = await createTestDatabase();
  [one, two] = (await startCluster(t, 2)) as [GatehouseNode, GatehouseNode];
});
afterAll(async () => {
  await one.close();
  await two.close();
  await t.close();
});

/** A tenant and its SCIM token, both through node 1's admin API; a client per node. */
async function tenantWithToken(slug: string) {
  const created = await operator(one, 'POST', '/tenants', { slug, name: slug });
  expect(created.status).toBe(201);
  const id = String(created.body.id);
  const issued = await issueScimToken(one, id);
  return {
    id,
    onOne: scimClient(one, issued.scimBaseUrl, issued.token),
    onTwo: scimClient(two, issued.scimBaseUrl, issued.token),
    token: issued.token,
  };
}

function expectUnauthorized(res: { status: number; body: Record<string, unknown> }): void {
  expect(res.status).toBe(401);
  expect(res.body).toMatchObject({ schemas: [ERROR], status: '401' });
}

const setStatusQuietly = (tenantId: string, status: string) =>
  t.db.withPlatform((em) => em.query('UPDATE tenants SET status = $2 WHERE id = $1', [tenantId, status]));

const usersOf = (tenantId: string) =>
  t.db.withTenant(tenantId, (em) => em.query<{ user_name: string }[]>('SELECT user_name FROM users'));

describe("a tenant's SCIM token once the tenant is suspended or deleted", () => {
  it('is refused at once on the other node, which had it cached, and works again after reactivation', async () => {
    const acme = await tenantWithToken('acme');
    const globex = await tenantWithToken('globex');
    expect((await acme.onTwo('GET', '/Users')).status).toBe(200);
    expect((await globex.onTwo('GET', '/Users')).status).toBe(200);

    // Node 2 answers from its cache: a status written without the NOTIFY goes unseen there,
    // so what follows is the notification's doing, not a database read.
    await setStatusQuietly(acme.id, 'suspended');
    expect((await acme.onTwo('GET', '/Users')).status).toBe(200);
    await setStatusQuietly(acme.id, 'active');

    const heard = nextNotification(two.notifications, CHANNELS.tenantStatusChanged, (id) => id === acme.id);
    const suspended = await operator(one, 'POST', `/tenants/${acme.id}/suspend`);
    expect(suspended.body).toMatchObject({ status: 'suspended' });
    await heard;

    expectUnauthorized(await acme.onTwo('GET', '/Users'));
    expectUnauthorized(await acme.onTwo('POST', '/Users', newUser('late@acme.test')));
    expectUnauthorized(await acme.onOne('GET', '/Users'));
    expect(await usersOf(acme.id)).toEqual([]);
    // Only that tenant: another tenant's cached token is untouched.
    expect((await globex.onTwo('GET', '/Users')).status).toBe(200);

    // Suspension is not revocation: reactivated, the same token works on every node.
    await operator(one, 'POST', `/tenants/${acme.id}/reactivate`);
    expect((await acme.onTwo('GET', '/Users')).status).toBe(200);
    expect((await acme.onOne('POST', '/Users', newUser('back@acme.test'))).status).toBe(201);
  });

  it('is refused at once on the other node, which had it cached, when the tenant is deleted', async () => {
    const initech = await tenantWithToken('initech');
    expect((await initech.onTwo('POST', '/Users', newUser('peter@initech.test'))).status).toBe(201);

    const heard = nextNotification(
      two.notifications,
      CHANNELS.tenantStatusChanged,
      (id) => id === initech.id,
    );
    expect((await operator(one, 'DELETE', `/tenants/${initech.id}`)).status).toBe(204);
    await heard;

    expectUnauthorized(await initech.onTwo('GET', '/Users'));
    expectUnauthorized(await initech.onTwo('POST', '/Users', newUser('samir@initech.test')));
    expectUnauthorized(await initech.onOne('GET', '/Users'));
    // Issue 12: the rows are kept, unreachable, until the purge (test/offboarding/deletion.security.test.ts).
    expect(await usersOf(initech.id)).toEqual([{ user_name: 'peter@initech.test' }]);
  });
});

/** A Database that runs `afterRead` once, right after the next tenant transaction commits. */
class SteppedDatabase extends Database {
  afterRead: (() => Promise<void>) | undefined;
  override async withTenant<T>(tenantId: string, fn: (em: EntityManager) => Promise<T>): Promise<T> {
    const result = await super.withTenant(tenantId, fn);
    const step = this.afterRead;
    this.afterRead = undefined;
    await step?.();
    return result;
  }
}

describe('a verification in flight when the tenant is suspended', () => {
  it('answers from what it read, but caches nothing: the next request is refused', async () => {
    const umbrella = await tenantWithToken('umbrella');
    const ds = createDataSource({ url: t.appUrl, entities: ENTITIES, poolSize: 2 });
    await ds.initialize();
    const db = new SteppedDatabase(ds);
    const bus = new NotificationBus({ url: t.appUrl });
    await bus.start();
    try {
      const verifier = new ScimTokenVerifier(db, { cacheTtlMs: 300_000, notifications: bus });
      await eventually(() => verifier.caching, 'the verifier to listen');

      // The token row is read while the tenant is active; the suspension commits and
      // is heard before the verification (argon2) finishes and would cache.
      db.afterRead = async () => {
        const heard = nextNotification(bus, CHANNELS.tenantStatusChanged, (id) => id === umbrella.id);
        await setTenantStatus(t.db, umbrella.id, 'suspended', {
          actor: { type: 'operator', id: 'operator' },
        });
        await heard;
      };
      expect(await verifier.verify(umbrella.id, umbrella.token)).toMatchObject({ tenantId: umbrella.id });
      expect(verifier.cachedTokens).toBe(0);
      expect(await verifier.verify(umbrella.id, umbrella.token)).toBeNull();
    } finally {
      await bus.close();
      await db.close();
    }
  });
});

describe('a cold node asked with one bearer ten times at once (Okta opens about ten connections)', () => {
  it('runs argon2 once and answers all ten; a wrong bearer among them is still refused', async () => {
    const stark = await tenantWithToken('stark');
    const ds = createDataSource({ url: t.appUrl, entities: ENTITIES, poolSize: 10 });
    await ds.initialize();
    const db = new Database(ds);
    try {
      // No notification bus: nothing is cached, so every request goes to the database and to the check.
      const verifier = new ScimTokenVerifier(db, { cacheTtlMs: 300_000 });
      const wrong = `${stark.token.slice(0, -4)}${stark.token.endsWith('AAAA') ? 'BBBB' : 'AAAA'}`;
      const answers = await Promise.all([
        ...Array.from({ length: 10 }, () => verifier.verify(stark.id, stark.token)),
        verifier.verify(stark.id, wrong),
      ]);
      expect(answers.slice(0, 10).every((a) => a?.tenantId === stark.id)).toBe(true);
      expect(answers[10]).toBeNull();
      // Ten requests with one bearer share one check; the wrong bearer has its own.
      expect(verifier.argon2Checks).toBe(2);
      expect(verifier.cachedTokens).toBe(0);
      // Once answered, the next request checks again (nothing cached without the bus).
      expect(await verifier.verify(stark.id, stark.token)).toMatchObject({ tenantId: stark.id });
      expect(verifier.argon2Checks).toBe(3);
    } finally {
      await db.close();
    }
  });
});
