import { resolveTenantByEmailDomain } from '../../src/db/resolvers.js';
import { createTxtResolver, type TxtResolver } from '../../src/tenants/dns-verifier.js';
import { verifyDomain } from '../../src/tenants/domains.service.js';
import { buildAdminTestApp, type AdminTestApp } from '../support/admin.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { startDnsServer, type TestDnsServer } from '../support/dns-server.js';

let t: TestDatabase;
let dns: TestDnsServer;
let a: AdminTestApp;
let acmeId: string;
let malloryId: string;

beforeAll(async () => {
  t = await createTestDatabase();
  dns = await startDnsServer();
  a = buildAdminTestApp(t, { GATEHOUSE_DNS_SERVERS: dns.address });
  acmeId = await a.createTenant('acme', 'Acme');
  malloryId = await a.createTenant('mallory', 'Mallory');
});
afterEach(() => dns.clear());
afterAll(async () => {
  await dns.close();
  await t.close();
});

const op = () => a.op();

interface Added {
  id: string;
  verification: { name: string; value: string };
}

async function add(tenantId: string, domain: string): Promise<Added> {
  const res = await op().post(`/admin/v1/tenants/${tenantId}/domains`).send({ domain });
  expect(res.status).toBe(201);
  return res.body;
}
const verify = (tenantId: string, d: Added) =>
  op().post(`/admin/v1/tenants/${tenantId}/domains/${d.id}/verify`);

async function verifiedTenants(domain: string): Promise<string[]> {
  const rows = await t.asOwner<{ tenant_id: string }>(
    'SELECT tenant_id FROM domains WHERE domain = $1 AND verified_at IS NOT NULL',
    [domain],
  );
  return rows.map((r) => r.tenant_id);
}

describe('a verified domain belongs to one tenant', () => {
  it('refuses (409) a second tenant verifying a domain another holds, even with a correct record', async () => {
    const acme = await add(acmeId, 'acme.com');
    dns.setTxt(acme.verification.name, [acme.verification.value]);
    expect((await verify(acmeId, acme)).status).toBe(200);

    const mallory = await add(malloryId, 'acme.com');
    // Mallory controls the record too (say, after a DNS takeover): still refused.
    dns.setTxt(mallory.verification.name, [mallory.verification.value, acme.verification.value]);
    const res = await verify(malloryId, mallory);
    expect(res.status).toBe(409);
    expect(res.body).toMatchObject({
      code: 'conflict',
      message: 'acme.com is already verified by another tenant',
    });
    expect(await verifiedTenants('acme.com')).toEqual([acmeId]);
    expect(await resolveTenantByEmailDomain(t.db, 'acme.com')).toBe(acmeId);
  });

  it('refuses the operator verifying it manually for the second tenant too', async () => {
    const list = await op().get(`/admin/v1/tenants/${malloryId}/domains?domain=acme.com`);
    const [mallory] = list.body.data;
    const res = await op()
      .post(`/admin/v1/tenants/${malloryId}/domains/${mallory.id}/verify`)
      .send({ method: 'manual', reason: 'asked nicely' });
    expect(res.status).toBe(409);
    expect(await verifiedTenants('acme.com')).toEqual([acmeId]);
  });

  it('lets the second tenant verify once the first has removed the domain', async () => {
    const [acme] = (await op().get(`/admin/v1/tenants/${acmeId}/domains?domain=acme.com`)).body.data;
    expect((await op().delete(`/admin/v1/tenants/${acmeId}/domains/${acme.id}`)).status).toBe(204);
    const [mallory] = (await op().get(`/admin/v1/tenants/${malloryId}/domains?domain=acme.com`)).body.data;
    dns.setTxt(mallory.verification.name, [mallory.verification.value]);
    expect((await verify(malloryId, mallory)).status).toBe(200);
    expect(await verifiedTenants('acme.com')).toEqual([malloryId]);
  });

  it('holds when two tenants race: the unique index on verified domains answers 409', async () => {
    const acme = await add(acmeId, 'race.example');
    const mallory = await add(malloryId, 'race.example');
    dns.setTxt(acme.verification.name, [acme.verification.value, mallory.verification.value]);
    const real = createTxtResolver({ servers: [dns.address], timeoutMs: 1000 });
    // While Mallory's lookup is in flight (after the resolver check passed), Acme's verification commits.
    const racing: TxtResolver = {
      async lookupTxt(name) {
        expect((await verify(acmeId, acme)).status).toBe(200);
        return real.lookupTxt(name);
      },
    };
    const ctx = { actor: { type: 'operator' as const, id: 'operator' } };
    await expect(
      verifyDomain(t.db, racing, malloryId, mallory.id, { method: 'dns' }, ctx),
    ).rejects.toMatchObject({
      code: 'conflict',
      message: 'race.example is already verified by another tenant',
    });
    expect(await verifiedTenants('race.example')).toEqual([acmeId]);
    const events = await t.db.withTenant(malloryId, (em) =>
      em.query(`SELECT 1 FROM audit_events WHERE action = 'domain.verified' AND target_id = $1`, [
        mallory.id,
      ]),
    );
    expect(events).toEqual([]);
  });
});
