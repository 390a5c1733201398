import { randomUUID } from 'node:crypto';
import type { Connection } from '../../src/connections/connection.entity.js';
import { TestBrowser } from '../support/browser.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { responseWrappedXsw1, toBase64 } from '../support/saml-attacks.js';
import { SamlTestIdp } from '../support/saml-idp.js';
import { RecordingCompleter, startSsoServer, type SsoServer } from '../support/sso-app.js';
import {
  createSamlConnection,
  createTenantWithDomains,
  loginFootprint,
  spOf,
} from '../support/sso-factories.js';

/**
 * docs/security.md, "signed bytes only": whether an answer is solicited, who
 * signs in and which request is answered come from the bytes a verified
 * signature covers; the unsigned envelope can only add refusals. Regression
 * tests for issue 8's defects 1 (an unsigned Response carrying the attacker's
 * InResponseTo around a victim's signed IdP-initiated assertion) and 3 (XML
 * nested tens of thousands deep), and for the Response-signed connections.
 */
let t: TestDatabase;
let gh: SsoServer;
const completer = new RecordingCompleter();
let idp: SamlTestIdp;

interface Tenant {
  id: string;
  domain: string;
  connection: Connection;
}
let closed: Tenant; // IdP-initiated login off (the default)
let open: Tenant; // IdP-initiated login on
let responseOnly: Tenant; // samlSignedElement 'response'
let bothSigned: Tenant; // samlSignedElement 'both'

async function tenant(name: string, o: Parameters<typeof createSamlConnection>[3] = {}): Promise<Tenant> {
  const domain = `${name}.test`;
  const id = await createTenantWithDomains(t.db, name, [domain]);
  return { id, domain, connection: await createSamlConnection(t.db, id, idp, o) };
}

beforeAll(async () => {
  t = await createTestDatabase();
  gh = await startSsoServer(t, { completer });
  idp = await SamlTestIdp.create('signedbytes');
  closed = await tenant('closed');
  open = await tenant('open', { samlAllowIdpInitiated: true });
  responseOnly = await tenant('responseonly', { samlSignedElement: 'response' });
  bothSigned = await tenant('bothsigned', { samlSignedElement: 'both' });
});
afterAll(async () => {
  await gh.close();
  await t.close();
});

async function startLogin(at: Tenant, user: string) {
  const browser = new TestBrowser();
  const loginId = randomUUID();
  const visit = await browser.visit(
    `${gh.baseUrl}/login?login=${loginId}&email=${encodeURIComponent(`${user}@${at.domain}`)}`,
    idp.ssoUrl,
  );
  if (!visit.redirectedTo) throw new Error(`no redirect to the IdP: ${visit.status} ${visit.body}`);
  const request = await idp.readAuthnRequest(visit.redirectedTo, spOf(gh.baseUrl, at.connection));
  return { browser, loginId, redirectUrl: visit.redirectedTo, requestId: request.id };
}

function post(browser: TestBrowser, at: Tenant, samlResponse: string) {
  return browser.visit(spOf(gh.baseUrl, at.connection).acsUrl, 'about:', {
    method: 'POST',
    form: { SAMLResponse: samlResponse },
  });
}

async function expectRefused(visit: { status: number; body: string }, at: Tenant, reason: string) {
  expect(visit.body).toContain(`<code>${reason}</code>`);
  expect(visit.status).toBeGreaterThanOrEqual(400);
  expect(await loginFootprint(t.db, at.id)).toMatchObject({ users: 0, identities: 0, sessions: 0 });
}

/** The victim's genuine, signed IdP-initiated answer, re-enveloped unsigned with the attacker's InResponseTo. */
async function victimAssertionInAttackersEnvelope(at: Tenant, attackersRequestId: string) {
  const victim = await idp.unsolicited(spOf(gh.baseUrl, at.connection), { nameId: `ceo@${at.domain}` });
  expect(victim.xml).not.toMatch(/InResponseTo=/);
  const forged = victim.xml.replace(
    /<samlp:Response /,
    `<samlp:Response InResponseTo="${attackersRequestId}" `,
  );
  expect(forged).toContain(`InResponseTo="${attackersRequestId}"`);
  return { forged: toBase64(forged), victim };
}

async function assertionRemembered(at: Tenant, xml: string): Promise<boolean> {
  const assertionId = /<saml:Assertion[^>]* ID="([^"]+)"/.exec(xml)?.[1];
  expect(assertionId).toBeDefined();
  const rows = await t.db.withTenant(at.id, (em) =>
    em.query<unknown[]>('SELECT 1 FROM saml_assertion_ids WHERE assertion_id = $1', [assertionId]),
  );
  return rows.length === 1;
}

describe('solicited is read from the signed SubjectConfirmationData, never from the envelope', () => {
  it.each([
    ['off', () => closed],
    ['on', () => open],
  ])(
    'refuses a victim’s signed IdP-initiated assertion in an unsigned Response naming the attacker’s request (IdP-initiated %s)',
    async (_label, which) => {
      const at = which();
      const attacker = await startLogin(at, 'mallory');
      const { forged } = await victimAssertionInAttackersEnvelope(at, attacker.requestId);
      const visit = await post(attacker.browser, at, forged);
      // The envelope's InResponseTo disagrees with the signed (absent) one.
      await expectRefused(visit, at, 'saml_in_response_to_invalid');
      expect(completer.completed.some((c) => c.loginId === attacker.loginId)).toBe(false);
    },
  );

  it('records a refused unsolicited assertion in the replay cache, so it is never redeemable later', async () => {
    const victim = await idp.unsolicited(spOf(gh.baseUrl, closed.connection), {
      nameId: `cfo@${closed.domain}`,
    });
    await expectRefused(
      await post(new TestBrowser(), closed, victim.samlResponse),
      closed,
      'saml_unsolicited_response',
    );
    expect(await assertionRemembered(closed, victim.xml)).toBe(true);
    // Even were the connection opened to IdP-initiated logins now, the captured assertion is spent.
    await t.db.withTenant(closed.id, (em) =>
      em.query('UPDATE connections SET saml_allow_idp_initiated = true WHERE id = $1', [
        closed.connection.id,
      ]),
    );
    try {
      await expectRefused(
        await post(new TestBrowser(), closed, victim.samlResponse),
        closed,
        'saml_assertion_replayed',
      );
    } finally {
      await t.db.withTenant(closed.id, (em) =>
        em.query('UPDATE connections SET saml_allow_idp_initiated = false WHERE id = $1', [
          closed.connection.id,
        ]),
      );
    }
  });

  it('still completes a genuine SP-initiated login whose signed InResponseTo answers this browser', async () => {
    const started = await startLogin(closed, 'alice');
    const answer = await idp.answer(started.redirectUrl, spOf(gh.baseUrl, closed.connection), {
      nameId: `alice@${closed.domain}`,
    });
    const visit = await post(started.browser, closed, answer.samlResponse);
    expect(visit.body).toBe(`completed ${started.loginId}`);
    await t.db.withTenant(closed.id, (em) => em.query('DELETE FROM users'));
  });

  it('refuses a genuine answer to the attacker’s request posted from another browser (request bound to the browser)', async () => {
    const started = await startLogin(closed, 'bob');
    const answer = await idp.answer(started.redirectUrl, spOf(gh.baseUrl, closed.connection), {
      nameId: `bob@${closed.domain}`,
    });
    await expectRefused(
      await post(new TestBrowser(), closed, answer.samlResponse),
      closed,
      'saml_in_response_to_invalid',
    );
  });
});

describe('which signature counts: connection.saml signed_element', () => {
  it('accepts an IdP that signs only the Response on a "response" connection', async () => {
    const started = await startLogin(responseOnly, 'rita');
    const answer = await idp.answer(
      started.redirectUrl,
      spOf(gh.baseUrl, responseOnly.connection),
      { nameId: `rita@${responseOnly.domain}` },
      { signResponse: true, signAssertion: false },
    );
    expect(answer.xml).not.toMatch(/<saml:Assertion[^>]*>(?:(?!<\/saml:Assertion>).)*<ds:Signature/s);
    const visit = await post(started.browser, responseOnly, answer.samlResponse);
    expect(visit.body).toBe(`completed ${started.loginId}`);
    const done = completer.completed.find((c) => c.loginId === started.loginId);
    const users = await t.db.withTenant(responseOnly.id, (em) =>
      em.query<{ email: string }[]>('SELECT email FROM users WHERE id = $1', [done?.result.userId]),
    );
    expect(users).toEqual([{ email: `rita@${responseOnly.domain}` }]);
    await t.db.withTenant(responseOnly.id, (em) => em.query('DELETE FROM users'));
  });

  it('refuses a Response-only signature on an "assertion" connection (the default), naming the setting to change', async () => {
    const started = await startLogin(closed, 'carol');
    const answer = await idp.answer(
      started.redirectUrl,
      spOf(gh.baseUrl, closed.connection),
      { nameId: `carol@${closed.domain}` },
      { signResponse: true, signAssertion: false },
    );
    const visit = await post(started.browser, closed, answer.samlResponse);
    await expectRefused(visit, closed, 'saml_assertion_unsigned_response_signed');
    expect(visit.body).toContain('signed_element');
    // The log line says what to do, not only "Invalid signature".
    expect(gh.logs()).toMatch(/signed_element to \\?"response\\?"/);
  });

  it('keeps saml_signature_invalid for a Response-only answer whose Response signature is broken', async () => {
    const started = await startLogin(closed, 'carl');
    const answer = await idp.answer(
      started.redirectUrl,
      spOf(gh.baseUrl, closed.connection),
      { nameId: `carl@${closed.domain}` },
      { signResponse: true, signAssertion: false },
    );
    const tampered = answer.xml.replace(`carl@${closed.domain}`, `ceo@${closed.domain}`);
    expect(tampered).not.toBe(answer.xml);
    await expectRefused(
      await post(started.browser, closed, toBase64(tampered)),
      closed,
      'saml_signature_invalid',
    );
  });

  it('refuses an assertion-only signature on a "response" connection', async () => {
    const started = await startLogin(responseOnly, 'dave');
    const answer = await idp.answer(started.redirectUrl, spOf(gh.baseUrl, responseOnly.connection), {
      nameId: `dave@${responseOnly.domain}`,
    });
    await expectRefused(
      await post(started.browser, responseOnly, answer.samlResponse),
      responseOnly,
      'saml_signature_invalid',
    );
  });

  it('requires both signatures on a "both" connection', async () => {
    const target = spOf(gh.baseUrl, bothSigned.connection);
    const one = await startLogin(bothSigned, 'erin');
    const assertionOnly = await idp.answer(one.redirectUrl, target, { nameId: `erin@${bothSigned.domain}` });
    await expectRefused(
      await post(one.browser, bothSigned, assertionOnly.samlResponse),
      bothSigned,
      'saml_signature_invalid',
    );
    const two = await startLogin(bothSigned, 'erin');
    const both = await idp.answer(
      two.redirectUrl,
      target,
      { nameId: `erin@${bothSigned.domain}` },
      { signResponse: true },
    );
    expect((await post(two.browser, bothSigned, both.samlResponse)).body).toBe(`completed ${two.loginId}`);
    await t.db.withTenant(bothSigned.id, (em) => em.query('DELETE FROM users'));
  });

  it('refuses a signed Response whose assertion was swapped for the victim’s (XSW1) on a "response" connection', async () => {
    const started = await startLogin(responseOnly, 'mallory');
    const target = spOf(gh.baseUrl, responseOnly.connection);
    const answer = await idp.answer(
      started.redirectUrl,
      target,
      { nameId: `mallory@${responseOnly.domain}` },
      { signResponse: true, signAssertion: false },
    );
    const forged = responseWrappedXsw1(answer.xml, `ceo@${responseOnly.domain}`);
    expect(forged).toContain(`ceo@${responseOnly.domain}`);
    const visit = await post(started.browser, responseOnly, toBase64(forged));
    expect(visit.status).toBeGreaterThanOrEqual(400);
    expect(completer.completed.some((c) => c.loginId === started.loginId)).toBe(false);
    expect(await loginFootprint(t.db, responseOnly.id)).toMatchObject({
      users: 0,
      identities: 0,
      sessions: 0,
    });
  });
});

describe('bounded parsing (issue 8, defect 3)', () => {
  it('refuses a signed response nested 30,000 elements deep, under the size cap, before any DOM', async () => {
    const started = await startLogin(closed, 'deep');
    const answer = await idp.answer(started.redirectUrl, spOf(gh.baseUrl, closed.connection), {
      nameId: `deep@${closed.domain}`,
    });
    const depth = 30_000;
    const deep = answer.xml.replace(
      /<samlp:Status>/,
      `<samlp:Extensions>${'<d>'.repeat(depth)}x${'</d>'.repeat(depth)}</samlp:Extensions><samlp:Status>`,
    );
    expect(deep.length).toBeGreaterThan(answer.xml.length + depth * 7);
    const encoded = toBase64(deep);
    expect(encoded.length).toBeLessThan(512 * 1024);
    await expectRefused(await post(started.browser, closed, encoded), closed, 'saml_xml_too_deep');
  });
});
