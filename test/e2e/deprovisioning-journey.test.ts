import * as client from 'openid-client';
import type { Connection } from '../../src/connections/connection.entity.js';
import { BACKCHANNEL_LOGOUT_EVENT } from '../../src/sessions/backchannel-logout.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { SamlTestIdp } from '../support/saml-idp.js';
import { createSamlConnection, createTenantWithDomains, loginFootprint } from '../support/sso-factories.js';
import { startLogoutReceiver, type LogoutReceiver } from '../sessions/support.js';
import {
  issueScimToken,
  expectRefusedToApp,
  logoutsDelivered,
  logoutTokensOf,
  MainApp,
  outbox,
  PATCH_OP,
  registerMainApp,
  scimClient,
  startCluster,
  type GatehouseNode,
  type SignedIn,
  verifyLogoutToken,
} from './support.js';

/**
 * What a customer relies on, every party real and two Gatehouse nodes on one
 * database: the IdP provisions a person by SCIM, she signs in to the main app
 * through her company's SAML IdP (samlify), and when the IdP's SCIM client
 * deprovisions her through node 1, node 2 — where the main app's next request
 * lands — already answers that her tokens are dead, and the app's back-channel
 * logout endpoint receives exactly one signed logout token for her session.
 */
const CALLBACK = 'http://localhost:3000/callback';

let t: TestDatabase;
let one: GatehouseNode;
let two: GatehouseNode;
let receiver: LogoutReceiver;
let saml: { idp: SamlTestIdp; connection: Connection };
let acmeId: string;
let mainApp: MainApp;
/** The main app's back-channel requests (token, introspection, userinfo), landing on node 2. */
let viaTwo: client.Configuration;
let scim: ReturnType<typeof scimClient>;

beforeAll(async () => {
  t = await createTestDatabase();
  [one, two] = (await startCluster(t, 2)) as [GatehouseNode, GatehouseNode];
  receiver = await startLogoutReceiver();
  const registered = await registerMainApp(one, {
    redirect_uris: [CALLBACK],
    backchannel_logout_uri: receiver.url,
  });
  mainApp = await MainApp.connect(one, registered, CALLBACK);
  viaTwo = mainApp.via(two);

  const idp = await SamlTestIdp.create('acme');
  acmeId = await createTenantWithDomains(t.db, 'acme', ['acme.test']);
  saml = { idp, connection: await createSamlConnection(t.db, acmeId, idp, { defaultRole: 'member' }) };
  const issued = await issueScimToken(one, acmeId);
  scim = scimClient(one, issued.scimBaseUrl, issued.token);
});
afterAll(async () => {
  await one.close();
  await two.close();
  await receiver.close();
  await t.close();
});

/** Okta's create request (placeholder password, groups: []), sent to node 1. */
async function provision(email: string, given: string, family: string): Promise<string> {
  const res = await scim('POST', '/Users', {
    schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'],
    userName: email,
    name: { givenName: given, familyName: family },
    emails: [{ primary: true, value: email, type: 'work' }],
    displayName: `${given} ${family}`,
    locale: 'en-US',
    externalId: `00u${given.toLowerCase()}`,
    groups: [],
    password: 'placeholder-1mz050nq',
    active: true,
  });
  expect(res.status).toBe(201);
  return String(res.body.id);
}

const signIn = (email: string) => mainApp.signIn(saml, email);

/** Everything the main app can still do with a session's tokens, asked of node 2. */
async function expectDeadOnNodeTwo(s: SignedIn): Promise<void> {
  expect(await client.tokenIntrospection(viaTwo, s.accessToken)).toEqual({ active: false });
  expect(await client.tokenIntrospection(viaTwo, s.refreshToken)).toEqual({ active: false });
  await expect(client.refreshTokenGrant(viaTwo, s.refreshToken)).rejects.toMatchObject({
    error: 'invalid_grant',
  });
  await expect(client.fetchUserInfo(viaTwo, s.accessToken, s.sub)).rejects.toMatchObject({
    status: 401,
    cause: [expect.objectContaining({ parameters: expect.objectContaining({ error: 'invalid_token' }) })],
  });
}

/** Waits until her logout is delivered (once: one attempt); returns the logout tokens for `sid`. */
async function logoutTokensFor(sid: string): Promise<string[]> {
  await logoutsDelivered(t.db, acmeId, [sid]);
  expect((await outbox(t.db, acmeId)).filter((r) => r.session_id === sid)).toEqual([
    expect.objectContaining({ status: 'delivered', attempts: 1 }),
  ]);
  return logoutTokensOf(receiver, sid);
}

/** OIDC Back-Channel Logout 1.0 §2.4, checked the way the app must: against Gatehouse's JWKS. */
async function expectLogoutToken(token: string, s: SignedIn): Promise<void> {
  const { payload, protectedHeader } = await verifyLogoutToken(mainApp, token);
  expect(protectedHeader.typ).toBe('logout+jwt');
  expect(payload).toMatchObject({
    sid: s.sid,
    sub: s.sub,
    events: { [BACKCHANNEL_LOGOUT_EVENT]: {} },
  });
  expect(payload).not.toHaveProperty('nonce');
}

async function expectLoginRefused(email: string, reason: string): Promise<void> {
  const before = await loginFootprint(t.db, acmeId);
  const { back, checks } = await mainApp.loginAtIdp(saml, email);
  expectRefusedToApp(back, checks, mainApp.callback, mainApp.issuer, reason);
  expect(await loginFootprint(t.db, acmeId)).toEqual(before);
}

function usersWithEmail(email: string): Promise<{ id: string; status: string }[]> {
  return t.db.withTenant(acmeId, (em) =>
    em.query('SELECT id, status FROM users WHERE lower(email) = $1', [email]),
  );
}

const deactivations = [
  {
    idp: 'Okta',
    off: { schemas: [PATCH_OP], Operations: [{ op: 'replace', value: { active: false } }] },
    on: { schemas: [PATCH_OP], Operations: [{ op: 'replace', value: { active: true } }] },
    email: 'alice@acme.test',
  },
  {
    idp: 'Entra ID',
    off: { schemas: [PATCH_OP], Operations: [{ op: 'Replace', path: 'active', value: 'False' }] },
    on: { schemas: [PATCH_OP], Operations: [{ op: 'Replace', path: 'active', value: 'True' }] },
    email: 'ada@acme.test',
  },
];

describe('deprovisioning reaches the signed-in main app', () => {
  it.each(deactivations)(
    "$idp's deactivation through node 1 ends her session on node 2 and logs her out of the app; reactivation lets her sign in anew but revives nothing",
    async ({ off, on, email }) => {
      const userId = await provision(email, 'Alice', 'Anderson');
      const alice = await signIn(email);
      // Linked by her verified email to the user SCIM created: no second account.
      expect(alice.sub).toBe(userId);
      expect(await usersWithEmail(email)).toEqual([{ id: userId, status: 'active' }]);
      expect(await client.tokenIntrospection(viaTwo, alice.accessToken)).toMatchObject({
        active: true,
        sub: userId,
        sid: alice.sid,
      });
      expect((await client.fetchUserInfo(viaTwo, alice.accessToken, alice.sub)).sub).toBe(userId);

      const deactivated = await scim('PATCH', `/Users/${userId}`, off);
      expect(deactivated.status).toBe(200);
      expect(deactivated.body).toMatchObject({ id: userId, active: false });

      // At the SCIM response already, on the other node: no waiting.
      await expectDeadOnNodeTwo(alice);
      const logouts = await logoutTokensFor(alice.sid);
      expect(logouts).toHaveLength(1);
      await expectLogoutToken(logouts[0] ?? '', alice);
      expect(one.logs() + two.logs()).not.toContain(logouts[0]);

      await expectLoginRefused(email, 'user_suspended');

      const reactivated = await scim('PATCH', `/Users/${userId}`, on);
      expect(reactivated.status).toBe(200);
      expect(reactivated.body).toMatchObject({ id: userId, active: true });
      const again = await signIn(email);
      expect(again.sub).toBe(userId);
      expect(again.sid).not.toBe(alice.sid);
      // The old session stays over: its refresh token still fails, and its access token is inactive.
      await expect(client.refreshTokenGrant(viaTwo, alice.refreshToken)).rejects.toMatchObject({
        error: 'invalid_grant',
      });
      expect(await client.tokenIntrospection(viaTwo, alice.accessToken)).toEqual({ active: false });
      // Presenting the old refresh token did not touch the new session.
      expect(await client.tokenIntrospection(viaTwo, again.accessToken)).toMatchObject({
        active: true,
        sid: again.sid,
      });
      const refreshed = await client.refreshTokenGrant(viaTwo, again.refreshToken);
      expect(refreshed.access_token).toEqual(expect.any(String));
      // Still exactly one logout for the old session; none for the new one.
      expect(logoutTokensOf(receiver, alice.sid)).toHaveLength(1);
      expect(logoutTokensOf(receiver, again.sid)).toHaveLength(0);
    },
  );

  it('a SCIM DELETE through node 1 ends her session on node 2, logs her out of the app once, and refuses her next login', async () => {
    const userId = await provision('bea@acme.test', 'Bea', 'Baker');
    const bea = await signIn('bea@acme.test');
    expect(bea.sub).toBe(userId);

    const deleted = await scim('DELETE', `/Users/${userId}`);
    expect(deleted.status).toBe(204);

    await expectDeadOnNodeTwo(bea);
    const logouts = await logoutTokensFor(bea.sid);
    expect(logouts).toHaveLength(1);
    await expectLogoutToken(logouts[0] ?? '', bea);
    await expectLoginRefused('bea@acme.test', 'user_deleted');
    expect((await scim('GET', `/Users/${userId}`)).status).toBe(404);
  });
});
