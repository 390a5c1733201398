import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Connection } from '../../src/connections/connection.entity.js';
import { TestBrowser } from '../support/browser.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import {
  assertionWrappedInExtensions,
  assertionWrappedInSignatureObject,
  assertionWrappedXsw3,
  assertionWrappedXsw4,
  nameIdTampered,
  nameIdWithInsertedNode,
  resignedWithInjectedCertificate,
  responseWrappedXsw1,
  secondUnsignedAssertion,
  toBase64,
  type Wrapping,
} from '../support/saml-attacks.js';
import { SamlTestIdp, type ResponseOverrides, type SamlAnswer } from '../support/saml-idp.js';
import { RecordingCompleter, startSsoServer, type SsoServer } from '../support/sso-app.js';
import {
  auditEvents,
  createSamlConnection,
  createTenantWithDomains,
  loginFootprint,
  spOf,
} from '../support/sso-factories.js';

/**
 * The ACS against forged, altered and replayed SAML Responses. Every attack is
 * built for real (a genuine response of the tenant's IdP, then rewrapped,
 * edited or re-signed), posted by a browser that started a genuine login, and
 * must end on an error page with its reason code, with no user, identity or
 * session created and a login.failed audit event.
 */
let t: TestDatabase;
let gh: SsoServer;
const completer = new RecordingCompleter();
let idp: SamlTestIdp;
let attacker: SamlTestIdp;
let tenantId: string;
let connection: Connection;

const VICTIM = 'ceo@acme.test';
const ATTACKER = 'mallory@acme.test';

beforeAll(async () => {
  t = await createTestDatabase();
  gh = await startSsoServer(t, { completer });
  idp = await SamlTestIdp.create('acme');
  attacker = await SamlTestIdp.create('attacker');
  tenantId = await createTenantWithDomains(t.db, 'acme', ['acme.test']);
  connection = await createSamlConnection(t.db, tenantId, idp);
});
afterAll(async () => {
  await gh.close();
  await t.close();
});

interface Started {
  browser: TestBrowser;
  loginId: string;
  redirectUrl: string;
}

async function startLogin(email = ATTACKER): Promise<Started> {
  const browser = new TestBrowser();
  const loginId = randomUUID();
  const visit = await browser.visit(
    `${gh.baseUrl}/login?login=${loginId}&email=${encodeURIComponent(email)}`,
    idp.ssoUrl,
  );
  if (!visit.redirectedTo) throw new Error(`no redirect to the IdP: ${visit.status} ${visit.body}`);
  return { browser, loginId, redirectUrl: visit.redirectedTo };
}

function post(browser: TestBrowser, samlResponse: string) {
  return browser.visit(spOf(gh.baseUrl, connection).acsUrl, 'about:', {
    method: 'POST',
    form: { SAMLResponse: samlResponse },
  });
}

async function genuine(
  started: Started,
  overrides: ResponseOverrides = {},
  nameId = ATTACKER,
): Promise<SamlAnswer> {
  return idp.answer(started.redirectUrl, spOf(gh.baseUrl, connection), { nameId }, overrides);
}

async function expectRefused(visit: { status: number; body: string }, reason: string, loginId?: string) {
  expect(visit.body).toContain(`<code>${reason}</code>`);
  expect(visit.status).toBeGreaterThanOrEqual(400);
  expect(visit.body).not.toMatch(/at \w+ \(|node-saml|xml-crypto/);
  if (loginId) expect(completer.completed.some((c) => c.loginId === loginId)).toBe(false);
  expect(await loginFootprint(t.db, tenantId)).toMatchObject({ users: 0, identities: 0, sessions: 0 });
  const failures = await auditEvents(t.db, tenantId, 'login.failed');
  expect(failures.at(-1)?.after).toEqual({ reason, connection_id: connection.id });
}

describe('SAML ACS attack suite', () => {
  const wrappings: [string, Wrapping, string, ResponseOverrides][] = [
    [
      'assertion wrapping XSW3 (evil sibling before the signed assertion)',
      assertionWrappedXsw3,
      'saml_assertion_count',
      {},
    ],
    [
      'assertion wrapping XSW4 (signed assertion inside the evil one)',
      assertionWrappedXsw4,
      'saml_assertion_count',
      {},
    ],
    [
      'assertion wrapping XSW5/6 (signed assertion in ds:Object)',
      assertionWrappedInSignatureObject,
      'saml_assertion_count',
      {},
    ],
    [
      'assertion wrapping XSW7/8 (signed assertion in samlp:Extensions)',
      assertionWrappedInExtensions,
      'saml_assertion_count',
      {},
    ],
    [
      'response wrapping XSW1 (signed Response inside the evil Response signature)',
      responseWrappedXsw1,
      'saml_assertion_count',
      { signResponse: true },
    ],
    [
      'a second, unsigned assertion after the signed one',
      secondUnsignedAssertion,
      'saml_assertion_count',
      {},
    ],
    ['a NameID edited after signing', nameIdTampered, 'saml_signature_invalid', {}],
    [
      'a NameID edited in a signed Response (both signatures checked)',
      nameIdTampered,
      'saml_signature_invalid',
      { signResponse: true },
    ],
  ];

  it.each(wrappings)('refuses %s', async (_name, wrap, reason, overrides) => {
    const started = await startLogin();
    const answer = await genuine(started, overrides);
    const visit = await post(started.browser, toBase64(wrap(answer.xml, VICTIM)));
    await expectRefused(visit, reason, started.loginId);
  });

  it.each([['comment' as const], ['pi' as const]])(
    'refuses a %s injected into the signed NameID (its signature still verifies)',
    async (node) => {
      const started = await startLogin();
      const answer = await genuine(started, {}, `${VICTIM}.evil.test`);
      const visit = await post(started.browser, toBase64(nameIdWithInsertedNode(answer.xml, VICTIM, node)));
      await expectRefused(visit, 'saml_xml_comment_injection', started.loginId);
    },
  );

  it('refuses an assertion re-signed with an attacker key whose certificate is injected in KeyInfo', async () => {
    const started = await startLogin();
    const answer = await genuine(started);
    const forged = resignedWithInjectedCertificate(answer.xml, VICTIM, attacker);
    await expectRefused(
      await post(started.browser, toBase64(forged)),
      'saml_signature_invalid',
      started.loginId,
    );
  });

  it('refuses a response signed by another tenant’s IdP key', async () => {
    const started = await startLogin();
    // Globex's IdP answers Acme's request, claiming Acme's IdP entity id.
    const globexIdp = await SamlTestIdp.rotated(idp);
    const answer = await globexIdp.answer(started.redirectUrl, spOf(gh.baseUrl, connection), {
      nameId: VICTIM,
    });
    await expectRefused(
      await post(started.browser, answer.samlResponse),
      'saml_signature_invalid',
      started.loginId,
    );
  });

  it.each<[string, ResponseOverrides, string]>([
    ['expired', { shiftSeconds: -3600 }, 'saml_assertion_expired'],
    ['not yet valid', { shiftSeconds: 3600 }, 'saml_assertion_not_yet_valid'],
    [
      'for another SP (audience)',
      { audience: 'https://gatehouse.test/saml/another' },
      'saml_audience_mismatch',
    ],
    ['for another ACS (recipient)', { recipient: 'https://evil.test/acs' }, 'saml_recipient_mismatch'],
    ['sent to another destination', { destination: 'https://evil.test/acs' }, 'saml_destination_mismatch'],
    [
      'issued by another IdP (assertion issuer)',
      { assertionIssuer: 'https://evil.test/idp' },
      'saml_issuer_mismatch',
    ],
    [
      'issued by another IdP (response issuer)',
      { responseIssuer: 'https://evil.test/idp' },
      'saml_issuer_mismatch',
    ],
    [
      'confirmed by holder-of-key, not bearer',
      { subjectConfirmationMethod: 'urn:oasis:names:tc:SAML:2.0:cm:holder-of-key' },
      'saml_subject_confirmation_invalid',
    ],
    [
      'answering a request Gatehouse never sent',
      { inResponseTo: '_never-sent' },
      'saml_in_response_to_invalid',
    ],
    ['signed with SHA-1', { sha1: true }, 'saml_signature_algorithm_weak'],
  ])('refuses an assertion %s', async (_name, overrides, reason) => {
    const started = await startLogin();
    const answer = await genuine(started, overrides);
    await expectRefused(await post(started.browser, answer.samlResponse), reason, started.loginId);
  });

  it('refuses an unsolicited (IdP-initiated) response where the connection does not allow it', async () => {
    const answer = await idp.unsolicited(spOf(gh.baseUrl, connection), { nameId: ATTACKER });
    await expectRefused(await post(new TestBrowser(), answer.samlResponse), 'saml_unsolicited_response');
  });

  it.each([['response.doctype-xxe.xml'], ['response.billion-laughs.xml']])(
    'refuses %s before parsing it',
    async (file) => {
      const xml = readFileSync(`fixtures/saml/attacks/${file}`, 'utf8');
      const started = await startLogin();
      await expectRefused(await post(started.browser, toBase64(xml)), 'saml_dtd_forbidden', started.loginId);
    },
  );

  it('refuses garbage and a missing SAMLResponse with a page, not a stack trace', async () => {
    const started = await startLogin();
    await expectRefused(await post(started.browser, 'not//base64!!'), 'saml_response_malformed');
    await expectRefused(await post(started.browser, toBase64('<a><b></a>')), 'saml_response_malformed');
    const empty = await started.browser.visit(spOf(gh.baseUrl, connection).acsUrl, 'about:', {
      method: 'POST',
      form: {},
    });
    await expectRefused(empty, 'saml_response_missing');
  });
});

describe('SAML ACS: one answer, one browser, one use', () => {
  it('refuses the same response posted twice (the assertion is spent by the first)', async () => {
    const started = await startLogin('first@acme.test');
    const answer = await genuine(started, {}, 'first@acme.test');
    const ok = await post(started.browser, answer.samlResponse);
    expect(ok.body).toBe(`completed ${started.loginId}`);
    const again = await post(started.browser, answer.samlResponse);
    expect(again.body).toContain('<code>saml_assertion_replayed</code>');
    expect(await loginFootprint(t.db, tenantId)).toMatchObject({ users: 1, identities: 1 });
    await t.db.withTenant(tenantId, (em) => em.query('DELETE FROM users'));
  });

  it('refuses a response posted from another browser, and spends it: the assertion is never redeemable again', async () => {
    // docs/security.md: every assertion whose signature verified enters the replay cache, accepted or not,
    // so a captured answer refused once (here: wrong browser) cannot be redeemed later by anyone.
    const started = await startLogin('second@acme.test');
    const answer = await genuine(started, {}, 'second@acme.test');
    const elsewhere = await post(new TestBrowser(), answer.samlResponse);
    expect(elsewhere.body).toContain('<code>saml_in_response_to_invalid</code>');
    const here = await post(started.browser, answer.samlResponse);
    expect(here.body).toContain('<code>saml_assertion_replayed</code>');
    expect(await loginFootprint(t.db, tenantId)).toMatchObject({ users: 0, identities: 0, sessions: 0 });
  });
});

describe('SHA-1 only where a connection explicitly allows it', () => {
  it('accepts a SHA-1 signed response for a connection with saml_allow_sha1', async () => {
    const legacyTenant = await createTenantWithDomains(t.db, 'legacy', ['legacy.test']);
    const legacy = await createSamlConnection(t.db, legacyTenant, idp, { samlAllowSha1: true });
    const browser = new TestBrowser();
    const loginId = randomUUID();
    const start = await browser.visit(
      `${gh.baseUrl}/login?login=${loginId}&email=old%40legacy.test`,
      idp.ssoUrl,
    );
    const sp = spOf(gh.baseUrl, legacy);
    const answer = await idp.answer(
      start.redirectedTo ?? '',
      sp,
      { nameId: 'old@legacy.test' },
      { sha1: true },
    );
    expect(answer.xml).toContain('http://www.w3.org/2000/09/xmldsig#rsa-sha1');
    const done = await browser.visit(sp.acsUrl, 'about:', {
      method: 'POST',
      form: { SAMLResponse: answer.samlResponse },
    });
    expect(done.body).toBe(`completed ${loginId}`);
  });
});

describe('IdP-initiated SAML where the connection allows it', () => {
  it('accepts an unsolicited assertion once, on any node: the replay cache lives in Postgres', async () => {
    const otherTenant = await createTenantWithDomains(t.db, 'initech', ['initech.test']);
    const open = await createSamlConnection(t.db, otherTenant, idp, { samlAllowIdpInitiated: true });
    // A second node behind the same public URL, with its own pool on the same database.
    const node2 = await startSsoServer(t, {
      completer,
      secrets: gh.secrets,
      env: { GATEHOUSE_BASE_URL: gh.baseUrl },
    });
    try {
      const sp = spOf(gh.baseUrl, open);
      const answer = await idp.unsolicited(sp, { nameId: 'ida@initech.test' });
      const form = { SAMLResponse: answer.samlResponse };
      const first = await new TestBrowser().visit(sp.acsUrl, 'about:', { method: 'POST', form });
      expect(first.body).toBe('completed unsolicited');
      const atNode2 = sp.acsUrl.replace(gh.baseUrl, node2.address);
      const replay = await new TestBrowser().visit(atNode2, 'about:', { method: 'POST', form });
      expect(replay.body).toContain('<code>saml_assertion_replayed</code>');
      expect(await loginFootprint(t.db, otherTenant)).toMatchObject({ users: 1, identities: 1 });
    } finally {
      await node2.close();
    }
  });
});
