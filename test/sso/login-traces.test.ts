import { randomUUID } from 'node:crypto';
import type { Connection } from '../../src/connections/connection.entity.js';
import { runCleanup } from '../../src/sessions/cleanup.js';
import { TestBrowser } from '../support/browser.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { SamlTestIdp, type SamlUser } from '../support/saml-idp.js';
import { RecordingCompleter, startSsoServer, type SsoServer } from '../support/sso-app.js';
import {
  auditEvents,
  createSamlConnection,
  createTenantWithDomains,
  spOf,
} from '../support/sso-factories.js';

/**
 * Issue 15: every login that reaches a connection stores its trace — the
 * steps from the real checks, the profile received and mapped, the outcome —
 * under the support reference its error page shows, for the tenant's admins
 * and support to find through the admin API. Real peers: a samlify IdP, the
 * server on loopback, the real admin API, the real cleanup sweep.
 */
let t: TestDatabase;
let gh: SsoServer;
const completer = new RecordingCompleter();
let idp: SamlTestIdp;

const HOUR = 3600_000;
const GRACE = HOUR;

beforeAll(async () => {
  t = await createTestDatabase();
  gh = await startSsoServer(t, { completer });
  idp = await SamlTestIdp.create('traces');
});
afterAll(async () => {
  await gh.close();
  await t.close();
});

async function tenantWithSaml(domain: string) {
  const tenantId = await createTenantWithDomains(t.db, `t-${randomUUID().slice(0, 8)}`, [domain]);
  const connection = await createSamlConnection(t.db, tenantId, idp);
  return { tenantId, connection };
}

const admin = (path: string, init: RequestInit = {}) =>
  fetch(`${gh.address}/admin/v1${path}`, {
    ...init,
    headers: { Authorization: `Bearer ${gh.secrets.adminToken}`, 'Content-Type': 'application/json' },
  });

async function signIn(connection: Connection, email: string, answerWith = idp) {
  const browser = new TestBrowser();
  const start = await browser.visit(
    `${gh.baseUrl}/login?login=${randomUUID()}&email=${encodeURIComponent(email)}`,
    idp.ssoUrl,
  );
  if (!start.redirectedTo) throw new Error(`no redirect to the IdP: ${start.status} ${start.body}`);
  const sp = spOf(gh.baseUrl, connection);
  const user: SamlUser = {
    nameId: email,
    attributes: { email, firstName: 'Ada', lastName: 'Lovelace', groups: ['Engineering'] },
  };
  const answer = await answerWith.answer(start.redirectedTo, sp, user);
  const done = await browser.visit(sp.acsUrl, 'about:', {
    method: 'POST',
    form: { SAMLResponse: answer.samlResponse },
  });
  return { done, samlResponse: answer.samlResponse };
}

/** The support reference as the error page shows it. */
const supportRefOf = (page: string) =>
  /Support reference:\s*<code>([^<]+)<\/code>/.exec(page)?.[1] ?? 'none on the page';

interface TraceBody {
  id: string;
  support_ref: string;
  kind: string;
  outcome: string;
  steps: { step: string; ok: boolean | null; reason?: string }[];
  profile: Record<string, unknown> | null;
  user_id: string | null;
  raw_response_expires_at: string | null;
}

async function traceByRef(tenantId: string, ref: string): Promise<TraceBody> {
  const res = await admin(`/tenants/${tenantId}/login-traces?support_ref=${encodeURIComponent(ref)}`);
  expect(res.status).toBe(200);
  const body = (await res.json()) as { data: TraceBody[] };
  expect(body.data).toHaveLength(1);
  return body.data[0] as TraceBody;
}

const stepMap = (trace: TraceBody) => Object.fromEntries(trace.steps.map((s) => [s.step, s]));

describe('login traces', () => {
  it('stores a failed login with a wrong certificate: earlier steps passed, the signature failed, the rest not reached', async () => {
    const { tenantId, connection } = await tenantWithSaml('wrongcert.test');
    const { done } = await signIn(connection, 'ada@wrongcert.test', await SamlTestIdp.rotated(idp));
    expect(done.body).toContain('saml_signature_invalid');
    const ref = supportRefOf(done.body);

    const trace = await traceByRef(tenantId, ref);
    expect(trace.support_ref).toBe(ref);
    expect(trace.outcome).toBe('saml_signature_invalid');
    const steps = stepMap(trace);
    expect(steps.response_received).toEqual({ step: 'response_received', ok: true });
    expect(steps.signature).toEqual({ step: 'signature', ok: false, reason: 'saml_signature_invalid' });
    for (const later of ['issuer', 'recipient', 'replay', 'domain', 'jit'])
      expect(steps[later]?.ok).toBeNull();
    expect(trace.raw_response_expires_at).toBeNull();

    // The same trace by its id; never the raw answer (the tenant did not opt in).
    const one = await admin(`/tenants/${tenantId}/login-traces/${trace.id}`);
    expect(((await one.json()) as TraceBody).support_ref).toBe(ref);
    expect((await admin(`/tenants/${tenantId}/login-traces/${trace.id}/raw-response`)).status).toBe(404);
    const [row] = await t.db.withTenant(tenantId, (em) =>
      em.query<{ raw_response_enc: string | null }[]>('SELECT raw_response_enc FROM login_traces'),
    );
    expect(row?.raw_response_enc).toBeNull();
  });

  it('stores a successful login with every step passed, the profile received and the attributes mapped', async () => {
    const { tenantId, connection } = await tenantWithSaml('ok.test');
    const { done } = await signIn(connection, 'ada@ok.test');
    expect(done.status).toBe(200);
    const list = await admin(`/tenants/${tenantId}/login-traces?outcome=success`);
    const [trace] = ((await list.json()) as { data: TraceBody[] }).data;
    expect(trace?.kind).toBe('sp_initiated');
    expect(trace?.user_id).toBe(completer.completed.at(-1)?.result.userId);
    expect(trace?.steps.every((s) => s.ok === true)).toBe(true);
    expect(trace?.profile).toMatchObject({
      subject: 'ada@ok.test',
      email: 'ada@ok.test',
      given_name: 'Ada',
      family_name: 'Lovelace',
      groups: ['Engineering'],
    });
    expect(trace?.profile?.attribute_names).toEqual(expect.arrayContaining(['email', 'firstName', 'groups']));
    // No raw answer, token or assertion in the stored row.
    const rows = await t.db.withTenant(tenantId, (em) =>
      em.query<Record<string, unknown>[]>('SELECT * FROM login_traces'),
    );
    expect(JSON.stringify(rows)).not.toMatch(/Assertion|SAMLResponse|PHNhbWxw/);
  });

  it('keeps a failed response only when the tenant opted in, sealed, viewable once audited, gone after 24 hours', async () => {
    const { tenantId, connection } = await tenantWithSaml('keep.test');
    const patch = await admin(`/tenants/${tenantId}`, {
      method: 'PATCH',
      body: JSON.stringify({ keep_failed_login_responses: true }),
    });
    expect(patch.status).toBe(200);
    expect(((await patch.json()) as Record<string, unknown>).keep_failed_login_responses).toBe(true);

    const { done, samlResponse } = await signIn(connection, 'ada@keep.test', await SamlTestIdp.rotated(idp));
    const trace = await traceByRef(tenantId, supportRefOf(done.body));
    expect(trace.raw_response_expires_at).not.toBeNull();
    const [row] = await t.db.withTenant(tenantId, (em) =>
      em.query<{ raw_response_enc: string }[]>('SELECT raw_response_enc FROM login_traces'),
    );
    // Sealed at rest: neither the XML nor the posted base64 is in the column.
    expect(row?.raw_response_enc).toMatch(/^v1\./);
    expect(row?.raw_response_enc).not.toContain('Assertion');
    expect(row?.raw_response_enc).not.toContain(samlResponse.slice(0, 40));

    const raw = await admin(`/tenants/${tenantId}/login-traces/${trace.id}/raw-response`);
    expect(raw.status).toBe(200);
    const xml = ((await raw.json()) as { saml_response: string }).saml_response;
    expect(xml).toBe(Buffer.from(samlResponse, 'base64').toString('utf8'));
    expect(await auditEvents(t.db, tenantId, 'login_trace.raw_response_viewed')).toEqual([
      expect.objectContaining({ actor_type: 'operator', target_id: trace.id }),
    ]);

    // A success never keeps one, opted in or not.
    await signIn(connection, 'ada@keep.test');
    const kept = await t.db.withTenant(tenantId, (em) =>
      em.query<{ outcome: string }[]>('SELECT outcome FROM login_traces WHERE raw_response_enc IS NOT NULL'),
    );
    expect(kept.map((k) => k.outcome)).toEqual(['saml_signature_invalid']);

    const later = new Date(Date.now() + 24 * HOUR + GRACE + 60_000);
    const counts = await runCleanup({ db: t.db, graceMs: GRACE, outboxRetentionMs: HOUR }, later);
    expect(counts.login_trace_raw_responses).toBeGreaterThanOrEqual(1);
    const [after] = await t.db.withTenant(tenantId, (em) =>
      em.query<{ n: number }[]>(
        'SELECT count(*)::int AS n FROM login_traces WHERE raw_response_enc IS NOT NULL',
      ),
    );
    expect(after?.n).toBe(0);
    // The trace itself stays for its retention.
    expect((await traceByRef(tenantId, trace.support_ref)).raw_response_expires_at).toBeNull();
  });

  it('deletes traces past GATEHOUSE_LOGIN_TRACE_RETENTION in the cleanup sweep, keeping newer ones', async () => {
    const { tenantId, connection } = await tenantWithSaml('retention.test');
    await signIn(connection, 'ada@retention.test');
    const count = () =>
      t.db.withTenant(tenantId, (em) =>
        em.query<{ n: number }[]>('SELECT count(*)::int AS n FROM login_traces').then((r) => r[0]?.n),
      );
    expect(await count()).toBe(1);
    await runCleanup(
      { db: t.db, graceMs: GRACE, outboxRetentionMs: HOUR },
      new Date(Date.now() + 6 * 24 * HOUR),
    );
    expect(await count()).toBe(1);
    const swept = await runCleanup(
      { db: t.db, graceMs: GRACE, outboxRetentionMs: HOUR },
      new Date(Date.now() + 7 * 24 * HOUR + GRACE + 60_000),
    );
    expect(swept.login_traces).toBeGreaterThanOrEqual(1);
    expect(await count()).toBe(0);
  });

  it("erases a person's traces with the person: their successes, and failures that carried their email", async () => {
    const { tenantId, connection } = await tenantWithSaml('erase.test');
    await signIn(connection, 'ada@erase.test');
    const userId = completer.completed.at(-1)?.result.userId ?? '';
    await t.db.withTenant(tenantId, (em) =>
      em.query(`UPDATE users SET status = 'suspended' WHERE id = $1`, [userId]),
    );
    const { done } = await signIn(connection, 'ada@erase.test');
    expect(done.body).toContain('user_suspended');
    const rows = () =>
      t.db.withTenant(tenantId, (em) => em.query<Record<string, unknown>[]>('SELECT * FROM login_traces'));
    expect(JSON.stringify(await rows())).toContain('ada@erase.test');
    expect((await rows()).map((r) => r.outcome).sort()).toEqual(['success', 'user_suspended']);

    const erased = await admin(`/tenants/${tenantId}/users/${userId}/erasure`, {
      method: 'POST',
      body: '{}',
    });
    expect(erased.status).toBe(200);
    expect(await rows()).toEqual([]);
  });

  it('refuses a real login on an inactive connection, even when the app names it', async () => {
    const tenantId = await createTenantWithDomains(t.db, `t-${randomUUID().slice(0, 8)}`, ['draft.test']);
    const connection = await createSamlConnection(t.db, tenantId, idp, { status: 'inactive' });
    const browser = new TestBrowser();
    const start = await browser.visit(
      `${gh.baseUrl}/login?login=${randomUUID()}&connection=${connection.id}`,
      idp.ssoUrl,
    );
    expect(start.redirectedTo).toBeNull();
    expect(start.body).toContain('discovery_connection_unknown');
    // A forged test id (wrong MAC) is a real login like any other.
    const forged = `portaltest.${tenantId.replace(/-/g, '')}.${connection.id.replace(/-/g, '')}.AAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAA`;
    const again = await browser.visit(
      `${gh.baseUrl}/login?login=${forged}&connection=${connection.id}`,
      idp.ssoUrl,
    );
    expect(again.redirectedTo).toBeNull();
    expect(again.body).toContain('discovery_connection_unknown');
  });
});
