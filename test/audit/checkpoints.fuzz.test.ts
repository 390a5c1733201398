import { isDeepStrictEqual } from 'node:util';
import fc from 'fast-check';
import type { JWK } from 'jose';
import { recordAudit } from '../../src/audit/audit.service.js';
import type { AuditEventView } from '../../src/audit/audit-events.service.js';
import type { CheckpointView } from '../../src/audit/checkpoint-verify.js';
import { verifyTrailOffline } from '../../src/audit/offline-verify.js';
import { buildAdminTestApp, type AdminTestApp } from '../support/admin.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { fuzzRuns, fuzzSeed } from '../scim/hardening-support.js';

/**
 * Properties of the checkpoint surfaces (issue 12):
 * - the offline verifier (what `gatehouse audit verify --checkpoints` runs)
 *   reports any single change to any field of any event or checkpoint as
 *   the admin API showed them — so a server (or database) that lies about
 *   one field cannot pass;
 * - POST/GET …/audit-checkpoints answer any body or query with a 2xx or a 4xx
 *   `{code, message}`, never a 5xx, and a refused request writes no checkpoint.
 */
let t: TestDatabase;
let a: AdminTestApp;
let tenantId: string;
let events: AuditEventView[];
let checkpoints: CheckpointView[];
let publicJwk: JWK;

beforeAll(async () => {
  t = await createTestDatabase();
  a = buildAdminTestApp(t);
  tenantId = await a.createTenant('fuzzed', 'Fuzzed');
  for (let i = 2; i <= 4; i += 1)
    await t.db.withTenant(tenantId, (em) =>
      recordAudit(em, tenantId, {
        actor: { type: 'operator', id: 'operator' },
        action: `e.${i}`,
        target: { type: 'thing', id: `t${i}` },
        requestId: `r-${i}`,
        sourceIp: '192.0.2.1',
        before: { n: i - 1, tags: ['a'] },
        after: { n: i, tags: ['a', 'b'], nested: { ok: true } },
      }),
    );
  await a.op().post(`/admin/v1/tenants/${tenantId}/audit-checkpoints`).send({}).expect(201);
  events = (await a.op().get(`/admin/v1/tenants/${tenantId}/audit-events?order=asc`).expect(200)).body.data;
  checkpoints = (await a.op().get(`/admin/v1/tenants/${tenantId}/audit-checkpoints`).expect(200)).body.data;
  publicJwk = (await a.op().get('/admin/v1/audit-checkpoint-key').expect(200)).body.keys[0];
});
afterAll(() => t.close());

const json: fc.Arbitrary<unknown> = fc.oneof(
  fc.string({ maxLength: 20 }),
  fc.integer(),
  fc.boolean(),
  fc.constant(null),
  fc.dictionary(fc.string({ maxLength: 5 }), fc.oneof(fc.string({ maxLength: 5 }), fc.integer())),
);

const EVENT_FIELDS = [
  'seq',
  'id',
  'occurred_at',
  'actor',
  'action',
  'target',
  'request_id',
  'source_ip',
  'before',
  'after',
  'prev_hash',
  'hash',
  'hash_input',
] as const;
const CHECKPOINT_FIELDS = ['tenant_id', 'seq', 'hash', 'created_at', 'signature', 'key_id'] as const;

/** A copy of `value` with `field` set to `next` (a nested path for actor/target). */
function withField<T extends object>(value: T, field: string, next: unknown): T {
  return { ...value, [field]: next };
}

describe('checkpoint surfaces (property)', () => {
  it('the offline verifier passes the genuine trail and reports any single changed field', async () => {
    expect(await verifyTrailOffline({ tenantId, events, checkpoints, publicJwk })).toMatchObject({
      valid: true,
      checked: 4,
      checkpoints_checked: 1,
    });
    const change = fc.oneof(
      fc.record({
        kind: fc.constant('event' as const),
        index: fc.integer({ min: 0, max: events.length - 1 }),
        field: fc.constantFrom(...EVENT_FIELDS),
        next: fc.oneof(
          json,
          fc.record({ type: fc.string({ maxLength: 8 }), id: fc.string({ maxLength: 8 }) }),
        ),
      }),
      fc.record({
        kind: fc.constant('checkpoint' as const),
        index: fc.constant(0),
        field: fc.constantFrom(...CHECKPOINT_FIELDS),
        next: json,
      }),
    );
    await fc.assert(
      fc.asyncProperty(change, async ({ kind, index, field, next }) => {
        const list = (kind === 'event' ? [...events] : [...checkpoints]) as unknown as Record<
          string,
          unknown
        >[];
        const original = list[index]!;
        fc.pre(!isDeepStrictEqual(original[field], next));
        list[index] = withField(original, field, next);
        const result = await verifyTrailOffline({
          tenantId,
          events: (kind === 'event' ? list : events) as unknown as AuditEventView[],
          checkpoints: (kind === 'checkpoint' ? list : checkpoints) as unknown as CheckpointView[],
          publicJwk,
        }).catch((error: unknown) => ({ valid: `threw ${String(error)}` }));
        expect({ kind, field, valid: result.valid }).toEqual({ kind, field, valid: false });
      }),
      { numRuns: fuzzRuns(300), seed: fuzzSeed(1213) },
    );
  });

  it('answers any body or query on the checkpoint routes with 2xx or a 4xx {code, message}, writing nothing on 4xx', async () => {
    const count = async () =>
      (
        await t.db.withTenant(tenantId, (em) =>
          em.query<{ n: number }[]>('SELECT count(*)::int AS n FROM audit_checkpoints'),
        )
      )[0]!.n;
    const before = await count();
    const query = fc.dictionary(
      fc.oneof(fc.constantFrom('limit', 'offset', '__proto__', 'constructor'), fc.string({ maxLength: 8 })),
      fc.oneof(fc.string({ maxLength: 12 }), fc.integer().map(String)),
    );
    await fc.assert(
      fc.asyncProperty(json, query, async (body, q) => {
        const post = await a
          .op()
          .post(`/admin/v1/tenants/${tenantId}/audit-checkpoints`)
          .set('content-type', 'application/json')
          .send(JSON.stringify(body));
        expect(post.status).toBeLessThan(500);
        if (post.status >= 400)
          expect(post.body).toEqual({
            code: expect.any(String),
            message: expect.any(String),
            request_id: expect.any(String),
          });
        else expect(post.status).toBe(200); // the head is unchanged: the existing checkpoint
        const list = await a.op().get(`/admin/v1/tenants/${tenantId}/audit-checkpoints`).query(q);
        expect(list.status).toBeLessThan(500);
        if (list.status >= 400) expect(list.body).toMatchObject({ code: 'bad_request' });
      }),
      { numRuns: Math.min(fuzzRuns(40), 300), seed: fuzzSeed(1214) },
    );
    expect(await count()).toBe(before);
  });
});
