import * as client from 'openid-client';
import type { Connection } from '../../src/connections/connection.entity.js';
import { BACKCHANNEL_LOGOUT_EVENT } from '../../src/sessions/backchannel-logout.js';
import {
  eventually,
  logoutsDelivered,
  logoutTokensOf,
  MainApp,
  operator,
  startNode,
  verifyLogoutToken,
  type GatehouseNode,
  type SignedIn,
} from '../e2e/support.js';
import { startLogoutReceiver, type LogoutReceiver } from '../sessions/support.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { SamlTestIdp } from '../support/saml-idp.js';
import { createSamlConnection, createTenantWithDomains } from '../support/sso-factories.js';
import { formFieldsOf, SloTestIdp, type SloTarget } from './saml-slo-idp.js';

/**
 * SAML Single Logout (issue 16) with every party real: the main app is
 * openid-client, the tenant's IdP is samlify (knowing Gatehouse only from the
 * connection's SP metadata), the app's back-channel logout endpoint a real
 * HTTP server. IdP-initiated by HTTP-Redirect and HTTP-POST ends the session
 * exactly as SCIM deprovisioning does (introspection inactive, refresh
 * refused, one logout token); refused messages revoke nothing; RP-initiated
 * logout continues at the IdP and comes back to the app.
 */
const CALLBACK = 'http://localhost:3000/callback';
const AFTER_LOGOUT = 'http://localhost:3000/signed-out';

let t: TestDatabase;
let node: GatehouseNode;
let receiver: LogoutReceiver;
let mainApp: MainApp;
let acmeId: string;
let idp: SloTestIdp;
let connection: Connection;
let target: SloTarget;

async function withSlo(tenantId: string, c: Connection, sloUrl: string): Promise<void> {
  await t.db.withTenant(tenantId, (em) =>
    em.query(
      `UPDATE connections SET saml_idp_slo_url = $2,
              saml_idp_slo_binding = 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect' WHERE id = $1`,
      [c.id, sloUrl],
    ),
  );
}

async function metadataOf(c: Pick<Connection, 'id'>): Promise<SloTarget> {
  const res = await fetch(`${node.address}/saml/${c.id}/metadata`);
  if (res.status !== 200) throw new Error(`metadata: ${res.status}`);
  return { metadata: await res.text() };
}

beforeAll(async () => {
  t = await createTestDatabase();
  node = await startNode(t);
  receiver = await startLogoutReceiver();
  const app = await operator(node, 'POST', '/apps', {
    name: 'Main app',
    redirect_uris: [CALLBACK],
    post_logout_redirect_uris: [AFTER_LOGOUT],
    backchannel_logout_uri: receiver.url,
  });
  if (app.status !== 201) throw new Error(`app: ${app.status}`);
  mainApp = await MainApp.connect(
    node,
    { clientId: String(app.body.client_id), clientSecret: String(app.body.client_secret) },
    CALLBACK,
  );
  idp = new SloTestIdp(await SamlTestIdp.create('acme'));
  acmeId = await createTenantWithDomains(t.db, 'acme', ['acme.test']);
  connection = await createSamlConnection(t.db, acmeId, idp.base);
  await withSlo(acmeId, connection, idp.sloUrl);
  target = await metadataOf(connection);
});
afterAll(async () => {
  await node.close();
  await receiver.close();
  await t.close();
});

const saml = () => ({ idp: idp.base, connection });

async function sessionIndexOf(tenantId: string, sid: string): Promise<string> {
  const rows = await t.db.withTenant(tenantId, (em) =>
    em.query<{ session_index: string }[]>('SELECT session_index FROM saml_sessions WHERE session_id = $1', [
      sid,
    ]),
  );
  if (!rows[0]) throw new Error(`no SLO row for session ${sid}`);
  return rows[0].session_index;
}

async function isLive(s: SignedIn): Promise<boolean> {
  return (await client.tokenIntrospection(mainApp.config, s.accessToken)).active === true;
}

async function expectEnded(s: SignedIn): Promise<void> {
  expect(await client.tokenIntrospection(mainApp.config, s.accessToken)).toEqual({ active: false });
  await expect(client.refreshTokenGrant(mainApp.config, s.refreshToken)).rejects.toMatchObject({
    error: 'invalid_grant',
  });
  await logoutsDelivered(t.db, acmeId, [s.sid]);
  const tokens = logoutTokensOf(receiver, s.sid);
  expect(tokens).toHaveLength(1);
  const { payload } = await verifyLogoutToken(mainApp, tokens[0] ?? '');
  expect(payload).toMatchObject({ sid: s.sid, sub: s.sub, events: { [BACKCHANNEL_LOGOUT_EVENT]: {} } });
}

async function revokedReason(tenantId: string, sid: string): Promise<string | null> {
  const rows = await t.db.withTenant(tenantId, (em) =>
    em.query<{ revoked_reason: string | null }[]>('SELECT revoked_reason FROM sessions WHERE id = $1', [sid]),
  );
  return rows[0]?.revoked_reason ?? null;
}

/** GET or POST at the SLO URL as the browser would, without following the answer. */
async function deliver(
  request: { url: string } | { form: Record<string, string> },
  connectionId = connection.id,
): Promise<{ status: number; location: string | null; body: string }> {
  const res =
    'url' in request
      ? await fetch(request.url.replace(node.baseUrl, node.address), { redirect: 'manual' })
      : await fetch(`${node.address}/saml/${connectionId}/slo`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams(request.form).toString(),
          redirect: 'manual',
        });
  return { status: res.status, location: res.headers.get('location'), body: await res.text() };
}

describe('IdP-initiated single logout', () => {
  it('HTTP-Redirect: a signed LogoutRequest ends the session, the app gets its logout token, the IdP a signed LogoutResponse', async () => {
    const alice = await mainApp.signIn(saml(), 'alice@acme.test');
    const other = await mainApp.signIn(saml(), 'alice@acme.test');
    const request = idp.logoutRequestRedirect(target, {
      nameId: 'alice@acme.test',
      sessionIndex: await sessionIndexOf(acmeId, alice.sid),
      relayState: 'idp-state-1',
    });
    const answer = await deliver(request);
    expect(answer.status).toBe(303);
    const response = await idp.readLogoutResponseRedirect(answer.location ?? '', target);
    expect(response.extract).toMatchObject({
      response: { inResponseTo: request.id },
      issuer: `${node.baseUrl}/saml/${connection.id}`,
    });
    expect(new URL(answer.location ?? '').searchParams.get('RelayState')).toBe('idp-state-1');
    await expectEnded(alice);
    expect(await revokedReason(acmeId, alice.sid)).toBe('saml_slo');
    // SessionIndex named one session: her other sign-in stays.
    expect(await isLive(other)).toBe(true);
  });

  it('HTTP-POST: a signed LogoutRequest without SessionIndex ends every session of that NameID, answered by POST', async () => {
    const bob = await mainApp.signIn(saml(), 'bob@acme.test');
    const again = await mainApp.signIn(saml(), 'bob@acme.test');
    const carol = await mainApp.signIn(saml(), 'carol@acme.test');
    const request = idp.logoutRequestPost(target, { nameId: 'bob@acme.test', relayState: 'post-state' });
    const answer = await deliver(request);
    expect(answer.status).toBe(200);
    const page = formFieldsOf(answer.body);
    expect(page.action).toBe(idp.sloUrl);
    expect(page.fields.RelayState).toBe('post-state');
    const response = await idp.readLogoutResponsePost(page.fields.SAMLResponse ?? '', target);
    expect(response.extract).toMatchObject({ response: { inResponseTo: request.id } });
    await expectEnded(bob);
    await expectEnded(again);
    expect(await isLive(carol)).toBe(true);
  });

  it('answers Success and revokes nothing when no session matches the NameID', async () => {
    const dave = await mainApp.signIn(saml(), 'dave@acme.test');
    const answer = await deliver(idp.logoutRequestRedirect(target, { nameId: 'nobody@acme.test' }));
    expect(answer.status).toBe(303);
    const response = await idp.readLogoutResponseRedirect(answer.location ?? '', target);
    expect(response.extract).toMatchObject({ issuer: `${node.baseUrl}/saml/${connection.id}` });
    expect(await isLive(dave)).toBe(true);
  });
});

describe('refused LogoutRequests revoke nothing', () => {
  let eve: SignedIn;
  beforeAll(async () => {
    eve = await mainApp.signIn(saml(), 'eve@acme.test');
  });

  const cases: {
    name: string;
    reason: string;
    make: () => Promise<{ url: string } | { form: Record<string, string> }>;
  }[] = [
    {
      name: 'unsigned (Signature and SigAlg removed)',
      reason: 'saml_logout_signature_invalid',
      make: () => {
        const { url } = idp.logoutRequestRedirect(target, { nameId: 'eve@acme.test' });
        const u = new URL(url);
        const query = u.search
          .slice(1)
          .split('&')
          .filter((p) => !p.startsWith('Signature=') && !p.startsWith('SigAlg='));
        return Promise.resolve({ url: `${u.origin}${u.pathname}?${query.join('&')}` });
      },
    },
    {
      name: 'signed by another key (same entity id)',
      reason: 'saml_logout_signature_invalid',
      make: async () => {
        const rogue = new SloTestIdp(await SamlTestIdp.rotated(idp.base));
        return rogue.logoutRequestRedirect(target, { nameId: 'eve@acme.test' });
      },
    },
    {
      name: 'POST signed by another key',
      reason: 'saml_logout_signature_invalid',
      make: async () => {
        const rogue = new SloTestIdp(await SamlTestIdp.rotated(idp.base));
        return rogue.logoutRequestPost(target, { nameId: 'eve@acme.test' });
      },
    },
    {
      name: 'another issuer, signed by the right key',
      reason: 'saml_logout_issuer_mismatch',
      make: () =>
        Promise.resolve(
          idp.logoutRequestRedirect(target, {
            nameId: 'eve@acme.test',
            issuer: 'https://evil.idp.test/metadata',
          }),
        ),
    },
    {
      name: 'issued an hour ago',
      reason: 'saml_logout_expired',
      make: () =>
        Promise.resolve(idp.logoutRequestRedirect(target, { nameId: 'eve@acme.test', shiftSeconds: -3600 })),
    },
  ];

  it.each(cases)('refuses a LogoutRequest $name with $reason', async ({ reason, make }) => {
    const answer = await deliver(await make());
    expect(answer.status).toBeGreaterThanOrEqual(400);
    expect(answer.status).toBeLessThan(500);
    expect(answer.body).toContain(reason);
    expect(await isLive(eve)).toBe(true);
  });

  it('refuses a replayed LogoutRequest with saml_logout_replayed, ending no later session', async () => {
    const frank = await mainApp.signIn(saml(), 'frank@acme.test');
    const request = idp.logoutRequestRedirect(target, { nameId: 'frank@acme.test' });
    expect((await deliver(request)).status).toBe(303);
    await expectEnded(frank);
    const later = await mainApp.signIn(saml(), 'frank@acme.test');
    const replayed = await deliver(request);
    expect(replayed.status).toBe(400);
    expect(replayed.body).toContain('saml_logout_replayed');
    expect(await isLive(later)).toBe(true);
  });
});

describe('single logout across tenants', () => {
  it("revokes nothing of Acme through Globex's connection, whether signed by Globex's IdP or by Acme's", async () => {
    const globexIdp = new SloTestIdp(await SamlTestIdp.create('globex'));
    const globexId = await createTenantWithDomains(t.db, 'globex', ['globex.test']);
    const globex = await createSamlConnection(t.db, globexId, globexIdp.base);
    await withSlo(globexId, globex, globexIdp.sloUrl);
    const globexTarget = await metadataOf(globex);
    const grace = await mainApp.signIn(saml(), 'grace@acme.test');
    const sessionIndex = await sessionIndexOf(acmeId, grace.sid);

    // Globex's own IdP, correctly signed for Globex's SP, naming Acme's person and session index.
    const own = await deliver(
      globexIdp.logoutRequestRedirect(globexTarget, { nameId: 'grace@acme.test', sessionIndex }),
    );
    expect(own.status).toBe(303);
    // Acme's IdP's signed request, delivered at Globex's SLO URL.
    const foreign = idp.logoutRequestPost(target, { nameId: 'grace@acme.test', sessionIndex });
    const refused = await deliver(foreign, globex.id);
    expect(refused.status).toBe(400);
    expect(refused.body).toMatch(/saml_logout_(signature_invalid|issuer_mismatch|destination_mismatch)/);

    expect(await isLive(grace)).toBe(true);
    expect(await revokedReason(acmeId, grace.sid)).toBeNull();
  });
});

describe('RP-initiated logout continues at the IdP', () => {
  async function signInWithIdToken(email: string) {
    const { back, checks } = await mainApp.loginAtIdp(saml(), email);
    const tokens = await client.authorizationCodeGrant(mainApp.config, new URL(back.redirectedTo ?? ''), {
      ...checks,
      idTokenExpected: true,
    });
    const sid = tokens.claims()?.sid;
    if (typeof sid !== 'string') throw new Error('no sid in the ID token');
    return { idToken: tokens.id_token ?? '', accessToken: tokens.access_token, sid };
  }

  function endSessionUrl(idToken: string, state: string): string {
    const url = client.buildEndSessionUrl(mainApp.config, {
      id_token_hint: idToken,
      post_logout_redirect_uri: AFTER_LOGOUT,
      state,
    });
    return url.toString().replace(node.baseUrl, node.address);
  }

  it("sends a signed LogoutRequest samlify verifies, and the IdP's LogoutResponse returns the browser to the app", async () => {
    const heidi = await signInWithIdToken('heidi@acme.test');
    const toIdp = await fetch(endSessionUrl(heidi.idToken, 'app-state'), { redirect: 'manual' });
    expect(toIdp.status).toBe(303);
    const location = toIdp.headers.get('location') ?? '';
    const { parsed, relayState } = await idp.readLogoutRequest(location, target);
    expect(parsed.extract).toMatchObject({
      nameID: 'heidi@acme.test',
      sessionIndex: await sessionIndexOf(acmeId, heidi.sid),
      issuer: `${node.baseUrl}/saml/${connection.id}`,
    });
    // Ended before the IdP was asked.
    expect(await client.tokenIntrospection(mainApp.config, heidi.accessToken)).toEqual({ active: false });

    const back = await fetch(
      idp.logoutResponseRedirect(target, parsed, relayState ?? '').replace(node.baseUrl, node.address),
      {
        redirect: 'manual',
      },
    );
    expect(back.status).toBe(303);
    const landed = new URL(back.headers.get('location') ?? '');
    expect(`${landed.origin}${landed.pathname}`).toBe(AFTER_LOGOUT);
    expect(landed.searchParams.get('state')).toBe('app-state');
    expect(await revokedReason(acmeId, heidi.sid)).toBe('rp_initiated_logout');
  });

  it('refuses a forged LogoutResponse and one answering no request of ours; the session stays ended', async () => {
    const ivan = await signInWithIdToken('ivan@acme.test');
    const toIdp = await fetch(endSessionUrl(ivan.idToken, 's'), { redirect: 'manual' });
    const { parsed, relayState } = await idp.readLogoutRequest(toIdp.headers.get('location') ?? '', target);

    const rogue = new SloTestIdp(await SamlTestIdp.rotated(idp.base));
    const forged = await deliver({ url: rogue.logoutResponseRedirect(target, parsed, relayState ?? '') });
    expect(forged.status).toBe(400);
    expect(forged.body).toContain('saml_logout_signature_invalid');

    const unknown = { extract: { request: { id: '_never-sent' } } };
    const unsolicited = await deliver({ url: idp.logoutResponseRedirect(target, unknown, '') });
    expect(unsolicited.status).toBe(400);
    expect(unsolicited.body).toContain('saml_logout_in_response_to_invalid');

    const failed = await deliver({
      url: idp.logoutResponseRedirect(target, parsed, '', 'urn:oasis:names:tc:SAML:2.0:status:Responder'),
    });
    expect(failed.status).toBe(502);
    expect(failed.body).toContain('saml_logout_response_failed');
    // None of these used up the pending request (node-saml refuses a non-Success status before it
    // checks the signature, so that answer proves nothing): the genuine answer still continues, once.
    const genuine = idp.logoutResponseRedirect(target, parsed, relayState ?? '');
    const late = await deliver({ url: genuine });
    expect(late.status).toBe(303);
    expect(late.location).toBe(`${AFTER_LOGOUT}?state=s`);
    const again = await deliver({ url: genuine });
    expect(again.body).toContain('saml_logout_replayed');
    expect(await client.tokenIntrospection(mainApp.config, ivan.accessToken)).toEqual({ active: false });
  });

  it('ends a session of a connection without an SLO URL here only', async () => {
    await t.db.withTenant(acmeId, (em) =>
      em.query('UPDATE connections SET saml_idp_slo_url = NULL, saml_idp_slo_binding = NULL WHERE id = $1', [
        connection.id,
      ]),
    );
    try {
      const judy = await signInWithIdToken('judy@acme.test');
      const res = await fetch(endSessionUrl(judy.idToken, 'j'), { redirect: 'manual' });
      expect(res.status).toBe(303);
      expect(res.headers.get('location')).toMatch(/^http:\/\/localhost:3000\/signed-out\?state=j$/);
    } finally {
      await withSlo(acmeId, connection, idp.sloUrl);
    }
  });
});

describe('SLO rows go with their sessions', () => {
  it('the SP metadata advertises SingleLogoutService on both bindings and a signing key', () => {
    expect(target.metadata).toContain(
      `<md:SingleLogoutService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="${node.baseUrl}/saml/${connection.id}/slo"/>`,
    );
    expect(target.metadata).toContain(
      `<md:SingleLogoutService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="${node.baseUrl}/saml/${connection.id}/slo"/>`,
    );
    expect(target.metadata).toContain('<md:KeyDescriptor use="signing">');
  });

  it('the cleanup sweep deletes the rows of expired sessions', async () => {
    const { runCleanup } = await import('../../src/sessions/cleanup.js');
    const kim = await mainApp.signIn(saml(), 'kim@acme.test');
    await t.db.withTenant(acmeId, (em) =>
      em.query(`UPDATE saml_sessions SET expires_at = now() - interval '2 hours' WHERE session_id = $1`, [
        kim.sid,
      ]),
    );
    const counts = await runCleanup(
      { db: t.db, graceMs: 3_600_000, outboxRetentionMs: 86_400_000 },
      new Date(),
    );
    expect(counts.saml_sessions).toBeGreaterThanOrEqual(1);
    await eventually(async () => {
      const rows = await t.db.withTenant(acmeId, (em) =>
        em.query<unknown[]>('SELECT 1 FROM saml_sessions WHERE session_id = $1', [kim.sid]),
      );
      return rows.length === 0;
    }, 'the expired SLO row to go');
  });
});

describe('the IdP SLO URL through the admin API', () => {
  it('takes it from the IdP metadata, lets idp_slo_url override or clear it, and refuses one that is not a URL', async () => {
    const tenantId = await createTenantWithDomains(t.db, 'initech', ['initech.test']);
    const other = new SloTestIdp(await SamlTestIdp.create('initech'));
    const metadata = other.idp().getMetadata();
    const created = await operator(node, 'POST', `/tenants/${tenantId}/connections`, {
      type: 'saml',
      name: 'Initech IdP',
      metadata_xml: metadata,
    });
    expect(created.status).toBe(201);
    const id = String(created.body.id);
    expect(created.body.saml).toMatchObject({
      idp_slo_url: other.sloUrl,
      idp_slo_binding: 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect',
    });
    expect(created.body.sp).toMatchObject({ slo_url: `${node.baseUrl}/saml/${id}/slo` });

    const path = `/tenants/${tenantId}/connections/${id}`;
    const set = await operator(node, 'PATCH', path, { idp_slo_url: 'https://initech.idp.test/logout' });
    expect(set.status).toBe(200);
    expect(set.body.saml).toMatchObject({ idp_slo_url: 'https://initech.idp.test/logout' });

    const before = await operator(node, 'GET', path);
    for (const bad of ['not a url', 'ftp://initech.idp.test/logout', `https://x.test/${'a'.repeat(2100)}`]) {
      const refused = await operator(node, 'PATCH', path, { idp_slo_url: bad });
      expect(refused.status).toBe(400);
    }
    expect(await operator(node, 'GET', path)).toEqual(before);

    const cleared = await operator(node, 'PATCH', path, { idp_slo_url: null });
    expect(cleared.body.saml).toMatchObject({ idp_slo_url: null, idp_slo_binding: null });
  });
});
