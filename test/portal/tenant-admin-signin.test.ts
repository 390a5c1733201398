import { open as openSealed, seal } from '../../src/config/secret-box.js';
import { TestBrowser } from '../support/browser.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { startSsoServer } from '../support/sso-app.js';
import { auditEvents } from '../support/sso-factories.js';
import {
  mapGroupToAdmin,
  open,
  post,
  signInThroughIdp,
  startTenantWorld,
  tenantAdminSessions,
  type TenantWorld,
} from './tenant-admin-signin.support.js';

/**
 * Issue 15: tenant admins sign in to the portal through their own company
 * IdP; the portal is a client of Gatehouse's own OpenID Provider. Every
 * party real: a samlify SAML IdP per tenant, Gatehouse listening on loopback
 * (/oauth/authorize's home realm discovery, the ACS, /oauth/token over HTTP,
 * the ID token verified by openid-client against the JWKS), a cookie-keeping
 * browser. Then "still true?": deprovisioning, a lost admin role and sign-out
 * end the portal session at the next request.
 */
let t: TestDatabase;
let w: TenantWorld;
const ADMINS = 'Acme Gatehouse Admins';

beforeAll(async () => {
  t = await createTestDatabase();
  w = await startTenantWorld(t);
  await mapGroupToAdmin(w, w.acme.tenantId, ADMINS);
});
afterAll(async () => {
  await w?.close();
  await t?.close();
});

const base = () => w.gh.baseUrl;

describe('a tenant admin signs in through their company IdP', () => {
  it('lands on their own tenant’s portal, opens its SSO page, and the start is audited with the principal kind', async () => {
    const { browser, toIdp, landed } = await signInThroughIdp(w, w.acme, 'ada@acme.test', [ADMINS]);
    // The whole chain went through the OP (home realm discovery by the email) and the portal's callback.
    expect(toIdp.trail.some((u) => u.startsWith(`${base()}/oauth/authorize?`))).toBe(true);
    expect(landed.trail.some((u) => u.startsWith(`${base()}/portal/oidc/callback?code=`))).toBe(true);
    expect(landed.redirectedTo).toBe(`${base()}/portal/t/${w.acme.tenantId}`);

    const home = await open(w, browser, `/portal/t/${w.acme.tenantId}`);
    expect(home.status).toBe(200);
    expect(home.body).toContain('href="/portal/t/' + w.acme.tenantId + '/sso"');
    const sso = await open(w, browser, `/portal/t/${w.acme.tenantId}/sso`);
    expect(sso.status).toBe(200);
    // The tenant list is the operator's: a tenant admin is sent to their own tenant.
    const root = await browser.visit(`${base()}/portal`, `${base()}/portal/t/`);
    expect(root.redirectedTo).toBe(`${base()}/portal/t/${w.acme.tenantId}`);

    const started = await auditEvents(t.db, w.acme.tenantId, 'portal.session_started');
    expect(started.at(-1)).toMatchObject({ actor_type: 'user', after: { kind: 'tenant_admin' } });
  });

  it('keeps creating setup links the operator’s: a tenant admin gets 403 and no link is made', async () => {
    const { browser } = await signInThroughIdp(w, w.acme, 'sid@acme.test', [ADMINS]);
    const home = await open(w, browser, `/portal/t/${w.acme.tenantId}`);
    const before = await w.admin('GET', `/tenants/${w.acme.tenantId}/setup-links`);
    const res = await post(w, browser, `/portal/t/${w.acme.tenantId}/setup-links`, home, { intents: 'sso' });
    expect(res.status).toBe(403);
    const after = await w.admin('GET', `/tenants/${w.acme.tenantId}/setup-links`);
    expect(await after.json()).toEqual(await before.json());
  });

  it('refuses a member without the admin role with a clear 403 page, opens no session and ends the one the sign-in made', async () => {
    const sessions = await tenantAdminSessions(t);
    const { browser, landed } = await signInThroughIdp(w, w.acme, 'mel@acme.test', ['Engineering']);
    expect(landed.redirectedTo).toBeNull();
    expect(landed.status).toBe(403);
    expect(landed.body).toContain('<code id="reason-code">not_tenant_admin</code>');
    expect(await tenantAdminSessions(t)).toBe(sessions);
    // The Gatehouse session behind the refused sign-in was revoked through /oauth/revoke (RFC 7009).
    const rows = await t.db.withTenant(w.acme.tenantId, (em) =>
      em.query<{ revoked_reason: string | null }[]>(
        `SELECT s.revoked_reason FROM sessions s JOIN users u ON u.id = s.user_id WHERE u.user_name = 'mel@acme.test'`,
      ),
    );
    expect(rows).toEqual([{ revoked_reason: 'revoked_by_client' }]);
    expect((await open(w, browser, `/portal/t/${w.acme.tenantId}`)).status).toBe(401);
  });
});

describe('the portal session is only as live as the Gatehouse session and the admin role', () => {
  it('signs the admin out at the next request after SCIM deactivates them', async () => {
    const { browser } = await signInThroughIdp(w, w.acme, 'dee@acme.test', [ADMINS]);
    expect((await open(w, browser, `/portal/t/${w.acme.tenantId}`)).status).toBe(200);
    const sessions = await tenantAdminSessions(t);

    const token = await w.admin('POST', `/tenants/${w.acme.tenantId}/scim-tokens`, { description: 'Okta' });
    const { token: scimToken } = (await token.json()) as { token: string };
    const scim = `${w.gh.address}/scim/v2/${w.acme.tenantId}/Users`;
    const headers = { authorization: `Bearer ${scimToken}`, 'content-type': 'application/scim+json' };
    const found = (await (
      await fetch(`${scim}?filter=${encodeURIComponent('userName eq "dee@acme.test"')}`, { headers })
    ).json()) as { Resources: { id: string }[] };
    const patched = await fetch(`${scim}/${found.Resources[0]?.id}`, {
      method: 'PATCH',
      headers,
      body: JSON.stringify({
        schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'],
        Operations: [{ op: 'replace', value: { active: false } }],
      }),
    });
    expect(patched.status).toBe(200);

    const next = await open(w, browser, `/portal/t/${w.acme.tenantId}/sso`);
    expect(next.status).toBe(401);
    expect(await tenantAdminSessions(t)).toBe(sessions - 1);
  });

  it('signs the admin out at the next request once the group mapping that made them admin is removed', async () => {
    const group = 'Acme Temporary Admins';
    const mappingId = await mapGroupToAdmin(w, w.acme.tenantId, group);
    const { browser } = await signInThroughIdp(w, w.acme, 'rae@acme.test', [group]);
    expect((await open(w, browser, `/portal/t/${w.acme.tenantId}/dsync`)).status).toBe(200);
    const removed = await w.admin('DELETE', `/tenants/${w.acme.tenantId}/role-mappings/${mappingId}`);
    expect(removed.status).toBe(204);
    expect((await open(w, browser, `/portal/t/${w.acme.tenantId}/dsync`)).status).toBe(401);
  });

  it('ends the portal session on sign-out and offers RP-initiated logout, which ends the Gatehouse session', async () => {
    const { browser } = await signInThroughIdp(w, w.acme, 'lou@acme.test', [ADMINS]);
    const home = await open(w, browser, `/portal/t/${w.acme.tenantId}`);
    const signedOut = await post(w, browser, '/portal/logout', home);
    expect(signedOut.status).toBe(200);
    expect(signedOut.body).toContain('Also sign out of Gatehouse');
    expect((await open(w, browser, `/portal/t/${w.acme.tenantId}`)).status).toBe(401);

    const form = (name: string) =>
      new RegExp(`name="${name}" value="([^"]+)"`).exec(signedOut.body)?.[1]?.replaceAll('&amp;', '&') ?? '';
    const logout = new URL(`${base()}/oauth/logout`);
    for (const name of ['id_token_hint', 'client_id', 'post_logout_redirect_uri'])
      logout.searchParams.set(name, form(name));
    const back = await browser.visit(logout.toString(), `${base()}/portal/signin`);
    expect(back.redirectedTo).toBe(`${base()}/portal/signin`);
    const [payload] = form('id_token_hint').split('.').slice(1, 2);
    const { sid } = JSON.parse(Buffer.from(payload ?? '', 'base64url').toString()) as { sid: string };
    const [row] = await t.db.withTenant(w.acme.tenantId, (em) =>
      em.query<{ revoked_reason: string | null }[]>('SELECT revoked_reason FROM sessions WHERE id = $1', [
        sid,
      ]),
    );
    expect(row?.revoked_reason).toBe('rp_initiated_logout');
  });

  it('keeps the ID token sealed at rest: the row holds neither the token nor any of its parts, and sign-out still offers it', async () => {
    const { browser } = await signInThroughIdp(w, w.acme, 'ivy@acme.test', [ADMINS]);
    const stored = await storedIdToken('ivy@acme.test');
    expect(stored).toMatch(/^v1\./);
    const home = await open(w, browser, `/portal/t/${w.acme.tenantId}`);
    const signedOut = await post(w, browser, '/portal/logout', home);
    const hint = hintOf(signedOut.body);
    const parts = hint.split('.');
    expect(parts).toHaveLength(3);
    expect(stored).not.toContain(hint);
    for (const part of parts) expect(stored).not.toContain(part);
    // The hint is the token the OP issued for this sign-in: /oauth/logout accepts it and ends that session.
    const logout = new URL(`${base()}/oauth/logout`);
    logout.searchParams.set('id_token_hint', hint);
    logout.searchParams.set('client_id', /name="client_id" value="([^"]+)"/.exec(signedOut.body)?.[1] ?? '');
    logout.searchParams.set('post_logout_redirect_uri', `${base()}/portal/signin`);
    const back = await browser.visit(logout.toString(), `${base()}/portal/signin`);
    expect(back.redirectedTo).toBe(`${base()}/portal/signin`);
  });

  it('offers no id_token_hint when the row’s sealed token was copied from another session, and still signs out', async () => {
    const other = await signInThroughIdp(w, w.acme, 'oto@acme.test', [ADMINS]);
    const { browser } = await signInThroughIdp(w, w.acme, 'cop@acme.test', [ADMINS]);
    const copied = await storedIdToken('oto@acme.test');
    const userId = await userIdOf('cop@acme.test');
    // The attacker of this test writes the table directly (a database dump restored into another row).
    await t.asOwner('UPDATE portal_sessions SET id_token = $1 WHERE user_id = $2', [copied, userId]);
    const home = await open(w, browser, `/portal/t/${w.acme.tenantId}`);
    const signedOut = await post(w, browser, '/portal/logout', home);
    expect(signedOut.status).toBe(200);
    expect(signedOut.body).toContain('You are signed out of the portal.');
    expect(signedOut.body).not.toContain('id_token_hint');
    expect((await open(w, browser, `/portal/t/${w.acme.tenantId}`)).status).toBe(401);
    // The session the value came from still opens its own: the binding is to the row, not the key.
    const otherHome = await open(w, other.browser, `/portal/t/${w.acme.tenantId}`);
    expect(hintOf((await post(w, other.browser, '/portal/logout', otherHome)).body).split('.')).toHaveLength(
      3,
    );
  });
});

const hintOf = (page: string) => /name="id_token_hint" value="([^"]+)"/.exec(page)?.[1] ?? '';

async function userIdOf(email: string): Promise<string> {
  const [user] = await t.db.withTenant(w.acme.tenantId, (em) =>
    em.query<{ id: string }[]>('SELECT id FROM users WHERE user_name = $1', [email]),
  );
  if (!user) throw new Error(`no user ${email}`);
  return user.id;
}

/** The id_token column of the person's one tenant-admin portal session, as stored. */
async function storedIdToken(email: string): Promise<string> {
  const userId = await userIdOf(email);
  const rows = await t.db.withPlatform((em) =>
    em.query<{ id_token: string | null }[]>('SELECT id_token FROM portal_sessions WHERE user_id = $1', [
      userId,
    ]),
  );
  expect(rows).toHaveLength(1);
  return rows[0]?.id_token ?? '';
}

describe('the callback refuses an answer that is not this browser’s sign-in', () => {
  const callbackOf = async (email: string, browser = new TestBrowser()) => {
    const { landed } = await signInThroughIdp(
      w,
      w.acme,
      email,
      [ADMINS],
      `${base()}/portal/oidc/callback`,
      browser,
    );
    if (!landed.redirectedTo) throw new Error(`no callback: ${landed.status} ${landed.body.slice(0, 200)}`);
    return { browser, callback: new URL(landed.redirectedTo) };
  };

  it('shows state_mismatch for a changed state and opens no session', async () => {
    const sessions = await tenantAdminSessions(t);
    const { browser, callback } = await callbackOf('sam@acme.test');
    callback.searchParams.set('state', 'not-the-state-this-browser-sent');
    const page = await browser.visit(callback.toString(), []);
    expect(page.status).toBe(400);
    expect(page.body).toContain('<code id="reason-code">state_mismatch</code>');
    expect(await tenantAdminSessions(t)).toBe(sessions);
  });

  it('shows code_rejected (PKCE) for another browser’s code under this browser’s state, and opens no session', async () => {
    const sessions = await tenantAdminSessions(t);
    const attacker = await callbackOf('eve@acme.test');
    const victim = await callbackOf('vic@acme.test');
    victim.callback.searchParams.set('code', attacker.callback.searchParams.get('code') ?? '');
    const page = await victim.browser.visit(victim.callback.toString(), []);
    expect(page.status).toBe(400);
    expect(page.body).toContain('<code id="reason-code">code_rejected</code>');
    expect(await tenantAdminSessions(t)).toBe(sessions);
  });

  it('shows nonce_mismatch when the ID token carries another nonce than the one sealed at the start', async () => {
    const sessions = await tenantAdminSessions(t);
    const { browser, callback } = await callbackOf('nia@acme.test');
    const sealed = browser.cookie(new URL(base()).host, 'gh_portal_signin') ?? '';
    const started = JSON.parse(openSealed(w.gh.secrets.masterKey, sealed, 'portal:admin-signin')) as object;
    const forged = seal(
      w.gh.secrets.masterKey,
      JSON.stringify({ ...started, nonce: 'another-nonce' }),
      'portal:admin-signin',
    );
    const res = await fetch(callback, {
      headers: { cookie: `gh_portal_signin=${forged}` },
      redirect: 'manual',
    });
    expect(res.status).toBe(400);
    expect(await res.text()).toContain('<code id="reason-code">nonce_mismatch</code>');
    expect(await tenantAdminSessions(t)).toBe(sessions);
  });

  it('shows signin_expired for a callback in a browser that started no sign-in', async () => {
    const { callback } = await callbackOf('nat@acme.test');
    const page = await new TestBrowser().visit(callback.toString(), []);
    expect(page.status).toBe(400);
    expect(page.body).toContain('<code id="reason-code">signin_expired</code>');
  });

  it('answers the sign-in form with 400 for something that is not an email, starting nothing', async () => {
    const browser = new TestBrowser();
    const page = await browser.visit(`${base()}/portal/signin`, [], {
      method: 'POST',
      form: { email: 'not an email' },
    });
    expect(page.status).toBe(400);
    expect(browser.cookie(new URL(base()).host, 'gh_portal_signin')).toBeUndefined();
  });
});

describe('behind a proxy the node cannot reach through its public URL', () => {
  it('discovers its own OP at GATEHOUSE_PORTAL_OP_URL while the issuer and the browser’s URLs stay the base URL', async () => {
    // Two nodes of one installation whose public URL this host cannot reach (a closed loopback port: no network).
    const publicUrl = 'http://127.0.0.1:1';
    const op = await startSsoServer(t, { env: { GATEHOUSE_BASE_URL: publicUrl } });
    const portal = await startSsoServer(t, {
      env: { GATEHOUSE_BASE_URL: publicUrl, GATEHOUSE_PORTAL_OP_URL: op.address },
    });
    try {
      const res = await fetch(`${portal.address}/portal/signin`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ email: 'ada@acme.test' }).toString(),
        redirect: 'manual',
      });
      expect(res.status).toBe(303);
      const authorize = new URL(res.headers.get('location') ?? '');
      expect(`${authorize.origin}${authorize.pathname}`).toBe(`${publicUrl}/oauth/authorize`);
      expect(authorize.searchParams.get('redirect_uri')).toBe(`${publicUrl}/portal/oidc/callback`);
      expect(authorize.searchParams.get('code_challenge_method')).toBe('S256');
    } finally {
      await portal.close();
      await op.close();
    }
  });

  it('answers 503 naming the unreachable sign-in service, not the database, when no OP URL is set', async () => {
    const node = await startSsoServer(t, { env: { GATEHOUSE_BASE_URL: 'http://127.0.0.1:1' } });
    try {
      const res = await fetch(`${node.address}/portal/signin`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ email: 'ada@acme.test' }).toString(),
        redirect: 'manual',
      });
      expect(res.status).toBe(503);
      expect(await res.text()).toContain('cannot reach Gatehouse’s sign-in service');
      expect(res.headers.getSetCookie().some((c) => c.startsWith('gh_portal_signin='))).toBe(false);
    } finally {
      await node.close();
    }
  });
});
