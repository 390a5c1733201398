import { buildAdminTestApp, type AdminTestApp } from '../support/admin.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { startDnsServer, type TestDnsServer } from '../support/dns-server.js';

let t: TestDatabase;
let dns: TestDnsServer;
let a: AdminTestApp;
let acmeId: string;
let globexId: string;

beforeAll(async () => {
  t = await createTestDatabase();
  dns = await startDnsServer();
  a = buildAdminTestApp(t, { GATEHOUSE_DNS_SERVERS: dns.address, GATEHOUSE_DNS_TIMEOUT_MS: '200' });
  acmeId = await a.createTenant('acme', 'Acme');
  globexId = await a.createTenant('globex', 'Globex');
});
afterEach(() => dns.clear());
afterAll(async () => {
  await dns.close();
  await t.close();
});

const op = () => a.op();
const acmeAdmin = () => a.tenantAdmin(acmeId, 'u-acme-admin');
const domains = (tenantId: string) => `/admin/v1/tenants/${tenantId}/domains`;

async function add(tenantId: string, domain: string) {
  const res = await op().post(domains(tenantId)).send({ domain });
  expect(res.status).toBe(201);
  return res.body as { id: string; domain: string; verification: { name: string; value: string } };
}

async function domainCount(tenantId: string): Promise<number> {
  const rows = await t.db.withTenant(tenantId, (em) => em.query('SELECT count(*)::int AS n FROM domains'));
  return rows[0].n;
}

describe('admin API: domains', () => {
  it('adds a normalized domain and answers the TXT record to publish', async () => {
    const res = await op().post(domains(acmeId)).send({ domain: '  Acme.COM. ' });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({
      domain: 'acme.com',
      status: 'pending',
      verified_at: null,
      verification_method: null,
      verification: { type: 'TXT', name: '_gatehouse-challenge.acme.com' },
    });
    expect(res.body.verification.value).toMatch(/^gatehouse-verification=[A-Za-z0-9_-]{32}$/);

    const got = await op().get(`${domains(acmeId)}/${res.body.id}`);
    expect(got.body).toEqual(res.body);
    const list = await op().get(domains(acmeId));
    expect(list.body).toMatchObject({ total: 1, limit: 25, offset: 0, data: [res.body] });
    const filtered = await op().get(`${domains(acmeId)}?domain=ACME.com`);
    expect(filtered.body.data.map((d: { id: string }) => d.id)).toEqual([res.body.id]);

    const [event] = await t.db.withTenant(acmeId, (em) =>
      em.query(`SELECT * FROM audit_events WHERE action = 'domain.added'`),
    );
    expect(event).toMatchObject({ target_type: 'domain', target_id: res.body.id, actor_type: 'operator' });
    expect(event.after).toEqual({ domain: 'acme.com' });
  });

  it('stores internationalized domains as IDNA ASCII', async () => {
    const added = await add(acmeId, 'Bücher.example');
    expect(added.domain).toBe('xn--bcher-kva.example');
    expect(added.verification.name).toBe('_gatehouse-challenge.xn--bcher-kva.example');
  });

  it.each([
    ['com', /public suffix/],
    ['co.uk', /public suffix/],
    ['*.acme.com', /wildcards/],
    ['10.0.0.1', /IP address/],
    ['-acme.com', /invalid label|not a valid/],
    ['acme.com/login', /invalid characters/],
    ['', /empty/],
  ])('refuses %j with 400 and stores nothing', async (domain, message) => {
    const before = await domainCount(acmeId);
    const res = await op().post(domains(acmeId)).send({ domain });
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ code: 'bad_request', message: expect.stringMatching(message) });
    expect(await domainCount(acmeId)).toBe(before);
  });

  it('refuses unknown fields, a missing domain and a duplicate', async () => {
    const unknown = await op().post(domains(acmeId)).send({ domain: 'other.com', verified: true });
    expect(unknown.status).toBe(400);
    expect(unknown.body.message).toMatch(/unknown field\(s\): verified/);
    expect((await op().post(domains(acmeId)).send({})).status).toBe(400);
    const before = await domainCount(acmeId);
    const dup = await op().post(domains(acmeId)).send({ domain: 'ACME.COM' });
    expect(dup.status).toBe(409);
    expect(dup.body.code).toBe('conflict');
    expect(await domainCount(acmeId)).toBe(before);
  });

  it('lets a second tenant add a domain another tenant has added', async () => {
    expect((await op().post(domains(globexId)).send({ domain: 'acme.com' })).status).toBe(201);
  });

  it('answers 404 for unknown tenants, non-UUID ids and unknown domains', async () => {
    expect((await op().get(domains('00000000-0000-4000-8000-000000000000'))).status).toBe(404);
    expect(
      (await op().post(domains('00000000-0000-4000-8000-000000000000')).send({ domain: 'x.com' })).status,
    ).toBe(404);
    expect((await op().get(`${domains(acmeId)}/not-a-uuid`)).status).toBe(404);
    expect((await op().get(`${domains(acmeId)}/00000000-0000-4000-8000-000000000000`)).status).toBe(404);
  });

  it('deletes a domain with an audit event', async () => {
    const added = await add(acmeId, 'to-delete.com');
    expect((await op().delete(`${domains(acmeId)}/${added.id}`)).status).toBe(204);
    expect((await op().get(`${domains(acmeId)}/${added.id}`)).status).toBe(404);
    expect((await op().delete(`${domains(acmeId)}/${added.id}`)).status).toBe(404);
    const rows = await t.db.withTenant(acmeId, (em) =>
      em.query(`SELECT before FROM audit_events WHERE action = 'domain.deleted'`),
    );
    expect(rows).toEqual([
      { before: { domain: 'to-delete.com', verified_at: null, verification_method: null } },
    ]);
  });
});

describe('admin API: domains across tenants', () => {
  it("answers 404 for another tenant's domain id under this tenant's path, and changes nothing", async () => {
    const acmeDomain = await add(acmeId, 'cross.acme.com');
    dns.setTxt(acmeDomain.verification.name, [acmeDomain.verification.value]);
    const path = `${domains(globexId)}/${acmeDomain.id}`;
    expect((await op().get(path)).status).toBe(404);
    expect((await op().post(`${path}/verify`)).status).toBe(404);
    expect((await op().delete(path)).status).toBe(404);
    const still = await op().get(`${domains(acmeId)}/${acmeDomain.id}`);
    expect(still.body.status).toBe('pending');
  });

  it("answers 404 to a tenant admin of Acme on Globex's domains", async () => {
    const globexDomain = await add(globexId, 'globex.com');
    const before = await domainCount(globexId);
    expect((await acmeAdmin().get(domains(globexId))).status).toBe(404);
    expect((await acmeAdmin().post(domains(globexId)).send({ domain: 'evil.com' })).status).toBe(404);
    expect((await acmeAdmin().get(`${domains(globexId)}/${globexDomain.id}`)).status).toBe(404);
    expect((await acmeAdmin().post(`${domains(globexId)}/${globexDomain.id}/verify`)).status).toBe(404);
    expect((await acmeAdmin().delete(`${domains(globexId)}/${globexDomain.id}`)).status).toBe(404);
    expect(await domainCount(globexId)).toBe(before);
  });

  it('lets a tenant admin manage their own domains', async () => {
    const res = await acmeAdmin().post(domains(acmeId)).send({ domain: 'self.acme.com' });
    expect(res.status).toBe(201);
    const rows = await t.db.withTenant(acmeId, (em) =>
      em.query(`SELECT actor_type, actor_id FROM audit_events WHERE target_id = $1`, [res.body.id]),
    );
    expect(rows).toEqual([{ actor_type: 'user', actor_id: 'u-acme-admin' }]);
  });
});
