import * as client from 'openid-client';
import type { Connection } from '../../src/connections/connection.entity.js';
import { BACKCHANNEL_LOGOUT_EVENT } from '../../src/sessions/backchannel-logout.js';
import { createApp as registerApp } from '../../src/apps/apps.service.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { SamlTestIdp } from '../support/saml-idp.js';
import {
  auditEvents,
  createSamlConnection,
  createTenantWithDomains,
  loginFootprint,
} from '../support/sso-factories.js';
import { startLogoutReceiver, type LogoutReceiver } from '../sessions/support.js';
import {
  expectRefusedToApp,
  logoutsDelivered,
  logoutTokensOf,
  MainApp,
  operator,
  startCluster,
  verifyLogoutToken,
  type GatehouseNode,
  type SamlLogin,
  type SignedIn,
} from './support.js';

/**
 * Suspending or deleting a tenant (operator, through node 1's admin API) ends
 * its people's access everywhere: on node 2 their tokens introspect inactive,
 * refresh and userinfo fail, its admins are refused by the admin API, and the
 * main app receives a back-channel logout per session. Here the main app is
 * Gatehouse's own admin client (GATEHOUSE_ADMIN_CLIENT_ID), so the same tokens
 * are tenant-admin tokens; people sign in through a real SAML IdP (samlify).
 */
const CALLBACK = 'http://localhost:3000/callback';
const ADMINS = { groups: ['Gatehouse Admins'] };

let t: TestDatabase;
let one: GatehouseNode;
let two: GatehouseNode;
let receiver: LogoutReceiver;
let mainApp: MainApp;
let viaTwo: client.Configuration;

beforeAll(async () => {
  t = await createTestDatabase();
  receiver = await startLogoutReceiver();
  const registered = await registerApp(
    t.db,
    { name: 'Admin console', redirect_uris: [CALLBACK], backchannel_logout_uri: receiver.url },
    { actor: { type: 'operator', id: 'operator' } },
  );
  const clientId = registered.client_id;
  [one, two] = (await startCluster(t, 2, { GATEHOUSE_ADMIN_CLIENT_ID: clientId })) as [
    GatehouseNode,
    GatehouseNode,
  ];
  mainApp = await MainApp.connect(one, { clientId, clientSecret: registered.client_secret ?? '' }, CALLBACK);
  viaTwo = mainApp.via(two);
});
afterAll(async () => {
  await one.close();
  await two.close();
  await receiver.close();
  await t.close();
});

/** A tenant with a verified domain, a SAML connection, and `Gatehouse Admins` mapped to `admin`. */
async function tenant(slug: string): Promise<{ id: string; saml: SamlLogin }> {
  const idp = await SamlTestIdp.create(slug);
  const id = await createTenantWithDomains(t.db, slug, [`${slug}.test`]);
  const connection: Connection = await createSamlConnection(t.db, id, idp, { defaultRole: 'member' });
  await t.db.withTenant(id, (em) =>
    em.query(
      `INSERT INTO role_mappings (tenant_id, group_attribute, group_value, role)
       VALUES ($1, 'display_name', 'Gatehouse Admins', 'admin')`,
      [id],
    ),
  );
  return { id, saml: { idp, connection } };
}

/** The admin API on node 2 with a person's access token. */
async function adminOnTwo(token: string, tenantId: string): Promise<number> {
  const res = await fetch(`${two.address}/admin/v1/tenants/${tenantId}`, {
    headers: { authorization: `Bearer ${token}` },
  });
  await res.arrayBuffer();
  return res.status;
}

async function expectDeadOnNodeTwo(s: SignedIn): Promise<void> {
  expect(await client.tokenIntrospection(viaTwo, s.accessToken)).toEqual({ active: false });
  expect(await client.tokenIntrospection(viaTwo, s.refreshToken)).toEqual({ active: false });
  await expect(client.refreshTokenGrant(viaTwo, s.refreshToken)).rejects.toMatchObject({
    error: 'invalid_grant',
  });
  await expect(client.fetchUserInfo(viaTwo, s.accessToken, s.sub)).rejects.toMatchObject({ status: 401 });
}

/** Exactly one logout token per session, verified against Gatehouse's JWKS. */
async function expectOneLogoutEach(tenantId: string, sessions: SignedIn[]): Promise<void> {
  await logoutsDelivered(
    t.db,
    tenantId,
    sessions.map((s) => s.sid),
  );
  for (const s of sessions) {
    const tokens = logoutTokensOf(receiver, s.sid);
    expect(tokens).toHaveLength(1);
    const { payload } = await verifyLogoutToken(mainApp, tokens[0] ?? '');
    expect(payload).toMatchObject({ sid: s.sid, sub: s.sub, events: { [BACKCHANNEL_LOGOUT_EVENT]: {} } });
  }
}

describe('a suspended tenant', () => {
  it('loses access on every node: tokens inactive, refresh and userinfo refused, its admins refused, one logout per session; reactivation revives none', async () => {
    const acme = await tenant('acme');
    const root = await mainApp.signIn(acme.saml, 'root@acme.test', ADMINS);
    const mia = await mainApp.signIn(acme.saml, 'mia@acme.test');
    expect(root.roles).toEqual(['admin']);
    expect(await adminOnTwo(root.accessToken, acme.id)).toBe(200);
    expect(await client.tokenIntrospection(viaTwo, mia.accessToken)).toMatchObject({ active: true });

    const suspended = await operator(one, 'POST', `/tenants/${acme.id}/suspend`);
    expect(suspended.body).toMatchObject({ status: 'suspended' });

    for (const s of [root, mia]) await expectDeadOnNodeTwo(s);
    expect(await adminOnTwo(root.accessToken, acme.id)).toBe(401);
    await expectOneLogoutEach(acme.id, [root, mia]);
    expect(await auditEvents(t.db, acme.id, 'tenant.suspended')).toEqual([
      expect.objectContaining({
        after: expect.objectContaining({ status: 'suspended', revoked_sessions: 2 }),
      }),
    ]);

    // No new session while suspended: discovery does not lead to its IdP.
    const before = await loginFootprint(t.db, acme.id);
    const { back, checks } = await mainApp.loginAtIdp(acme.saml, 'root@acme.test', ADMINS);
    expectRefusedToApp(back, checks, mainApp.callback, mainApp.issuer, 'discovery_domain_unknown');
    expect(await loginFootprint(t.db, acme.id)).toEqual(before);

    await operator(one, 'POST', `/tenants/${acme.id}/reactivate`);
    const again = await mainApp.signIn(acme.saml, 'root@acme.test', ADMINS);
    expect(await adminOnTwo(again.accessToken, acme.id)).toBe(200);
    // The sessions the suspension ended stay ended.
    await expectDeadOnNodeTwo(root);
    expect(await adminOnTwo(root.accessToken, acme.id)).toBe(401);
    expect(await client.tokenIntrospection(viaTwo, again.accessToken)).toMatchObject({ active: true });
  });
});

describe('a deleted tenant', () => {
  it('loses access on every node and the app is told of each session', async () => {
    const globex = await tenant('globex');
    const gina = await mainApp.signIn(globex.saml, 'gina@globex.test', ADMINS);
    expect(await adminOnTwo(gina.accessToken, globex.id)).toBe(200);

    expect((await operator(one, 'DELETE', `/tenants/${globex.id}`)).status).toBe(204);

    await expectDeadOnNodeTwo(gina);
    expect(await adminOnTwo(gina.accessToken, globex.id)).toBe(401);
    await expectOneLogoutEach(globex.id, [gina]);
  });
});
