import { randomUUID } from 'node:crypto';
import type { Connection } from '../../src/connections/connection.entity.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { createUser } from '../support/factories.js';
import { SamlTestIdp } from '../support/saml-idp.js';
import { createSamlConnection, createTenantWithDomains } from '../support/sso-factories.js';

/**
 * Database.withResolvedTenant: one transaction that enters the tenant a
 * pre-tenant resolver names (the ACS and /oauth/authorize/continue use it,
 * issue 9). Row-level security must hold exactly as with withTenant.
 */
let t: TestDatabase;
let acme: string;
let globex: string;
let acmeConnection: Connection;

beforeAll(async () => {
  t = await createTestDatabase();
  acme = await createTenantWithDomains(t.db, 'acme', ['acme.test']);
  globex = await createTenantWithDomains(t.db, 'globex', ['globex.test']);
  acmeConnection = await createSamlConnection(t.db, acme, await SamlTestIdp.create('acme'));
  await createUser(t.db, acme, 'alice@acme.test');
  await createUser(t.db, globex, 'gina@globex.test');
});
afterAll(() => t.close());

const usersSeen = (rows: { tenant_id: string }[]) => [...new Set(rows.map((r) => r.tenant_id))];

describe('a transaction that enters the tenant a resolver names', () => {
  it("sees only the resolved tenant's rows once entered, and no tenant rows before", async () => {
    const seen = await t.db.withResolvedTenant(async (em, enterTenant) => {
      const before = await em.query<{ tenant_id: string }[]>('SELECT tenant_id FROM users');
      const tenantId = await enterTenant('connection', acmeConnection.id);
      const after = await em.query<{ tenant_id: string }[]>('SELECT tenant_id FROM users');
      return { before, tenantId, after: usersSeen(after) };
    });
    expect(seen).toEqual({ before: [], tenantId: acme, after: [acme] });
  });

  it('enters no tenant for an unknown or malformed key: tenant tables stay empty', async () => {
    for (const key of [randomUUID(), "x' OR 1=1 --"]) {
      const seen = await t.db.withResolvedTenant(async (em, enterTenant) => ({
        tenantId: await enterTenant('connection', key),
        users: await em.query<unknown[]>('SELECT * FROM users'),
      }));
      expect(seen).toEqual({ tenantId: null, users: [] });
    }
  });

  it('refuses to enter a second tenant in the same transaction', async () => {
    await expect(
      t.db.withResolvedTenant(async (_em, enterTenant) => {
        await enterTenant('connection', acmeConnection.id);
        await enterTenant('session', randomUUID());
      }),
    ).rejects.toThrow('a transaction enters one tenant only');
  });

  it('does not carry the tenant it entered to the next use of a pooled connection', async () => {
    await t.db.withResolvedTenant((_em, enterTenant) => enterTenant('connection', acmeConnection.id));
    const after = await Promise.all(
      [1, 2, 3, 4, 5].map(() => t.db.withPlatform((em) => em.query<unknown[]>('SELECT * FROM users'))),
    );
    expect(after.flat()).toEqual([]);
  });
});
