import { randomUUID } from 'node:crypto';
import type { Connection } from '../../src/connections/connection.entity.js';
import { TestBrowser } from '../support/browser.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { SamlTestIdp, type SamlUser } from '../support/saml-idp.js';
import { RecordingCompleter, startSsoServer, type SsoServer } from '../support/sso-app.js';
import {
  createSamlConnection,
  createTenantWithDomains,
  loginFootprint,
  spOf,
} from '../support/sso-factories.js';

/**
 * Issue 16: what a SAML login is keyed by, and which attribute names fill the
 * profile by default. Real samlify-signed answers through the real ACS:
 * - each IdP's attribute naming style (Okta, Entra ID, AD FS, Shibboleth /
 *   SimpleSAMLphp urn:oid and LDAP names, Google Workspace) yields given and
 *   family name, display name, email and groups without a mapping;
 * - a transient NameID is never stored as an identity: the persistent
 *   identifier attribute keys the login, else a verified-domain email, else
 *   the login is refused with saml_nameid_transient.
 */
const TRANSIENT = 'urn:oasis:names:tc:SAML:2.0:nameid-format:transient';
const PERSISTENT = 'urn:oasis:names:tc:SAML:2.0:nameid-format:persistent';
const WS = 'http://schemas.xmlsoap.org/ws/2005/05/identity/claims';

let t: TestDatabase;
let gh: SsoServer;
const completer = new RecordingCompleter();
let idp: SamlTestIdp;
let tenantId: string;
let connection: Connection;
const DOMAIN = 'federated.test';

beforeAll(async () => {
  t = await createTestDatabase();
  gh = await startSsoServer(t, { completer });
  idp = await SamlTestIdp.create('nameid');
  tenantId = await createTenantWithDomains(t.db, 'federated', [DOMAIN]);
  connection = await createSamlConnection(t.db, tenantId, idp);
});
afterAll(async () => {
  await gh.close();
  await t.close();
});
afterEach(async () => {
  await t.db.withTenant(tenantId, (em) => em.query('DELETE FROM users'));
  await t.db.withTenant(tenantId, (em) => em.query('DELETE FROM groups'));
  await t.db.withTenant(tenantId, (em) =>
    em.query(`UPDATE connections SET attribute_mapping = '{}' WHERE id = $1`, [connection.id]),
  );
});

async function signIn(user: SamlUser): Promise<{ loginId: string; body: string }> {
  const browser = new TestBrowser();
  const loginId = randomUUID();
  const visit = await browser.visit(
    `${gh.baseUrl}/login?login=${loginId}&email=${encodeURIComponent(`someone@${DOMAIN}`)}`,
    idp.ssoUrl,
  );
  if (!visit.redirectedTo) throw new Error(`no redirect to the IdP: ${visit.status} ${visit.body}`);
  const answer = await idp.answer(visit.redirectedTo, spOf(gh.baseUrl, connection), user);
  const done = await browser.visit(spOf(gh.baseUrl, connection).acsUrl, 'about:', {
    method: 'POST',
    form: { SAMLResponse: answer.samlResponse },
  });
  return { loginId, body: done.body };
}

interface Row {
  email: string;
  given_name: string | null;
  family_name: string | null;
  display_name: string | null;
}

async function users(): Promise<Row[]> {
  return t.db.withTenant(tenantId, (em) =>
    em.query<Row[]>('SELECT email, given_name, family_name, display_name FROM users ORDER BY email'),
  );
}

async function identitySubjects(): Promise<string[]> {
  const rows = await t.db.withTenant(tenantId, (em) =>
    em.query<{ subject: string }[]>('SELECT subject FROM identities ORDER BY subject'),
  );
  return rows.map((r) => r.subject);
}

async function groupNames(): Promise<string[]> {
  const rows = await t.db.withTenant(tenantId, (em) =>
    em.query<{ display_name: string }[]>('SELECT display_name FROM groups ORDER BY display_name'),
  );
  return rows.map((r) => r.display_name);
}

interface IdpStyle {
  style: string;
  attributes: Record<string, string | string[]>;
  expected: Omit<Row, 'email'>;
  groups?: string[];
}

describe('default attribute names of each IdP style', () => {
  it.each<IdpStyle>([
    {
      style: 'Okta',
      attributes: { email: `ann@${DOMAIN}`, firstName: 'Ann', lastName: 'Okta', groups: ['eng'] },
      expected: { given_name: 'Ann', family_name: 'Okta', display_name: 'Ann Okta' },
    },
    {
      style: 'Microsoft Entra ID',
      attributes: {
        [`${WS}/emailaddress`]: `ann@${DOMAIN}`,
        [`${WS}/givenname`]: 'Ann',
        [`${WS}/surname`]: 'Entra',
        [`${WS}/name`]: `ann@${DOMAIN}`,
        'http://schemas.microsoft.com/identity/claims/displayname': 'Ann from Entra',
        'http://schemas.microsoft.com/ws/2008/06/identity/claims/groups': ['eng'],
      },
      expected: { given_name: 'Ann', family_name: 'Entra', display_name: 'Ann from Entra' },
    },
    {
      style: 'AD FS',
      attributes: {
        [`${WS}/emailaddress`]: `ann@${DOMAIN}`,
        [`${WS}/givenname`]: 'Ann',
        [`${WS}/surname`]: 'Adfs',
        'http://schemas.xmlsoap.org/claims/Group': ['eng'],
      },
      expected: { given_name: 'Ann', family_name: 'Adfs', display_name: 'Ann Adfs' },
      // Not read by default (existing AD FS connections keep their roles): map `groups` to it.
      groups: [],
    },
    {
      style: 'Shibboleth / SimpleSAMLphp (urn:oid names)',
      attributes: {
        'urn:oid:0.9.2342.19200300.100.1.3': `ann@${DOMAIN}`,
        'urn:oid:2.5.4.42': 'Ann',
        'urn:oid:2.5.4.4': 'Shibboleth',
        'urn:oid:2.16.840.1.113730.3.1.241': 'Ann S.',
        'urn:oid:1.3.6.1.4.1.5923.1.5.1.1': ['eng'],
      },
      expected: { given_name: 'Ann', family_name: 'Shibboleth', display_name: 'Ann S.' },
    },
    {
      style: 'SimpleSAMLphp (LDAP names)',
      attributes: {
        mail: `ann@${DOMAIN}`,
        givenName: 'Ann',
        sn: 'Simple',
        cn: 'Ann Simple-CN',
        memberOf: ['eng'],
      },
      expected: { given_name: 'Ann', family_name: 'Simple', display_name: 'Ann Simple-CN' },
    },
    {
      style: 'Google Workspace (NameID email, first_name / last_name)',
      attributes: { first_name: 'Ann', last_name: 'Google', groups: ['eng'] },
      expected: { given_name: 'Ann', family_name: 'Google', display_name: 'Ann Google' },
    },
  ])(
    'fills the profile from $style attributes without a mapping',
    async ({ attributes, expected, groups }) => {
      const { loginId, body } = await signIn({ nameId: `ann@${DOMAIN}`, attributes });
      expect(body).toBe(`completed ${loginId}`);
      expect(await users()).toEqual([{ email: `ann@${DOMAIN}`, ...expected }]);
      expect(await groupNames()).toEqual(groups ?? ['eng']);
    },
  );
});

describe('a transient NameID is never an identity', () => {
  it('keys the login by the SAML subject-id attribute and finds the same person next time', async () => {
    const attributes = {
      'urn:oasis:names:tc:SAML:attribute:subject-id': `u1234@${DOMAIN}`,
      mail: `tess@${DOMAIN}`,
      givenName: 'Tess',
    };
    const first = await signIn({ nameId: `_t${randomUUID()}`, nameIdFormat: TRANSIENT, attributes });
    expect(first.body).toBe(`completed ${first.loginId}`);
    const second = await signIn({ nameId: `_t${randomUUID()}`, nameIdFormat: TRANSIENT, attributes });
    expect(second.body).toBe(`completed ${second.loginId}`);
    expect(await identitySubjects()).toEqual([`u1234@${DOMAIN}`]);
    const ids = completer.completed
      .filter((c) => c.loginId === first.loginId || c.loginId === second.loginId)
      .map((c) => c.result.userId);
    expect(new Set(ids).size).toBe(1);
  });

  it('uses the connection’s attribute_mapping.subject over the standard identifiers', async () => {
    await t.db.withTenant(tenantId, (em) =>
      em.query(`UPDATE connections SET attribute_mapping = $2 WHERE id = $1`, [
        connection.id,
        JSON.stringify({ subject: 'employeeNumber' }),
      ]),
    );
    const { loginId, body } = await signIn({
      nameId: `_t${randomUUID()}`,
      nameIdFormat: TRANSIENT,
      attributes: {
        employeeNumber: 'E-77',
        'urn:oasis:names:tc:SAML:attribute:subject-id': `other@${DOMAIN}`,
        mail: `emp@${DOMAIN}`,
      },
    });
    expect(body).toBe(`completed ${loginId}`);
    expect(await identitySubjects()).toEqual(['E-77']);
  });

  it('matches by a verified-domain email when no identifier attribute is sent, storing no identity', async () => {
    const user = { nameIdFormat: TRANSIENT, attributes: { mail: `vera@${DOMAIN}`, sn: 'Verified' } };
    const first = await signIn({ nameId: `_t${randomUUID()}`, ...user });
    const second = await signIn({ nameId: `_t${randomUUID()}`, ...user });
    expect([first.body, second.body]).toEqual([`completed ${first.loginId}`, `completed ${second.loginId}`]);
    expect(await identitySubjects()).toEqual([]);
    expect(await users()).toEqual([
      { email: `vera@${DOMAIN}`, given_name: null, family_name: 'Verified', display_name: 'Verified' },
    ]);
  });

  it('never reads a transient NameID as the email', async () => {
    const { body } = await signIn({ nameId: `tricky@${DOMAIN}`, nameIdFormat: TRANSIENT });
    expect(body).toContain('<code>saml_nameid_transient</code>');
    expect(await loginFootprint(t.db, tenantId)).toMatchObject({ users: 0, identities: 0, sessions: 0 });
  });

  it('refuses an email outside the verified domains (it could be anyone’s), writing nothing', async () => {
    await t.db.withTenant(tenantId, (em) =>
      em.query('UPDATE connections SET allow_unverified_email = true WHERE id = $1', [connection.id]),
    );
    try {
      const { body } = await signIn({
        nameId: `_t${randomUUID()}`,
        nameIdFormat: TRANSIENT,
        attributes: { mail: 'stranger@elsewhere.test' },
      });
      expect(body).toContain('<code>saml_nameid_transient</code>');
      expect(await loginFootprint(t.db, tenantId)).toMatchObject({ users: 0, identities: 0, sessions: 0 });
    } finally {
      await t.db.withTenant(tenantId, (em) =>
        em.query('UPDATE connections SET allow_unverified_email = false WHERE id = $1', [connection.id]),
      );
    }
  });

  it('refuses a multi-valued identifier attribute rather than picking one', async () => {
    const { body } = await signIn({
      nameId: `_t${randomUUID()}`,
      nameIdFormat: TRANSIENT,
      attributes: { 'urn:oasis:names:tc:SAML:attribute:subject-id': ['a@x.test', 'b@x.test'] },
    });
    expect(body).toContain('<code>saml_nameid_transient</code>');
    expect(await loginFootprint(t.db, tenantId)).toMatchObject({ users: 0, identities: 0 });
  });

  it('keeps a persistent NameID as the identity, as before', async () => {
    const { loginId, body } = await signIn({
      nameId: 'opaque-persistent-42',
      nameIdFormat: PERSISTENT,
      attributes: { mail: `pat@${DOMAIN}`, 'urn:oasis:names:tc:SAML:attribute:subject-id': 'ignored' },
    });
    expect(body).toBe(`completed ${loginId}`);
    expect(await identitySubjects()).toEqual(['opaque-persistent-42']);
  });
});
