import { randomUUID } from 'node:crypto';
import type { Connection } from '../../src/connections/connection.entity.js';
import { TestBrowser } from '../support/browser.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { SamlTestIdp } from '../support/saml-idp.js';
import { RecordingCompleter, startSsoServer, type SsoServer } from '../support/sso-app.js';
import {
  auditEvents,
  createSamlConnection,
  createTenantWithDomains,
  loginFootprint,
  spOf,
} from '../support/sso-factories.js';

/**
 * Tenant isolation at sign-in: one tenant's IdP can never produce a person of
 * another tenant, and one tenant's login state can never be finished at
 * another tenant's ACS.
 */
let t: TestDatabase;
let gh: SsoServer;
const completer = new RecordingCompleter();
let acmeIdp: SamlTestIdp;
let globexIdp: SamlTestIdp;
let acmeId: string;
let globexId: string;
let acme: Connection;
let globex: Connection;

beforeAll(async () => {
  t = await createTestDatabase();
  gh = await startSsoServer(t, { completer });
  acmeIdp = await SamlTestIdp.create('acme');
  globexIdp = await SamlTestIdp.create('globex');
  acmeId = await createTenantWithDomains(t.db, 'acme', ['acme.test']);
  globexId = await createTenantWithDomains(t.db, 'globex', ['globex.test']);
  acme = await createSamlConnection(t.db, acmeId, acmeIdp);
  // Globex even lets its IdP vouch for addresses outside its own domains.
  globex = await createSamlConnection(t.db, globexId, globexIdp, { allowUnverifiedEmail: true });
});
afterAll(async () => {
  await gh.close();
  await t.close();
});

/** A login started by discovery on `email`, stopped at the IdP it was sent to. */
async function startAt(email: string, idp: SamlTestIdp) {
  const browser = new TestBrowser();
  const loginId = randomUUID();
  const visit = await browser.visit(
    `${gh.baseUrl}/login?login=${loginId}&email=${encodeURIComponent(email)}`,
    idp.ssoUrl,
  );
  if (!visit.redirectedTo) throw new Error(`no redirect to the IdP: ${visit.status} ${visit.body}`);
  return { browser, loginId, redirectUrl: visit.redirectedTo };
}

describe('cross-tenant sign-in', () => {
  it('refuses Acme’s user asserted by Globex’s IdP, even though Globex allows unverified emails', async () => {
    const started = await startAt('someone@globex.test', globexIdp);
    const sp = spOf(gh.baseUrl, globex);
    const answer = await globexIdp.answer(started.redirectUrl, sp, { nameId: 'alice@acme.test' });
    const visit = await started.browser.visit(sp.acsUrl, 'about:', {
      method: 'POST',
      form: { SAMLResponse: answer.samlResponse },
    });
    expect(visit.body).toContain('<code>email_domain_of_other_tenant</code>');
    expect(completer.completed.some((c) => c.loginId === started.loginId)).toBe(false);
    for (const tenant of [acmeId, globexId])
      expect(await loginFootprint(t.db, tenant)).toMatchObject({ users: 0, identities: 0, sessions: 0 });
    const [failure] = await auditEvents(t.db, globexId, 'login.failed');
    expect(failure?.after).toEqual({ reason: 'email_domain_of_other_tenant', connection_id: globex.id });
  });

  it('refuses Globex’s IdP answer posted to Acme’s ACS: not signed by Acme’s IdP, not for Acme’s SP', async () => {
    const started = await startAt('alice@acme.test', acmeIdp);
    // Globex's IdP answers Acme's request id, for Acme's SP, with its own key.
    const forged = await globexIdp.answer(
      started.redirectUrl.replace(acmeIdp.ssoUrl, globexIdp.ssoUrl),
      spOf(gh.baseUrl, acme),
      { nameId: 'alice@acme.test' },
      { responseIssuer: acmeIdp.entityId, assertionIssuer: acmeIdp.entityId },
    );
    const visit = await started.browser.visit(spOf(gh.baseUrl, acme).acsUrl, 'about:', {
      method: 'POST',
      form: { SAMLResponse: forged.samlResponse },
    });
    expect(visit.body).toContain('<code>saml_signature_invalid</code>');
    expect(await loginFootprint(t.db, acmeId)).toMatchObject({ users: 0 });
  });

  it('refuses an answer to Acme’s AuthnRequest delivered at Globex’s ACS', async () => {
    const started = await startAt('alice@acme.test', acmeIdp);
    // A genuine Globex response, but answering Acme's pending request id.
    const globexSp = spOf(gh.baseUrl, globex);
    const requestId = (await acmeIdp.readAuthnRequest(started.redirectUrl, spOf(gh.baseUrl, acme))).id;
    const answer = await globexIdp.answer(
      started.redirectUrl.replace(acmeIdp.ssoUrl, globexIdp.ssoUrl),
      globexSp,
      {
        nameId: 'gina@globex.test',
      },
      { inResponseTo: requestId },
    );
    const visit = await started.browser.visit(globexSp.acsUrl, 'about:', {
      method: 'POST',
      form: { SAMLResponse: answer.samlResponse },
    });
    expect(visit.body).toContain('<code>saml_in_response_to_invalid</code>');
    expect(await loginFootprint(t.db, globexId)).toMatchObject({ users: 0 });
  });

  it('never shows one tenant’s connections to a person of another', async () => {
    const res = await new TestBrowser().visit(
      `${gh.baseUrl}/login?login=${randomUUID()}&email=alice%40acme.test&connection=${globex.id}`,
      'https://never.test/',
    );
    expect(res.body).toContain('<code>discovery_connection_unknown</code>');
    expect(res.trail.some((u) => u.startsWith(globexIdp.ssoUrl))).toBe(false);
  });
});
