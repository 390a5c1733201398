import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { rolesForUser } from '../../src/directory/roles.service.js';
import type { Connection } from '../../src/connections/connection.entity.js';
import { TestBrowser } from '../support/browser.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { SamlTestIdp, type SamlUser } from '../support/saml-idp.js';
import { RecordingCompleter, startSsoServer, type SsoServer } from '../support/sso-app.js';
import {
  auditEvents,
  createSamlConnection,
  createTenantWithDomains,
  loginFootprint,
  spOf,
} from '../support/sso-factories.js';

interface IdpFixture extends SamlUser {
  idp: string;
  expected: {
    email: string;
    givenName: string | null;
    familyName: string | null;
    displayName: string | null;
    groups: string[];
  };
}

const fixture = (path: string) => JSON.parse(readFileSync(`fixtures/saml/${path}`, 'utf8')) as IdpFixture;

let t: TestDatabase;
let gh: SsoServer;
const completer = new RecordingCompleter();
let idp: SamlTestIdp;

beforeAll(async () => {
  t = await createTestDatabase();
  gh = await startSsoServer(t, { completer });
  idp = await SamlTestIdp.create('acme');
});
afterAll(async () => {
  await gh.close();
  await t.close();
});

/** A tenant of its own per test, so counts and audit trails are the test's alone. */
async function tenantWithSaml(domain: string, overrides: Parameters<typeof createSamlConnection>[3] = {}) {
  const tenantId = await createTenantWithDomains(t.db, `t-${randomUUID().slice(0, 8)}`, [domain]);
  const connection = await createSamlConnection(t.db, tenantId, idp, overrides);
  return { tenantId, connection };
}

/** The browser's way: email page → IdP → POST to the ACS. Returns the final answer and the login id. */
async function signIn(connection: Connection, email: string, user: SamlUser, answerWith = idp) {
  const browser = new TestBrowser();
  const loginId = randomUUID();
  const start = await browser.visit(
    `${gh.baseUrl}/login?login=${loginId}&email=${encodeURIComponent(email)}`,
    idp.ssoUrl,
  );
  if (!start.redirectedTo) throw new Error(`no redirect to the IdP: ${start.status} ${start.body}`);
  const sp = spOf(gh.baseUrl, connection);
  const answer = await answerWith.answer(start.redirectedTo, sp, user);
  const done = await browser.visit(sp.acsUrl, 'about:', {
    method: 'POST',
    form: { SAMLResponse: answer.samlResponse },
  });
  return { loginId, done, browser, answer };
}

describe('SAML sign-in at the tenant IdP', () => {
  it('sends a schema-valid AuthnRequest for this connection’s SP, binding it to the browser', async () => {
    const { connection } = await tenantWithSaml('request.test');
    const browser = new TestBrowser();
    const start = await browser.visit(
      `${gh.baseUrl}/login?login=${randomUUID()}&email=ann@request.test`,
      idp.ssoUrl,
    );
    expect(start.redirectedTo).toMatch(/^https:\/\/acme\.idp\.test\/sso\?SAMLRequest=/);
    const sp = spOf(gh.baseUrl, connection);
    const request = await idp.readAuthnRequest(start.redirectedTo ?? '', sp);
    expect(request).toMatchObject({ issuer: sp.entityId, acsUrl: sp.acsUrl, destination: idp.ssoUrl });
    expect(browser.cookie(new URL(gh.baseUrl).host, 'gatehouse_sso')).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });

  it('binds the login to the browser with a __Host-, Secure, SameSite=None cookie behind https', async () => {
    await tenantWithSaml('cookie.test');
    const https = await startSsoServer(t, {
      completer,
      env: { GATEHOUSE_BASE_URL: 'https://gatehouse.test' },
    });
    try {
      const res = await fetch(`${https.address}/login?login=${randomUUID()}&email=c%40cookie.test`, {
        redirect: 'manual',
      });
      expect(res.status).toBe(302);
      const cookie = res.headers.getSetCookie().find((c) => c.startsWith('__Host-gatehouse_sso=')) ?? '';
      expect(cookie).toMatch(
        /^__Host-gatehouse_sso=[A-Za-z0-9_-]{43}; Max-Age=\d+; Path=\/; Expires=[^;]+; HttpOnly; Secure; SameSite=None$/,
      );
    } finally {
      await https.close();
    }
  });

  it.each([
    ['okta/alice.json', 'okta.test'],
    ['entra/alice.json', 'entra.test'],
    ['google/alice.json', 'google.test'],
    ['google/bare.json', 'google-bare.test'],
  ])('provisions a %s person just in time and hands them to the app', async (path, domain) => {
    const f = fixture(path);
    const rewrite = (v: string) => v.replace('@acme.test', `@${domain}`);
    const user: SamlUser = {
      nameId: rewrite(f.nameId),
      nameIdFormat: f.nameIdFormat,
      attributes: Object.fromEntries(
        Object.entries(f.attributes ?? {}).map(([k, v]) => [
          k,
          Array.isArray(v) ? v.map(rewrite) : rewrite(v),
        ]),
      ),
    };
    const { tenantId, connection } = await tenantWithSaml(domain);
    const { loginId, done } = await signIn(connection, user.nameId, user);

    expect(done.status).toBe(200);
    expect(done.body).toBe(`completed ${loginId}`);
    const handed = completer.completed.find((c) => c.loginId === loginId);
    expect(handed?.result).toMatchObject({ tenantId, connectionId: connection.id });
    const [row] = await t.db.withTenant(tenantId, (em) =>
      em.query('SELECT * FROM users WHERE id = $1', [handed?.result.userId]),
    );
    expect(row).toMatchObject({
      user_name: rewrite(f.expected.email),
      email: rewrite(f.expected.email),
      email_verified: true,
      given_name: f.expected.givenName,
      family_name: f.expected.familyName,
      display_name: f.expected.displayName,
      status: 'active',
    });
    const groups = await t.db.withTenant(tenantId, (em) =>
      em.query<{ display_name: string; source: string }[]>(
        `SELECT g.display_name, g.source FROM groups g JOIN group_members m ON m.group_id = g.id
          WHERE m.user_id = $1 ORDER BY g.display_name`,
        [handed?.result.userId],
      ),
    );
    expect(groups).toEqual(
      f.expected.groups
        .map(rewrite)
        .sort()
        .map((g) => ({ display_name: g, source: 'idp' })),
    );
    expect(await loginFootprint(t.db, tenantId)).toMatchObject({ users: 1, identities: 1, sessions: 0 });
    const [audit] = await auditEvents(t.db, tenantId, 'login.succeeded');
    expect(audit).toMatchObject({ actor_type: 'user', target_id: handed?.result.userId });
    expect(audit?.after).toMatchObject({
      connection_id: connection.id,
      protocol: 'saml',
      user_created: true,
    });
  });

  it('recognises a returning person by (connection, NameID) and refreshes their profile and IdP groups', async () => {
    const { tenantId, connection } = await tenantWithSaml('returning.test');
    const first = await signIn(connection, 'rita@returning.test', {
      nameId: 'rita@returning.test',
      attributes: { firstName: 'Rita', lastName: 'Old', groups: ['Sales', 'Support'] },
    });
    const second = await signIn(connection, 'rita@returning.test', {
      nameId: 'rita@returning.test',
      attributes: { firstName: 'Rita', lastName: 'New', groups: ['Support'] },
    });
    const [a, b] = [first, second].map((s) => completer.completed.find((c) => c.loginId === s.loginId));
    expect(b?.result.userId).toBe(a?.result.userId);
    const [user] = await t.db.withTenant(tenantId, (em) =>
      em.query('SELECT family_name, version FROM users WHERE id = $1', [a?.result.userId]),
    );
    expect(user).toEqual({ family_name: 'New', version: 2 });
    const memberships = await t.db.withTenant(tenantId, (em) =>
      em.query(
        `SELECT g.display_name FROM groups g JOIN group_members m ON m.group_id = g.id WHERE m.user_id = $1`,
        [a?.result.userId],
      ),
    );
    expect(memberships).toEqual([{ display_name: 'Support' }]);
    expect(await loginFootprint(t.db, tenantId)).toMatchObject({ users: 1, identities: 1 });
  });

  it('links a SCIM-provisioned person by their verified email instead of creating a second user', async () => {
    const { tenantId, connection } = await tenantWithSaml('linked.test');
    const scimUserId = randomUUID();
    await t.db.withTenant(tenantId, (em) =>
      em.query(
        `INSERT INTO users (tenant_id, id, user_name, email, email_verified, external_id)
         VALUES ($1, $2, 'Lena@linked.test', 'lena@linked.test', true, 'okta-00u1')`,
        [tenantId, scimUserId],
      ),
    );
    const { loginId } = await signIn(connection, 'lena@linked.test', { nameId: 'lena@linked.test' });
    expect(completer.completed.find((c) => c.loginId === loginId)?.result.userId).toBe(scimUserId);
    expect(await loginFootprint(t.db, tenantId)).toMatchObject({ users: 1, identities: 1 });
    const [audit] = await auditEvents(t.db, tenantId, 'login.succeeded');
    expect(audit?.after).toMatchObject({ user_created: false, identity_linked: true });
  });

  it('maps IdP groups to roles through role mappings, and falls back to the default role', async () => {
    const { tenantId, connection } = await tenantWithSaml('roles.test', { defaultRole: 'viewer' });
    await t.db.withTenant(tenantId, (em) =>
      em.query(
        `INSERT INTO role_mappings (tenant_id, group_attribute, group_value, role)
         VALUES ($1, 'external_id', '8a1f0c7e-5b2d-4e3f-9c6a-1d7b2e4f8a90', 'admin'),
                ($1, 'display_name', 'engineering', 'developer')`,
        [tenantId],
      ),
    );
    const entra = await signIn(connection, 'mo@roles.test', {
      nameId: 'mo@roles.test',
      attributes: {
        'http://schemas.microsoft.com/ws/2008/06/identity/claims/groups': [
          '8a1f0c7e-5b2d-4e3f-9c6a-1d7b2e4f8a90',
        ],
      },
    });
    const okta = await signIn(connection, 'kim@roles.test', {
      nameId: 'kim@roles.test',
      attributes: { groups: ['Engineering', 'Unmapped'] },
    });
    const plain = await signIn(connection, 'pat@roles.test', { nameId: 'pat@roles.test' });
    const roles = async (loginId: string) => {
      const userId = completer.completed.find((c) => c.loginId === loginId)?.result.userId ?? '';
      return t.db.withTenant(tenantId, (em) => rolesForUser(em, userId, connection.defaultRole));
    };
    // Entra sends group object ids (mapped by external id); Okta sends names (display name, any case).
    expect(await roles(entra.loginId)).toEqual(['admin']);
    expect(await roles(okta.loginId)).toEqual(['developer']);
    expect(await roles(plain.loginId)).toEqual(['viewer']);
  });

  it('sends the AuthnRequest by HTTP-POST to an IdP that takes only POST', async () => {
    const { connection } = await tenantWithSaml('post.test');
    await t.db.withTenant(connection.tenantId, (em) =>
      em.query(`UPDATE connections SET saml_sso_binding = 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST'`),
    );
    const browser = new TestBrowser();
    const loginId = randomUUID();
    const page = await browser.visit(
      `${gh.baseUrl}/login?login=${loginId}&email=pia%40post.test`,
      idp.ssoUrl,
    );
    expect(page.status).toBe(200);
    // Submitted by the shared same-origin script (issue 15: no inline script; CSP script-src 'self').
    expect(page.body).toContain(`<form method="post" action="${idp.ssoUrl}" data-auto-submit>`);
    expect(page.body).toMatch(/<script src="\/assets\/gatehouse-[0-9a-f]{12}\.js" defer><\/script>/);
    expect(page.body).not.toContain('<script>');
    const samlRequest = /name="SAMLRequest" value="([^"]+)"/.exec(page.body)?.[1] ?? '';
    const sp = spOf(gh.baseUrl, connection);
    const answer = await idp.answerPosted(samlRequest, sp, { nameId: 'pia@post.test' });
    expect(answer.request).toEqual({ issuer: sp.entityId, acsUrl: sp.acsUrl });
    const done = await browser.visit(sp.acsUrl, 'about:', {
      method: 'POST',
      form: { SAMLResponse: answer.samlResponse },
    });
    expect(done.body).toBe(`completed ${loginId}`);
  });

  it('accepts a response signed with the second certificate of a rotation', async () => {
    const next = await SamlTestIdp.rotated(idp);
    const tenantId = await createTenantWithDomains(t.db, `t-${randomUUID().slice(0, 8)}`, ['rotation.test']);
    const connection = await createSamlConnection(t.db, tenantId, [idp, next]);
    const { loginId, done } = await signIn(
      connection,
      'ron@rotation.test',
      { nameId: 'ron@rotation.test' },
      next,
    );
    expect(done.body).toBe(`completed ${loginId}`);
  });
});
