import fc from 'fast-check';
import { fuzzRuns, fuzzSeed } from '../scim/hardening-support.js';
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
  // Acme's trail: tenant.created, domain.added ×2, role_mapping.created, domain.deleted.
  const d1 = await op().post(`/admin/v1/tenants/${acmeId}/domains`).send({ domain: 'acme.com' });
  await op().post(`/admin/v1/tenants/${acmeId}/domains`).send({ domain: 'acme.org' });
  await op()
    .post(`/admin/v1/tenants/${acmeId}/role-mappings`)
    .send({ group: { display_name: 'Eng' }, role: 'admin' });
  await op().delete(`/admin/v1/tenants/${acmeId}/domains/${d1.body.id}`);
});
afterAll(() => t.close());

const op = () => a.op();
const events = (tenantId: string, query = '') => `/admin/v1/tenants/${tenantId}/audit-events${query}`;
const actionsOf = (body: { data: { action: string }[] }) => body.data.map((e) => e.action);

describe('admin API: audit events', () => {
  it('lists the trail newest first, with actor, target, request id and hashes', async () => {
    const res = await op().get(events(acmeId));
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ total: 5, limit: 25, offset: 0 });
    expect(actionsOf(res.body)).toEqual([
      'domain.deleted',
      'role_mapping.created',
      'domain.added',
      'domain.added',
      'tenant.created',
    ]);
    const [latest] = res.body.data;
    expect(latest).toMatchObject({
      seq: 5,
      actor: { type: 'operator', id: 'operator' },
      target: { type: 'domain', id: expect.any(String) },
      before: expect.objectContaining({ domain: 'acme.com' }),
      after: null,
      request_id: expect.stringMatching(/^[0-9a-f-]{36}$/),
      hash: expect.stringMatching(/^[0-9a-f]{64}$/),
    });
    expect(latest.prev_hash).toBe(res.body.data[1].hash);
  });

  it('paginates, oldest first on request', async () => {
    const page = await op().get(events(acmeId, '?order=asc&limit=2&offset=1'));
    expect(page.body).toMatchObject({ total: 5, limit: 2, offset: 1 });
    expect(page.body.data.map((e: { seq: number }) => e.seq)).toEqual([2, 3]);
    const past = await op().get(events(acmeId, '?offset=10'));
    expect(past.body).toMatchObject({ total: 5, data: [] });
  });

  it('filters by exact action and by prefix', async () => {
    const exact = await op().get(events(acmeId, '?action=domain.added'));
    expect(exact.body.total).toBe(2);
    expect(actionsOf(exact.body)).toEqual(['domain.added', 'domain.added']);
    const prefix = await op().get(events(acmeId, '?action=domain.*'));
    expect(actionsOf(prefix.body)).toEqual(['domain.deleted', 'domain.added', 'domain.added']);
    expect((await op().get(events(acmeId, '?action=domain'))).body.total).toBe(0);
    // `_` is a literal in a prefix, not a LIKE wildcard.
    expect((await op().get(events(acmeId, '?action=role_mapping.*'))).body.total).toBe(1);
    expect((await op().get(events(acmeId, '?action=rolexmapping.*'))).body.total).toBe(0);
  });

  it('filters by time: since inclusive, until exclusive', async () => {
    const tenantId = (await op().post('/admin/v1/tenants').send({ slug: 'timeline', name: 'Timeline' })).body
      .id;
    await t.db.withTenant(tenantId, async (em) => {
      for (const [action, at] of [
        ['x.jan', '2024-01-01T00:00:00Z'],
        ['x.jun', '2024-06-01T00:00:00Z'],
        ['x.next', '2025-01-01T00:00:00Z'],
      ]) {
        await em.query(
          `INSERT INTO audit_events (tenant_id, occurred_at, actor_type, action, prev_hash, hash)
           VALUES ($1, $2, 'system', $3, '', '')`,
          [tenantId, at, action],
        );
      }
    });
    const between = await op().get(
      events(tenantId, '?since=2024-06-01T00:00:00Z&until=2025-01-01T00:00:00Z'),
    );
    expect(actionsOf(between.body)).toEqual(['x.jun']);
    const withOffset = await op().get(events(tenantId, '?since=2024-05-31T21:00:00-02:00&action=x.*'));
    expect(actionsOf(withOffset.body)).toEqual(['x.next', 'x.jun']);
    expect((await op().get(events(tenantId, '/verify'))).body).toMatchObject({
      valid: true,
      checked: 4,
      first_broken_seq: null,
    });
  });

  it.each([
    ['?since=yesterday', /^since:/],
    ['?until=2024-13-01T00:00:00Z', /^until:/],
    ['?action=domain.%25', /^action:/],
    ['?action=*', /^action:/],
    ['?limit=101', /^limit:/],
    ['?order=random', /^order:/],
  ])('refuses %s with 400', async (query, message) => {
    const res = await op().get(events(acmeId, query));
    expect(res.status).toBe(400);
    expect(res.body.message).toMatch(message);
  });

  it('verifies the chain, and reports the first broken event after tampering', async () => {
    expect((await op().get(events(acmeId, '/verify'))).body).toMatchObject({
      valid: true,
      checked: 5,
      first_broken_seq: null,
    });
    await t.asOwner(`
      BEGIN;
      SET LOCAL app.tenant_id = '${globexId}';
      ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only;
      UPDATE audit_events SET after = '{"domain": "evil.com"}' WHERE tenant_id = '${globexId}' AND seq = 1;
      ALTER TABLE audit_events ENABLE TRIGGER audit_events_append_only;
      COMMIT;`);
    expect((await op().get(events(globexId, '/verify'))).body).toMatchObject({
      valid: false,
      checked: 0,
      first_broken_seq: 1,
    });
    expect((await op().get(events(acmeId, '/verify'))).body.valid).toBe(true);
  });

  it("never shows another tenant's events, and answers 404 to a tenant admin of Acme on Globex", async () => {
    const globex = await op().get(events(globexId));
    expect(actionsOf(globex.body)).toEqual(['tenant.created']);
    const admin = (path: string) => a.tenantAdmin(acmeId, 'u-acme-admin').get(path);
    expect((await admin(events(globexId))).status).toBe(404);
    expect((await admin(events(globexId, '/verify'))).status).toBe(404);
    expect((await admin(events(acmeId))).body.total).toBe(5);
    expect((await admin(events(acmeId, '/verify'))).body.valid).toBe(true);
  });

  it("keeps a deleted tenant's trail readable by the operator; unknown tenants are 404", async () => {
    const id = (await op().post('/admin/v1/tenants').send({ slug: 'gone', name: 'Gone' })).body.id;
    expect((await op().delete(`/admin/v1/tenants/${id}`)).status).toBe(204);
    expect(actionsOf((await op().get(events(id))).body)).toEqual(['tenant.deleted', 'tenant.created']);
    expect((await op().get(events(id, '/verify'))).body).toMatchObject({ valid: true, checked: 2 });
    expect((await op().get(events('00000000-0000-4000-8000-000000000000'))).status).toBe(404);
  });
});

describe('admin API: audit events paged by cursor (issue 13)', () => {
  const cursorOf = (order: string, seq: number) => Buffer.from(`${order}.${seq}`).toString('base64url');
  const seqs = (body: { data: { seq: number }[] }) => body.data.map((e) => e.seq);
  let pager: string;

  beforeAll(async () => {
    pager = (await op().post('/admin/v1/tenants').send({ slug: 'pager', name: 'Pager' })).body.id;
    await t.db.withTenant(pager, (em) =>
      em.query(
        `INSERT INTO audit_events (tenant_id, actor_type, action)
         SELECT $1, 'system', 'x.' || i FROM generate_series(1, 60) AS i`,
        [pager],
      ),
    );
  });

  const walk = async (order: 'asc' | 'desc', appendAfterFirst: boolean) => {
    const seen: number[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const res = await op().get(
        events(pager, `?order=${order}&limit=25${cursor === null ? '' : `&cursor=${cursor}`}`),
      );
      expect(res.status).toBe(200);
      seen.push(...seqs(res.body));
      cursor = res.body.next_cursor as string | null;
      if (pages++ === 0 && appendAfterFirst)
        await t.db.withTenant(pager, (em) =>
          em.query(
            `INSERT INTO audit_events (tenant_id, actor_type, action) VALUES ($1, 'system', 'x.late')`,
            [pager],
          ),
        );
    } while (cursor !== null && pages < 10);
    return seen;
  };

  it('walks the trail by next_cursor: an event appended meanwhile neither repeats nor skips a row', async () => {
    // tenant.created is seq 1, then the 60 inserted; seq 62 is appended after the first page.
    const newestFirst = await walk('desc', true);
    expect(newestFirst).toEqual(Array.from({ length: 61 }, (_, i) => 61 - i));
    const oldestFirst = await walk('asc', false);
    expect(oldestFirst).toEqual(Array.from({ length: 62 }, (_, i) => i + 1));
  });

  it('answers the total of the filters, exact on the last page and across cursor pages', async () => {
    const first = await op().get(events(pager, '?limit=25'));
    expect(first.body).toMatchObject({ total: 62, total_is_capped: false, limit: 25, offset: 0 });
    const next = await op().get(events(pager, `?limit=25&cursor=${first.body.next_cursor}`));
    expect(next.body).toMatchObject({ total: 62, total_is_capped: false });
    expect(seqs(next.body)[0]).toBe(seqs(first.body)[24]! - 1);
    const last = await op().get(events(pager, '?limit=25&offset=50'));
    expect(last.body).toMatchObject({ total: 62, next_cursor: null });
    expect(seqs(last.body)).toHaveLength(12);
  });

  it('counts a long trail only up to 10,000 and says it stopped there', async () => {
    const long = (await op().post('/admin/v1/tenants').send({ slug: 'long-trail', name: 'Long' })).body.id;
    await t.db.withTenant(long, (em) =>
      em.query(
        `INSERT INTO audit_events (tenant_id, actor_type, action)
         SELECT $1, 'system', 'bulk.event' FROM generate_series(1, 10050) AS i`,
        [long],
      ),
    );
    const page = await op().get(events(long, '?limit=3'));
    expect(page.body).toMatchObject({ total: 10_000, total_is_capped: true });
    expect(seqs(page.body)).toEqual([10051, 10050, 10049]);
    const filtered = await op().get(events(long, '?action=tenant.*'));
    expect(filtered.body).toMatchObject({ total: 1, total_is_capped: false, next_cursor: null });
  });

  it.each([
    [
      'a cursor this API did not return',
      `?cursor=${Buffer.from('drop table').toString('base64url')}`,
      /^cursor:/,
    ],
    ['a cursor of the other order', `?order=asc&cursor=${cursorOf('desc', 10)}`, /^cursor:/],
    ['a cursor with an offset', `?offset=5&cursor=${cursorOf('desc', 10)}`, /^offset:/],
    ['an over-long cursor', `?cursor=${'A'.repeat(65)}`, /^cursor:/],
  ])('refuses %s with 400', async (_, query, message) => {
    const res = await op().get(events(pager, query));
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ code: 'bad_request', message: expect.stringMatching(message) });
  });

  it('property: any cursor and order answers 400 or a page strictly past the cursor, never 5xx', async () => {
    const order = fc.constantFrom('asc', 'desc', 'sideways');
    const cursor = fc.oneof(
      fc.string({ maxLength: 80 }),
      fc
        .tuple(fc.constantFrom('asc', 'desc', 'up'), fc.oneof(fc.nat(200), fc.integer(), fc.string()))
        .map(([o, n]) => Buffer.from(`${o}.${String(n)}`).toString('base64url')),
    );
    await fc.assert(
      fc.asyncProperty(order, cursor, fc.integer({ min: 1, max: 30 }), async (o, c, limit) => {
        const res = await op().get(events(pager, '')).query({ order: o, cursor: c, limit });
        expect(res.status).toBeLessThan(500);
        if (res.status !== 200) {
          expect(res.status).toBe(400);
          expect(res.body).toMatchObject({ code: 'bad_request', message: expect.any(String) });
          return;
        }
        // Accepted ⇒ the cursor named this order and a seq; the page lies past it, in order, within the limit.
        const [named, at] = Buffer.from(c, 'base64url').toString('utf8').split('.');
        expect(named).toBe(o);
        const page = seqs(res.body);
        expect(page.length).toBeLessThanOrEqual(limit);
        for (const [i, seq] of page.entries()) {
          expect(o === 'asc' ? seq > Number(at) : seq < Number(at)).toBe(true);
          if (i > 0) expect(o === 'asc' ? seq > page[i - 1]! : seq < page[i - 1]!).toBe(true);
        }
      }),
      { seed: fuzzSeed(1313), numRuns: fuzzRuns(60) },
    );
  });
});
