import * as client from 'openid-client';
import { revokeUserSessions } from '../../src/sessions/sessions.service.js';
import { createApp } from '../../src/apps/apps.service.js';
import { TestBrowser } from '../support/browser.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { CALLBACK, mainAppClient, signIn } from '../support/main-app.js';
import { createPerson, createTenantWithConnection, grantRole } from '../support/oauth-fixtures.js';
import { registerApp, startOAuthServer, type OAuthServer, type Person } from '../support/oauth-server.js';

/**
 * Tenant admins on /admin/v1 with an access token from Gatehouse's own admin
 * client (GATEHOUSE_ADMIN_CLIENT_ID): their own tenant only (404 elsewhere),
 * only with role `admin` read at request time, only on a live session.
 * People sign in through the test's DirectLoginFlow (internal seam).
 */
let t: TestDatabase;
let gh: OAuthServer;
let adminClient: client.Configuration;
let acmeId: string;
let globexId: string;
let acmeAdmin: Person;
let acmeMember: Person;
let globexAdmin: Person;

beforeAll(async () => {
  t = await createTestDatabase();
  const registered = await createApp(
    t.db,
    { name: 'Gatehouse admin console', redirect_uris: [CALLBACK] },
    { actor: { type: 'operator', id: 'operator' }, requestId: 'test', sourceIp: undefined },
  );
  gh = await startOAuthServer(t, { GATEHOUSE_ADMIN_CLIENT_ID: registered.client_id });
  const acme = await createTenantWithConnection(t.db, 'acme');
  const globex = await createTenantWithConnection(t.db, 'globex');
  acmeId = acme.tenantId;
  globexId = globex.tenantId;
  acmeAdmin = await createPerson(t.db, acme, 'root@acme.test');
  acmeMember = await createPerson(t.db, acme, 'member@acme.test');
  globexAdmin = await createPerson(t.db, globex, 'root@globex.test');
  await grantRole(t.db, acmeAdmin, 'admin');
  await grantRole(t.db, globexAdmin, 'admin');
  for (const [email, person] of [
    ['root@acme.test', acmeAdmin],
    ['member@acme.test', acmeMember],
    ['root@globex.test', globexAdmin],
  ] as const)
    gh.flow.people.set(email, person);
  adminClient = await mainAppClient(gh, registered.client_id, registered.client_secret);
});
afterAll(async () => {
  await gh.close();
  await t.close();
});

async function tokenFor(email: string, config = adminClient) {
  return (await signIn(config, new TestBrowser(), email)).tokens;
}

function admin(token: string, method: string, path: string, body?: unknown) {
  return fetch(`${gh.url}/admin/v1${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

describe('a tenant admin signed in through the admin client', () => {
  it('reaches their own tenant and gets 404 for every other tenant', async () => {
    const { access_token } = await tokenFor('root@acme.test');
    for (const path of ['', '/connections', '/audit-events']) {
      expect((await admin(access_token, 'GET', `/tenants/${acmeId}${path}`)).status).toBe(200);
      const res = await admin(access_token, 'GET', `/tenants/${globexId}${path}`);
      expect(res.status).toBe(404);
      expect(await res.json()).toMatchObject({ code: 'not_found' });
    }
    expect((await admin(access_token, 'PATCH', `/tenants/${globexId}`, { name: 'pwned' })).status).toBe(404);
    const globex = await t.db.withPlatform((em) =>
      em.query('SELECT name FROM tenants WHERE id = $1', [globexId]),
    );
    expect(globex).toEqual([{ name: 'globex' }]);
  });

  it("answers 404 on Acme's resources to Globex's admin", async () => {
    const { access_token } = await tokenFor('root@globex.test');
    expect((await admin(access_token, 'GET', `/tenants/${globexId}`)).status).toBe(200);
    expect((await admin(access_token, 'GET', `/tenants/${acmeId}`)).status).toBe(404);
    expect((await admin(access_token, 'GET', `/tenants/${acmeId}/connections`)).status).toBe(404);
  });

  it('is refused operator-only routes', async () => {
    const { access_token } = await tokenFor('root@acme.test');
    expect((await admin(access_token, 'GET', '/tenants')).status).toBe(403);
    expect((await admin(access_token, 'POST', '/signing-keys/rotate')).status).toBe(403);
    expect((await admin(access_token, 'GET', '/apps')).status).toBe(403);
  });
});

describe('tokens that are not a tenant admin', () => {
  it("refuses a member's token with 401", async () => {
    const { access_token } = await tokenFor('member@acme.test');
    const res = await admin(access_token, 'GET', `/tenants/${acmeId}`);
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toMatch(/^Bearer/);
  });

  it("refuses an admin's token issued to another app, and an admin's ID token", async () => {
    const other = await registerApp(gh, { redirect_uris: [CALLBACK] });
    const otherConfig = await mainAppClient(gh, other.clientId, other.clientSecret);
    const fromOtherApp = await tokenFor('root@acme.test', otherConfig);
    expect((await admin(fromOtherApp.access_token, 'GET', `/tenants/${acmeId}`)).status).toBe(401);
    const own = await tokenFor('root@acme.test');
    expect((await admin(own.id_token!, 'GET', `/tenants/${acmeId}`)).status).toBe(401);
  });

  it('refuses at once after the session is revoked or the admin role is taken away', async () => {
    const first = await tokenFor('root@acme.test');
    expect((await admin(first.access_token, 'GET', `/tenants/${acmeId}`)).status).toBe(200);
    await t.db.withTenant(acmeId, (em) => revokeUserSessions(em, acmeAdmin.userId, 'test'));
    expect((await admin(first.access_token, 'GET', `/tenants/${acmeId}`)).status).toBe(401);

    const second = await tokenFor('root@acme.test');
    expect((await admin(second.access_token, 'GET', `/tenants/${acmeId}`)).status).toBe(200);
    await t.db.withTenant(acmeId, (em) => em.query(`DELETE FROM role_mappings WHERE role = 'admin'`));
    expect((await admin(second.access_token, 'GET', `/tenants/${acmeId}`)).status).toBe(401);
  });

  it('refuses every token when no admin client is configured', async () => {
    const plain = await startOAuthServer(t, { GATEHOUSE_BASE_URL: gh.baseUrl }, { secrets: gh.secrets });
    try {
      await grantRole(t.db, globexAdmin, 'admin');
      const { access_token } = await tokenFor('root@globex.test');
      const res = await fetch(`${plain.url}/admin/v1/tenants/${globexId}`, {
        headers: { authorization: `Bearer ${access_token}` },
      });
      expect(res.status).toBe(401);
    } finally {
      await plain.close();
    }
  });
});
