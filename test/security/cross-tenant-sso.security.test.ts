import { randomUUID } from 'node:crypto';
import type { Connection } from '../../src/connections/connection.entity.js';
import { oidcCallbackUrl } from '../../src/sso/oidc/oidc-flow.js';
import { TestBrowser } from '../support/browser.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { startOidcProvider, type OidcProviderPeer } from '../support/oidc-op.js';
import { RecordingCompleter, startSsoServer, type SsoServer } from '../support/sso-app.js';
import { auditEvents, createOidcConnection, createTenantWithDomains } from '../support/sso-factories.js';
import { tenantSnapshot } from '../support/tenant-admin-token.js';

/**
 * The browser legs of sign-in across tenants, against real OpenID Providers
 * (oidc-provider) as each tenant's IdP: a pending OIDC login of tenant A
 * replayed at tenant B's callback, and the "back to the application" handoff
 * of a refused login of tenant A presented in tenant B's browser.
 */
let t: TestDatabase;
let gh: SsoServer;
const completer = new RecordingCompleter();
let acmeOp: OidcProviderPeer;
let globexOp: OidcProviderPeer;
let acmeId: string;
let globexId: string;
let acme: Connection;
let globex: Connection;

beforeAll(async () => {
  t = await createTestDatabase();
  gh = await startSsoServer(t, { completer });
  const acmeConnectionId = randomUUID();
  const globexConnectionId = randomUUID();
  acmeOp = await startOidcProvider({ redirectUris: [oidcCallbackUrl(gh.baseUrl, acmeConnectionId)] });
  globexOp = await startOidcProvider({ redirectUris: [oidcCallbackUrl(gh.baseUrl, globexConnectionId)] });
  acmeId = await createTenantWithDomains(t.db, 'acme', ['acme.test']);
  globexId = await createTenantWithDomains(t.db, 'globex', ['globex.test']);
  const client = (op: OidcProviderPeer) => ({
    issuer: op.issuer,
    clientId: op.clientId,
    clientSecret: op.clientSecret,
  });
  acme = await createOidcConnection(t.db, gh.secrets.masterKey, acmeId, client(acmeOp), {
    id: acmeConnectionId,
  });
  globex = await createOidcConnection(t.db, gh.secrets.masterKey, globexId, client(globexOp), {
    id: globexConnectionId,
  });
});
afterAll(async () => {
  await acmeOp.close();
  await globexOp.close();
  await gh.close();
  await t.close();
});

/**
 * The tenant's rows except its records of sign-in attempts: a refused login is
 * audited and traced (issue 15's login traces) at the connection it reached, by
 * design. What those records hold of another tenant is checked where it matters.
 */
async function withoutAudit(tenantId: string) {
  const { audit_events: _audit, login_traces: _traces, ...rest } = await tenantSnapshot(t, tenantId);
  return rest;
}

/** A login through discovery on `email`, stopped at the callback the IdP redirected the browser to. */
async function stopAtCallback(browser: TestBrowser, email: string, connection: Connection) {
  const loginId = randomUUID();
  const visit = await browser.visit(
    `${gh.baseUrl}/login?login=${loginId}&email=${encodeURIComponent(email)}`,
    oidcCallbackUrl(gh.baseUrl, connection.id),
  );
  if (!visit.redirectedTo) throw new Error(`no redirect to the callback: ${visit.status} ${visit.body}`);
  return { loginId, callback: new URL(visit.redirectedTo) };
}

/** A refused login's page: its "Back to the application" link (/sso/continue?handoff=…). */
function handoffLink(body: string): string {
  const match = /<a href="([^"]*\/sso\/continue\?handoff=[^"]+)">/.exec(body);
  if (!match?.[1]) throw new Error(`no handoff link in ${body}`);
  return match[1].replace(/&amp;/g, '&');
}

describe('sign-in handles across tenants', () => {
  it("refuses tenant A's pending OIDC state replayed at tenant B's callback, writing nothing and leaving A's login intact", async () => {
    acmeOp.signInAs({ sub: 'acme-sub-alice', claims: { email: 'alice@acme.test', email_verified: true } });
    const browser = new TestBrowser();
    const { loginId, callback } = await stopAtCallback(browser, 'alice@acme.test', acme);
    expect(callback.searchParams.get('state')).toMatch(/^[\w-]{20,}$/);

    const globexBefore = await withoutAudit(globexId);
    const acmeBefore = await withoutAudit(acmeId);
    // The same browser (it holds the binding cookie), A's code, state and iss, at B's callback.
    const replay = new URL(oidcCallbackUrl(gh.baseUrl, globex.id));
    replay.search = callback.search;
    const refused = await browser.visit(replay.toString(), 'about:');
    expect(refused.status).toBeGreaterThanOrEqual(400);
    expect(refused.body).toContain('<code>oidc_state_invalid</code>');
    expect(refused.trail.some((u) => u.startsWith(globexOp.issuer) || u.startsWith(acmeOp.issuer))).toBe(
      false,
    );
    expect(completer.completed.some((c) => c.loginId === loginId)).toBe(false);
    expect(await withoutAudit(globexId)).toEqual(globexBefore);
    expect(await withoutAudit(acmeId)).toEqual(acmeBefore);
    expect((await auditEvents(t.db, globexId, 'login.failed')).at(-1)?.after).toEqual({
      reason: 'oidc_state_invalid',
      connection_id: globex.id,
    });
    // B's trace of the refused attempt names B's connection and the reason, and nothing of A's login.
    const traces = (await tenantSnapshot(t, globexId)).login_traces as Record<string, unknown>[];
    const trace = JSON.stringify(traces.at(-1));
    expect(traces.at(-1)).toMatchObject({
      connection_id: globex.id,
      outcome: 'oidc_state_invalid',
      profile: null,
    });
    for (const secret of [
      loginId,
      acme.id,
      acmeId,
      'alice@acme.test',
      callback.searchParams.get('state') ?? '-',
    ])
      expect(trace).not.toContain(secret);

    // A's state was not consumed by the replay: the genuine callback still completes A's login, in A.
    const genuine = await browser.visit(callback.toString(), 'about:');
    expect(genuine.body).toBe(`completed ${loginId}`);
    expect(completer.completed.find((c) => c.loginId === loginId)?.result).toMatchObject({
      tenantId: acmeId,
      connectionId: acme.id,
    });
  });

  it("refuses tenant A's failure handoff in tenant B's browser and leaves A's login pending", async () => {
    // Each IdP vouches for an address outside its tenant's verified domains: both logins are refused with a handoff.
    acmeOp.signInAs({
      sub: 'acme-sub-mallory',
      claims: { email: 'mallory@elsewhere.test', email_verified: true },
    });
    const aliceBrowser = new TestBrowser();
    const a = await stopAtCallback(aliceBrowser, 'mallory@acme.test', acme);
    const aRefused = await aliceBrowser.visit(a.callback.toString(), 'about:');
    expect(aRefused.status).toBeGreaterThanOrEqual(400);
    const aHandoff = handoffLink(aRefused.body);

    globexOp.signInAs({
      sub: 'globex-sub-gina',
      claims: { email: 'gina@elsewhere.test', email_verified: true },
    });
    const ginaBrowser = new TestBrowser();
    const b = await stopAtCallback(ginaBrowser, 'gina@globex.test', globex);
    const bRefused = await ginaBrowser.visit(b.callback.toString(), 'about:');
    const bHandoff = handoffLink(bRefused.body);

    const acmeBefore = await withoutAudit(acmeId);
    const globexBefore = await withoutAudit(globexId);
    // B's browser (it has a binding cookie of its own) presents A's handoff.
    const crossed = await ginaBrowser.visit(aHandoff, 'about:');
    expect(crossed.body).toContain('<code>handoff_invalid</code>');
    expect(completer.failed.some((f) => f.loginId === a.loginId)).toBe(false);
    expect(await withoutAudit(acmeId)).toEqual(acmeBefore);
    expect(await withoutAudit(globexId)).toEqual(globexBefore);

    // Each browser's own handoff ends its own login (control).
    expect((await aliceBrowser.visit(aHandoff, 'about:')).body).toMatch(new RegExp(`^failed ${a.loginId} `));
    expect((await ginaBrowser.visit(bHandoff, 'about:')).body).toMatch(new RegExp(`^failed ${b.loginId} `));
  });
});
