import { randomUUID } from 'node:crypto';
import type { Connection } from '../../src/connections/connection.entity.js';
import { TestBrowser } from '../support/browser.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { SamlTestIdp, type SamlUser } from '../support/saml-idp.js';
import { RecordingCompleter, startSsoServer, type SsoServer } from '../support/sso-app.js';
import {
  addDomain,
  auditEvents,
  createSamlConnection,
  createTenantWithDomains,
  loginFootprint,
  spOf,
} from '../support/sso-factories.js';

/**
 * completeLogin's rules (docs/architecture.md), driven through real SAML logins:
 * who may be created, who may be linked, and who is refused — refusals leave
 * no user, identity or session behind and are audited with their reason.
 */
let t: TestDatabase;
let gh: SsoServer;
const completer = new RecordingCompleter();
let idp: SamlTestIdp;

beforeAll(async () => {
  t = await createTestDatabase();
  gh = await startSsoServer(t, { completer });
  idp = await SamlTestIdp.create('policy');
});
afterAll(async () => {
  await gh.close();
  await t.close();
});

async function tenant(domain: string, o: Parameters<typeof createSamlConnection>[3] = {}) {
  const tenantId = await createTenantWithDomains(t.db, `t-${randomUUID().slice(0, 8)}`, [domain]);
  return { tenantId, connection: await createSamlConnection(t.db, tenantId, idp, o) };
}

/** SP-initiated: discovery by `email` (the person's typed address), then the IdP asserts `user`. */
async function signIn(connection: Connection, user: SamlUser, email = user.nameId) {
  const browser = new TestBrowser();
  const loginId = randomUUID();
  const start = await browser.visit(
    `${gh.baseUrl}/login?login=${loginId}&email=${encodeURIComponent(email)}`,
    idp.ssoUrl,
  );
  if (!start.redirectedTo) throw new Error(`no redirect to the IdP: ${start.status} ${start.body}`);
  const sp = spOf(gh.baseUrl, connection);
  const answer = await idp.answer(start.redirectedTo, sp, user);
  const done = await browser.visit(sp.acsUrl, 'about:', {
    method: 'POST',
    form: { SAMLResponse: answer.samlResponse },
  });
  return { loginId, done, answer };
}

async function insertUser(tenantId: string, email: string, status: string): Promise<string> {
  const id = randomUUID();
  await t.db.withTenant(tenantId, (em) =>
    em.query(
      `INSERT INTO users (tenant_id, id, user_name, email, email_verified, status) VALUES ($1, $2, $3, $3, true, $4)`,
      [tenantId, id, email, status],
    ),
  );
  return id;
}

function expectRefusalPage(done: { status: number; body: string }, reason: string) {
  expect(done.status).toBe(403);
  expect(done.body).toContain(`<code>${reason}</code>`);
  expect(done.body).toContain('Back to the application');
  expect(done.body).not.toMatch(/at \w+ \(|Error:/);
}

describe('just-in-time provisioning and its refusals', () => {
  it('refuses a person SCIM suspended, without reviving them or creating anything', async () => {
    const { tenantId, connection } = await tenant('suspended.test');
    const userId = await insertUser(tenantId, 'sue@suspended.test', 'suspended');
    const before = await loginFootprint(t.db, tenantId);
    const { done, loginId } = await signIn(connection, { nameId: 'sue@suspended.test' });
    expectRefusalPage(done, 'user_suspended');
    expect(completer.completed.some((c) => c.loginId === loginId)).toBe(false);
    expect(await loginFootprint(t.db, tenantId)).toEqual(before);
    const [user] = await t.db.withTenant(tenantId, (em) =>
      em.query('SELECT status FROM users WHERE id = $1', [userId]),
    );
    expect(user).toEqual({ status: 'suspended' });
  });

  it('refuses a person SCIM deleted, even with JIT on, instead of creating them anew', async () => {
    const { tenantId, connection } = await tenant('deleted.test');
    await insertUser(tenantId, 'dan@deleted.test', 'deleted');
    const { done } = await signIn(connection, { nameId: 'dan@deleted.test' });
    expectRefusalPage(done, 'user_deleted');
    expect(await loginFootprint(t.db, tenantId)).toMatchObject({ users: 1, identities: 0 });
  });

  it('refuses a known identity whose user was suspended after an earlier login', async () => {
    const { tenantId, connection } = await tenant('later.test');
    const first = await signIn(connection, { nameId: 'lou@later.test' });
    expect(first.done.status).toBe(200);
    await t.db.withTenant(tenantId, (em) => em.query(`UPDATE users SET status = 'suspended'`));
    const again = await signIn(connection, { nameId: 'lou@later.test' });
    expectRefusalPage(again.done, 'user_suspended');
  });

  it('creates nobody when JIT is off, but lets a provisioned person in', async () => {
    const { tenantId, connection } = await tenant('nojit.test', { jitEnabled: false });
    const refused = await signIn(connection, { nameId: 'new@nojit.test' });
    expectRefusalPage(refused.done, 'user_not_provisioned');
    expect(await loginFootprint(t.db, tenantId)).toMatchObject({ users: 0, identities: 0 });

    const provisioned = await insertUser(tenantId, 'known@nojit.test', 'active');
    const allowed = await signIn(connection, { nameId: 'known@nojit.test' });
    expect(allowed.done.body).toBe(`completed ${allowed.loginId}`);
    expect(completer.completed.find((c) => c.loginId === allowed.loginId)?.result.userId).toBe(provisioned);
  });

  it('creates no user for an email outside the tenant’s verified domains', async () => {
    const { tenantId, connection } = await tenant('verified.test');
    await addDomain(t.db, tenantId, 'pending.test', false);
    const { done } = await signIn(connection, { nameId: 'eve@pending.test' }, 'eve@verified.test');
    expectRefusalPage(done, 'email_domain_not_verified');
    expect(await loginFootprint(t.db, tenantId)).toMatchObject({ users: 0, identities: 0, sessions: 0 });
    const [failure] = await auditEvents(t.db, tenantId, 'login.failed');
    expect(failure).toMatchObject({ actor_type: 'system', target_id: connection.id });
    expect(failure?.after).toEqual({ reason: 'email_domain_not_verified', connection_id: connection.id });
  });

  it('creates a user with email_verified false when the connection allows other domains', async () => {
    const { tenantId, connection } = await tenant('open.test', { allowUnverifiedEmail: true });
    const { done, loginId } = await signIn(
      connection,
      { nameId: 'contractor@freelance.test' },
      'c@open.test',
    );
    expect(done.body).toBe(`completed ${loginId}`);
    const [user] = await t.db.withTenant(tenantId, (em) =>
      em.query('SELECT email, email_verified FROM users'),
    );
    expect(user).toEqual({ email: 'contractor@freelance.test', email_verified: false });
  });

  it('never links an existing account through an unverified email', async () => {
    const { tenantId, connection } = await tenant('takeover.test', { allowUnverifiedEmail: true });
    await insertUser(tenantId, 'boss@elsewhere.test', 'active');
    const { done } = await signIn(connection, { nameId: 'boss@elsewhere.test' }, 'b@takeover.test');
    expectRefusalPage(done, 'user_ambiguous');
    expect(await loginFootprint(t.db, tenantId)).toMatchObject({ users: 1, identities: 0 });
  });

  it('refuses an assertion without any email when the person is new', async () => {
    const { tenantId, connection } = await tenant('noemail.test');
    const { done } = await signIn(
      connection,
      { nameId: '00u1abcd', nameIdFormat: 'urn:oasis:names:tc:SAML:2.0:nameid-format:persistent' },
      'x@noemail.test',
    );
    expectRefusalPage(done, 'email_missing');
    expect(await loginFootprint(t.db, tenantId)).toMatchObject({ users: 0 });
  });

  it('writes the failure to the audit trail without the SAMLResponse or the person’s attributes', async () => {
    const { tenantId, connection } = await tenant('quiet.test');
    await insertUser(tenantId, 'quiet@quiet.test', 'suspended');
    const { answer } = await signIn(connection, {
      nameId: 'quiet@quiet.test',
      attributes: { firstName: 'Very-Secret-Name' },
    });
    const rows = await t.db.withTenant(tenantId, (em) =>
      em.query<{ row: string }[]>('SELECT row_to_json(a)::text AS row FROM audit_events a'),
    );
    const trail = rows.map((r) => r.row).join('\n');
    expect(trail).toContain('user_suspended');
    expect(trail).not.toContain(answer.samlResponse.slice(0, 40));
    expect(trail).not.toContain('Very-Secret-Name');
    expect(gh.logs()).not.toContain(answer.samlResponse.slice(0, 40));
  });
});
