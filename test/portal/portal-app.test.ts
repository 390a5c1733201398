import { deleteApp, listApps } from '../../src/apps/apps.service.js';
import { createDataSource } from '../../src/db/data-source.js';
import { Database, PLATFORM_TENANT_ID } from '../../src/db/database.js';
import { ENTITIES } from '../../src/entities.js';
import {
  ensurePortalApp,
  PORTAL_APP_NAME,
  PortalOidcClient,
  portalAppId,
} from '../../src/portal/admin-signin-client.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { auditEvents } from '../support/sso-factories.js';

/**
 * Issue 15 follow-up: the portal's OAuth client is created on first sign-in, and nodes sign in at the same
 * moment. Its id is well-known (portalAppId), inserted with ON CONFLICT DO NOTHING and read back, so concurrent
 * first uses on two Database instances (two nodes' pools) leave one app and one `app.created`.
 */
let t: TestDatabase;
let second: Database;
const BASE = 'https://gatehouse.test';

beforeAll(async () => {
  t = await createTestDatabase();
  const ds = createDataSource({ url: t.appUrl, entities: ENTITIES, poolSize: 4 });
  await ds.initialize();
  second = new Database(ds);
});
afterAll(async () => {
  await second?.close();
  await t?.close();
});

const portalApps = async () =>
  (await listApps(t.db, { limit: 100, offset: 0 })).data.filter((a) => a.name === PORTAL_APP_NAME);
const created = async (id: string) =>
  (await auditEvents(t.db, PLATFORM_TENANT_ID, 'app.created')).filter((e) => e.target_id === id);

describe('the portal’s OAuth client', () => {
  it('is created exactly once by concurrent first sign-ins on two nodes, all of which get its client_id', async () => {
    const ids = await Promise.all(
      Array.from({ length: 12 }, (_, i) => ensurePortalApp(i % 2 ? second : t.db, BASE)),
    );
    const expected = portalAppId(BASE, 0);
    expect(new Set(ids)).toEqual(new Set([expected]));
    const apps = await portalApps();
    expect(apps.map((a) => a.client_id)).toEqual([expected]);
    expect(apps[0]).toMatchObject({
      client_type: 'public',
      redirect_uris: [`${BASE}/portal/oidc/callback`],
      post_logout_redirect_uris: [`${BASE}/portal/signin`],
      secrets: [],
    });
    expect(await created(expected)).toEqual([
      expect.objectContaining({ actor_type: 'system', target_id: expected }),
    ]);
  });

  it('is registered again, once, under the next well-known id after the operator deletes it', async () => {
    const first = portalAppId(BASE, 0);
    await deleteApp(t.db, first, { actor: { type: 'operator', id: 'operator' } });
    // Two nodes' portal clients, each with its own cache, as two processes would have.
    const nodes = [
      new PortalOidcClient({ db: t.db, baseUrl: BASE }),
      new PortalOidcClient({ db: second, baseUrl: BASE }),
    ];
    const ids = await Promise.all(Array.from({ length: 8 }, (_, i) => nodes[i % 2]!.clientId()));
    const next = portalAppId(BASE, 1);
    expect(new Set(ids)).toEqual(new Set([next]));
    expect((await portalApps()).map((a) => a.client_id)).toEqual([next]);
    expect(await created(next)).toHaveLength(1);
  });

  it('derives a different, valid UUID per base URL and generation', () => {
    const ids = [portalAppId(BASE, 0), portalAppId(BASE, 1), portalAppId('https://other.test', 0)];
    expect(new Set(ids).size).toBe(3);
    for (const id of ids)
      expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(portalAppId(BASE, 0)).toBe(ids[0]);
  });
});
