import pg from 'pg';
import { CHANNELS } from '../../src/db/notification-bus.js';
import { scimTokenId, verifyScimTokenHash } from '../../src/scim/scim-token.js';
import { buildAdminTestApp, type AdminTestApp } from '../support/admin.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';

let t: TestDatabase;
let a: AdminTestApp;
let acmeId: string;
let globexId: string;

beforeAll(async () => {
  t = await createTestDatabase();
  a = buildAdminTestApp(t);
  acmeId = await a.createTenant('acme', 'Acme');
  globexId = await a.createTenant('globex', 'Globex');
});
afterAll(() => t.close());

const op = () => a.op();
const acmeAdmin = () => a.tenantAdmin(acmeId, 'u-acme-admin');
const tokens = (tenantId: string) => `/admin/v1/tenants/${tenantId}/scim-tokens`;

async function rows(
  tenantId: string,
): Promise<{ id: string; token_hash: string; revoked_at: Date | null }[]> {
  return t.db.withTenant(tenantId, (em) => em.query('SELECT id, token_hash, revoked_at FROM scim_tokens'));
}

describe('admin API: SCIM tokens', () => {
  let created: { id: string; token: string };

  it('creates a token shown once, with the SCIM base URL, stored argon2id-hashed', async () => {
    const res = await op().post(tokens(acmeId)).send({ description: 'Okta provisioning' });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({
      description: 'Okta provisioning',
      last_used_at: null,
      revoked_at: null,
      scim_base_url: `https://gatehouse.test/scim/v2/${acmeId}`,
    });
    expect(res.body.token).toMatch(/^gh_scim_[0-9a-f]{32}_[A-Za-z0-9_-]{43}$/);
    expect(scimTokenId(res.body.token)).toBe(res.body.id);
    created = res.body;

    const [row] = await rows(acmeId);
    expect(row?.token_hash).toMatch(/^\$argon2id\$/);
    expect(row?.token_hash).not.toContain(res.body.token);
    expect(await verifyScimTokenHash(row!.token_hash, res.body.token)).toBe(true);
  });

  it('lists metadata only: never the token nor its hash', async () => {
    const res = await op().get(tokens(acmeId));
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ total: 1, limit: 25, offset: 0 });
    expect(res.body.data).toEqual([
      {
        id: created.id,
        description: 'Okta provisioning',
        created_at: expect.any(String),
        last_used_at: null,
        revoked_at: null,
      },
    ]);
    expect(JSON.stringify(res.body)).not.toMatch(/gh_scim_|argon2/);
  });

  it('writes audit events without the secret', async () => {
    const events = await t.db.withTenant(acmeId, (em) =>
      em.query(`SELECT action, target_id, before, after FROM audit_events WHERE action LIKE 'scim_token.%'`),
    );
    expect(events).toEqual([
      {
        action: 'scim_token.created',
        target_id: created.id,
        before: null,
        after: { description: 'Okta provisioning' },
      },
    ]);
    const all = await t.db.withTenant(acmeId, (em) => em.query('SELECT before, after FROM audit_events'));
    expect(JSON.stringify(all)).not.toContain(created.token.slice(8));
    expect(a.logs()).not.toContain(created.token.slice(8));
  });

  it('revokes: revoked_at is set, the row stays listed, a second revoke changes nothing', async () => {
    const res = await op().delete(`${tokens(acmeId)}/${created.id}`);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ id: created.id, revoked_at: expect.any(String) });
    const again = await op().delete(`${tokens(acmeId)}/${created.id}`);
    expect(again.body.revoked_at).toBe(res.body.revoked_at);
    expect((await op().get(tokens(acmeId))).body.data[0].revoked_at).toBe(res.body.revoked_at);
    const events = await t.db.withTenant(acmeId, (em) =>
      em.query(`SELECT after FROM audit_events WHERE action = 'scim_token.revoked'`),
    );
    expect(events).toEqual([
      { after: { description: 'Okta provisioning', revoked_at: res.body.revoked_at } },
    ]);
  });

  it('tells every node at commit that the token was revoked (Postgres NOTIFY with the token id)', async () => {
    const listener = new pg.Client({ connectionString: t.appUrl });
    await listener.connect();
    try {
      await listener.query(`LISTEN ${CHANNELS.scimTokenRevoked}`);
      const heard = new Promise<string | undefined>((resolve) =>
        listener.on('notification', (n) => resolve(n.payload)),
      );
      const token = await op().post(tokens(acmeId)).send({ description: 'to revoke' });
      expect((await op().delete(`${tokens(acmeId)}/${token.body.id}`)).status).toBe(200);
      expect(await heard).toBe(token.body.id);
    } finally {
      await listener.end();
    }
  });

  it('defaults the description, refuses unknown fields and over-long descriptions', async () => {
    const plain = await op().post(tokens(globexId)).send({});
    expect(plain.status).toBe(201);
    expect(plain.body.description).toBe('');
    const before = (await rows(globexId)).length;
    const unknown = await op()
      .post(tokens(globexId))
      .send({ description: 'x', scopes: ['Users'] });
    expect(unknown.status).toBe(400);
    expect(unknown.body.message).toMatch(/unknown field\(s\): scopes/);
    expect(
      (
        await op()
          .post(tokens(globexId))
          .send({ description: 'x'.repeat(201) })
      ).status,
    ).toBe(400);
    expect((await op().post(tokens(globexId)).send({ description: 42 })).status).toBe(400);
    expect(await rows(globexId)).toHaveLength(before);
  });

  it("answers 404 for another tenant's token id under this tenant's path, and revokes nothing", async () => {
    const [globexToken] = await rows(globexId);
    const res = await op().delete(`${tokens(acmeId)}/${globexToken!.id}`);
    expect(res.status).toBe(404);
    expect((await op().delete(`${tokens(acmeId)}/not-a-uuid`)).status).toBe(404);
    expect((await rows(globexId))[0]?.revoked_at).toBeNull();
  });

  it("answers 404 to a tenant admin of Acme on Globex's tokens, and lets them manage Acme's", async () => {
    const [globexToken] = await rows(globexId);
    const before = (await rows(globexId)).length;
    expect((await acmeAdmin().get(tokens(globexId))).status).toBe(404);
    expect((await acmeAdmin().post(tokens(globexId)).send({ description: 'mine now' })).status).toBe(404);
    expect((await acmeAdmin().delete(`${tokens(globexId)}/${globexToken!.id}`)).status).toBe(404);
    expect(await rows(globexId)).toHaveLength(before);
    expect((await rows(globexId))[0]?.revoked_at).toBeNull();
    const own = await acmeAdmin().post(tokens(acmeId)).send({ description: 'Entra' });
    expect(own.status).toBe(201);
  });
});
