/**
 * GET /admin/v1/tenants/{id}/audit-events?actor_id=&target_id= (issue 13 follow-up): the portal's
 * actor and target filters on the admin API, exact ids, keyset paging unchanged, validated as the
 * portal validates them, and never a way into another tenant's trail.
 */
import fc from 'fast-check';
import { fuzzRuns, fuzzSeed } from '../scim/hardening-support.js';
import { buildAdminTestApp, type AdminTestApp } from '../support/admin.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';

interface Seeded {
  seq: number;
  actor: string | null;
  target: string | null;
  action: string;
}

interface EventBody {
  seq: number;
  action: string;
  actor: { id: string | null };
  target: { type: string; id: string | null } | null;
}

let t: TestDatabase;
let a: AdminTestApp;
let acmeId: string;
let globexId: string;
/** Acme's whole trail as inserted, oldest first: the model the answers are checked against. */
const trail: Seeded[] = [];

const ACTORS = ['u-alice', 'u-bob', 'Ünïcode actor', null] as const;
const TARGETS = ['usr_1', 'usr_2', 'grp_1', null] as const;

beforeAll(async () => {
  t = await createTestDatabase();
  a = buildAdminTestApp(t);
  acmeId = await a.createTenant('acme-filters', 'Acme');
  globexId = await a.createTenant('globex-filters', 'Globex');
  // 48 events cycling through every actor × target pair (null included), after tenant.created (seq 1).
  const rows = Array.from({ length: 48 }, (_, i) => ({
    actor: ACTORS[i % 4]!,
    target: TARGETS[Math.floor(i / 4) % 4]!,
    action: i % 3 === 0 ? 'user.updated' : 'group.updated',
  }));
  await t.db.withTenant(acmeId, async (em) => {
    for (const r of rows)
      await em.query(
        `INSERT INTO audit_events (tenant_id, actor_type, actor_id, action, target_type, target_id)
         VALUES ($1, 'scim', $2, $3, $4, $5)`,
        [acmeId, r.actor, r.action, r.target === null ? null : 'user', r.target],
      );
  });
  // Globex has events by the same actor about the same target: they must never show in Acme's answers.
  await t.db.withTenant(globexId, (em) =>
    em.query(
      `INSERT INTO audit_events (tenant_id, actor_type, actor_id, action, target_type, target_id)
       VALUES ($1, 'scim', 'u-alice', 'user.updated', 'user', 'usr_1')`,
      [globexId],
    ),
  );
  const all = await a.op().get(`/admin/v1/tenants/${acmeId}/audit-events?order=asc&limit=100`);
  for (const e of all.body.data as EventBody[])
    trail.push({ seq: e.seq, actor: e.actor.id, target: e.target?.id ?? null, action: e.action });
});
afterAll(() => t.close());

const events = (tenantId: string) => `/admin/v1/tenants/${tenantId}/audit-events`;
const seqs = (body: { data: EventBody[] }) => body.data.map((e) => e.seq);
const newestFirst = (keep: (e: Seeded) => boolean) =>
  trail
    .filter(keep)
    .map((e) => e.seq)
    .reverse();

describe('admin API: audit events filtered by actor and target', () => {
  it('seeded 49 events (tenant.created and 48 by four actors about four targets)', () => {
    expect(trail).toHaveLength(49);
  });

  it('answers only the events of one actor, of one target, and of both', async () => {
    const byActor = await a.op().get(events(acmeId)).query({ actor_id: 'u-alice', limit: 100 });
    expect(byActor.status).toBe(200);
    expect(seqs(byActor.body)).toEqual(newestFirst((e) => e.actor === 'u-alice'));
    expect(byActor.body).toMatchObject({ total: 12, total_is_capped: false, next_cursor: null });

    const byTarget = await a.op().get(events(acmeId)).query({ target_id: 'usr_2', limit: 100 });
    expect(seqs(byTarget.body)).toEqual(newestFirst((e) => e.target === 'usr_2'));
    expect(byTarget.body.total).toBe(12);

    const both = await a
      .op()
      .get(events(acmeId))
      .query({ actor_id: 'Ünïcode actor', target_id: 'grp_1', action: 'user.*' });
    expect(seqs(both.body)).toEqual(
      newestFirst((e) => e.actor === 'Ünïcode actor' && e.target === 'grp_1' && e.action === 'user.updated'),
    );
    expect(both.body.data.length).toBeGreaterThan(0);
  });

  it('matches ids exactly: another case, a prefix or an unknown id answers nothing', async () => {
    for (const actor_id of ['U-ALICE', 'u-', 'u-alice2', 'u-carol']) {
      const res = await a.op().get(events(acmeId)).query({ actor_id });
      expect(res.body).toMatchObject({ total: 0, data: [], next_cursor: null });
    }
    // Surrounding blanks are trimmed, as the portal's filter form trims them.
    const padded = await a.op().get(events(acmeId)).query({ target_id: '  usr_1 ', limit: 100 });
    expect(padded.body.total).toBe(12);
  });

  it('pages a filtered list by next_cursor in both orders, each event once', async () => {
    for (const order of ['desc', 'asc'] as const) {
      const seen: number[] = [];
      let cursor: string | null = null;
      let pages = 0;
      do {
        const res = await a
          .op()
          .get(events(acmeId))
          .query({ actor_id: 'u-bob', order, limit: 5, ...(cursor !== null && { cursor }) });
        expect(res.status).toBe(200);
        expect(res.body.total).toBe(12);
        expect(res.body.data.every((e: EventBody) => e.actor.id === 'u-bob')).toBe(true);
        seen.push(...seqs(res.body));
        cursor = res.body.next_cursor as string | null;
      } while (cursor !== null && ++pages < 10);
      const expected = newestFirst((e) => e.actor === 'u-bob');
      expect(seen).toEqual(order === 'desc' ? expected : [...expected].reverse());
    }
  });

  it.each([
    ['an empty actor_id', { actor_id: '' }, /^actor_id:/],
    ['a blank target_id', { target_id: '   ' }, /^target_id:/],
    ['an actor_id over 200 characters', { actor_id: 'a'.repeat(201) }, /^actor_id:/],
    // Refused before the router by the shared query guard (src/http), which names the NUL.
    ['a target_id with NUL', { target_id: 'usr_1\u0000' }, /NUL/],
    ['an actor_id sent twice', 'actor_id=u-alice&actor_id=u-bob', /^actor_id:/],
  ])('refuses %s with 400 {code, message}', async (_, query, message) => {
    const res = await a.op().get(events(acmeId)).query(query);
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ code: 'bad_request', message: expect.stringMatching(message) });
  });

  it("answers 404 to Acme's tenant admin filtering Globex's trail, and never shows Globex's events to Acme", async () => {
    const acmeAdmin = a.tenantAdmin(acmeId, 'u-acme-admin');
    const cross = await acmeAdmin.get(events(globexId)).query({ actor_id: 'u-alice', target_id: 'usr_1' });
    expect(cross.status).toBe(404);
    expect(cross.body).toMatchObject({ code: 'not_found' });
    const own = await acmeAdmin.get(events(acmeId)).query({ actor_id: 'u-alice', target_id: 'usr_1' });
    expect(own.status).toBe(200);
    expect(seqs(own.body)).toEqual(newestFirst((e) => e.actor === 'u-alice' && e.target === 'usr_1'));
    // The operator sees Globex's one matching event under Globex only.
    const globex = await a.op().get(events(globexId)).query({ actor_id: 'u-alice', target_id: 'usr_1' });
    expect(globex.body.total).toBe(1);
  });

  it('property: any actor_id, target_id, action, order and limit answers 400 or exactly the events matching every filter', async () => {
    const knownOrAny = (known: readonly (string | null)[]) =>
      fc.option(
        fc.oneof(
          fc.constantFrom(...known.filter((k): k is string => k !== null)),
          fc.constantFrom('', ' ', 'u-alice ', '\tusr_1', 'x'.repeat(200), 'x'.repeat(201), 'usr_1\u0000'),
          fc.string({ unit: 'binary', maxLength: 40 }),
          fc.string({ unit: 'binary-ascii', maxLength: 220 }),
        ),
        { nil: undefined },
      );
    const action = fc.option(fc.constantFrom('user.updated', 'group.*', 'user', 'tenant.*', '*'), {
      nil: undefined,
    });
    const valid = (v: string | undefined) =>
      v === undefined || (v.trim().length >= 1 && v.trim().length <= 200 && !v.includes('\u0000'));
    const actionMatches = (act: string | undefined, e: Seeded) =>
      act === undefined || (act.endsWith('.*') ? e.action.startsWith(act.slice(0, -1)) : e.action === act);

    let nonEmptyAnswers = 0;
    await fc.assert(
      fc.asyncProperty(
        knownOrAny(ACTORS),
        knownOrAny(TARGETS),
        action,
        fc.constantFrom('asc', 'desc'),
        fc.integer({ min: 1, max: 60 }),
        async (actor_id, target_id, act, order, limit) => {
          const query = {
            order,
            limit,
            ...(actor_id !== undefined && { actor_id }),
            ...(target_id !== undefined && { target_id }),
            ...(act !== undefined && { action: act }),
          };
          const res = await a.op().get(events(acmeId)).query(query);
          expect(res.status).toBeLessThan(500);
          const acceptable = valid(actor_id) && valid(target_id) && act !== '*';
          if (!acceptable) {
            expect(res.status).toBe(400);
            expect(res.body).toMatchObject({ code: 'bad_request', message: expect.any(String) });
            return;
          }
          expect(res.status).toBe(200);
          // Accepted ⇒ exactly the first `limit` events of the model matching every given filter.
          const matching = newestFirst(
            (e) =>
              (actor_id === undefined || e.actor === actor_id.trim()) &&
              (target_id === undefined || e.target === target_id.trim()) &&
              actionMatches(act, e),
          );
          const ordered = order === 'desc' ? matching : [...matching].reverse();
          expect(seqs(res.body)).toEqual(ordered.slice(0, limit));
          expect(res.body.total).toBe(matching.length);
          expect(res.body.next_cursor === null).toBe(matching.length <= limit);
          if (matching.length > 0) nonEmptyAnswers++;
        },
      ),
      { seed: fuzzSeed(1314), numRuns: fuzzRuns(80) },
    );
    // The generator reaches real matches, not only refusals and empty pages.
    expect(nonEmptyAnswers).toBeGreaterThan(0);
  });
});
