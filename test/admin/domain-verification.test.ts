import { resolveTenantByEmailDomain } from '../../src/db/resolvers.js';
import { buildAdminTestApp, type AdminTestApp } from '../support/admin.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { startDnsServer, type TestDnsServer } from '../support/dns-server.js';

let t: TestDatabase;
let dns: TestDnsServer;
let a: AdminTestApp;
let acmeId: string;

beforeAll(async () => {
  t = await createTestDatabase();
  dns = await startDnsServer();
  a = buildAdminTestApp(t, { GATEHOUSE_DNS_SERVERS: dns.address, GATEHOUSE_DNS_TIMEOUT_MS: '200' });
  acmeId = await a.createTenant('acme', 'Acme');
});
afterEach(() => dns.clear());
afterAll(async () => {
  await dns.close();
  await t.close();
});

const op = () => a.op();

interface Added {
  id: string;
  domain: string;
  verification: { name: string; value: string };
}

async function add(domain: string): Promise<Added> {
  const res = await op().post(`/admin/v1/tenants/${acmeId}/domains`).send({ domain });
  expect(res.status).toBe(201);
  return res.body;
}
const verifyPath = (d: Added) => `/admin/v1/tenants/${acmeId}/domains/${d.id}/verify`;

async function verifiedEvents(): Promise<Record<string, unknown>[]> {
  return t.db.withTenant(acmeId, (em) =>
    em.query(`SELECT target_id, after FROM audit_events WHERE action = 'domain.verified' ORDER BY seq`),
  );
}

async function expectUnchanged(d: Added, eventsBefore: number): Promise<void> {
  const got = await op().get(`/admin/v1/tenants/${acmeId}/domains/${d.id}`);
  expect(got.body).toMatchObject({ status: 'pending', verified_at: null, verification_method: null });
  expect(await verifiedEvents()).toHaveLength(eventsBefore);
}

describe('domain verification through DNS (a real DNS server on 127.0.0.1)', () => {
  it('verifies a domain whose TXT record carries the challenge', async () => {
    const d = await add('acme.com');
    dns.setTxt(d.verification.name, ['v=spf1 -all', d.verification.value]);
    const res = await op().post(verifyPath(d));
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ id: d.id, status: 'verified', verification_method: 'dns' });
    expect(Date.parse(res.body.verified_at)).not.toBeNaN();
    expect(dns.questions).toContain('_gatehouse-challenge.acme.com');
    // Verified domains route logins: the email-domain resolver now finds the tenant.
    expect(await resolveTenantByEmailDomain(t.db, 'acme.com')).toBe(acmeId);
    const events = await verifiedEvents();
    expect(events.at(-1)).toMatchObject({
      target_id: d.id,
      after: expect.objectContaining({ domain: 'acme.com', verification_method: 'dns' }),
    });
  });

  it('accepts a record split in several character-strings, and { "method": "dns" } as the body', async () => {
    const d = await add('split.acme.com');
    const v = d.verification.value;
    dns.setTxt(d.verification.name, [[v.slice(0, 10), v.slice(10)]]);
    const res = await op().post(verifyPath(d)).send({ method: 'dns' });
    expect(res.status).toBe(200);
    expect(res.body.status).toBe('verified');
  });

  it('answers an already verified domain as it is, without a new audit event', async () => {
    const d = await add('again.acme.com');
    dns.setTxt(d.verification.name, [d.verification.value]);
    const first = await op().post(verifyPath(d));
    const count = (await verifiedEvents()).length;
    dns.clear();
    const second = await op().post(verifyPath(d));
    expect(second.status).toBe(200);
    expect(second.body).toEqual(first.body);
    expect(await verifiedEvents()).toHaveLength(count);
  });

  it('refuses when the record does not exist, and changes nothing', async () => {
    const d = await add('missing.acme.com');
    const before = (await verifiedEvents()).length;
    const res = await op().post(verifyPath(d));
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ code: 'dns_record_not_found' });
    expect(res.body.message).toMatch(
      /No TXT record found: _gatehouse-challenge\.missing\.acme\.com does not exist/,
    );
    await expectUnchanged(d, before);
    expect(await resolveTenantByEmailDomain(t.db, 'missing.acme.com')).toBeNull();
  });

  it('refuses when the name has no TXT record', async () => {
    const d = await add('nodata.acme.com');
    dns.setTxt(d.verification.name, []);
    const before = (await verifiedEvents()).length;
    const res = await op().post(verifyPath(d));
    expect(res.status).toBe(400);
    expect(res.body.code).toBe('dns_record_not_found');
    expect(res.body.message).toMatch(/No TXT record found at _gatehouse-challenge\.nodata\.acme\.com/);
    await expectUnchanged(d, before);
  });

  it('refuses a wrong record and names what was found', async () => {
    const d = await add('wrong.acme.com');
    dns.setTxt(d.verification.name, ['gatehouse-verification=not-the-challenge']);
    const before = (await verifiedEvents()).length;
    const res = await op().post(verifyPath(d));
    expect(res.status).toBe(400);
    expect(res.body.code).toBe('dns_record_mismatch');
    expect(res.body.message).toMatch(
      /does not match the challenge: found "gatehouse-verification=not-the-challenge"/,
    );
    await expectUnchanged(d, before);
  });

  it("refuses the challenge of another domain's record", async () => {
    const one = await add('one.acme.com');
    const two = await add('two.acme.com');
    dns.setTxt(two.verification.name, [one.verification.value]);
    expect((await op().post(verifyPath(two))).status).toBe(400);
  });

  it('reports a failing DNS server (SERVFAIL) as a refusal naming the error', async () => {
    const d = await add('servfail.acme.com');
    dns.setFailure('servfail');
    const before = (await verifiedEvents()).length;
    const res = await op().post(verifyPath(d));
    expect(res.status).toBe(400);
    expect(res.body.code).toBe('dns_lookup_failed');
    expect(res.body.message).toMatch(
      /DNS lookup of _gatehouse-challenge\.servfail\.acme\.com failed \(ESERVFAIL\)/,
    );
    await expectUnchanged(d, before);
  });

  it('reports a DNS server that never answers as dns_unavailable (503, Retry-After), after the configured timeout', async () => {
    const d = await add('silent.acme.com');
    dns.setFailure('silent');
    const before = (await verifiedEvents()).length;
    const res = await op().post(verifyPath(d));
    expect(res.status).toBe(503);
    expect(res.body).toMatchObject({
      code: 'dns_unavailable',
      message: expect.stringMatching(/ETIMEOUT\): the DNS server did not answer; try again/),
    });
    expect(res.headers['retry-after']).toBeDefined();
    await expectUnchanged(d, before);
  });
});

describe('manual domain verification', () => {
  it('lets the operator verify manually with a reason, written to the audit event', async () => {
    const d = await add('manual.acme.com');
    const res = await op()
      .post(verifyPath(d))
      .send({ method: 'manual', reason: 'Contract 2024-17, confirmed by phone' });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ status: 'verified', verification_method: 'manual' });
    expect(dns.questions).toEqual([]);
    expect((await verifiedEvents()).at(-1)).toMatchObject({
      target_id: d.id,
      after: expect.objectContaining({
        verification_method: 'manual',
        reason: 'Contract 2024-17, confirmed by phone',
      }),
    });
  });

  it('requires a reason and refuses unknown fields', async () => {
    const d = await add('noreason.acme.com');
    const before = (await verifiedEvents()).length;
    for (const body of [{ method: 'manual' }, { method: 'manual', reason: '  ' }, { method: 'email' }]) {
      const res = await op().post(verifyPath(d)).send(body);
      expect(res.status).toBe(400);
    }
    const extra = await op().post(verifyPath(d)).send({ method: 'manual', reason: 'x', force: true });
    expect(extra.status).toBe(400);
    expect(extra.body.message).toMatch(/unknown field\(s\): force/);
    await expectUnchanged(d, before);
  });

  it('is refused to tenant admins (403)', async () => {
    const d = await add('admin-manual.acme.com');
    const before = (await verifiedEvents()).length;
    const res = await a
      .tenantAdmin(acmeId, 'u-acme-admin')
      .post(verifyPath(d))
      .send({ method: 'manual', reason: 'trust me' });
    expect(res.status).toBe(403);
    expect(res.body.code).toBe('forbidden');
    await expectUnchanged(d, before);
  });
});
