import { randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import { createLogger } from '../../src/http/logger.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { createTenant } from '../support/factories.js';

/**
 * Every line written inside a tenant's work carries `tenant_id` (issue 11,
 * "Logs"; db/tenant-context.ts): whatever logs during `withTenant` — a handler,
 * a worker — is labelled without passing the id; lines outside it are not.
 */
let t: TestDatabase;
beforeAll(async () => {
  t = await createTestDatabase();
});
afterAll(() => t.close());

function capture() {
  const lines: Record<string, unknown>[] = [];
  const raw: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) {
        raw.push(line);
        lines.push(JSON.parse(line) as Record<string, unknown>);
      }
      done();
    },
  });
  return { logger: createLogger('info', sink), lines, raw };
}

it('labels lines written inside withTenant with that tenant, across awaits, and no others', async () => {
  const { logger, lines } = capture();
  const acme = await createTenant(t.db);
  const globex = await createTenant(t.db);
  logger.info('before');
  await t.db.withTenant(acme, async (em) => {
    await em.query('SELECT 1');
    logger.child({ component: 'worker' }).info('inside acme');
    await new Promise((r) => setTimeout(r, 5));
    logger.info('still acme after a timer');
  });
  // Two tenants' work interleaved: each line keeps its own tenant.
  await Promise.all([
    t.db.withTenant(acme, async () => {
      await new Promise((r) => setTimeout(r, 10));
      logger.info('acme again');
    }),
    t.db.withTenant(globex, async () => {
      logger.info('globex');
      await new Promise((r) => setTimeout(r, 20));
      logger.info('globex later');
    }),
  ]);
  logger.info('after');
  const tenantOf = (msg: string) => lines.find((l) => l.msg === msg)?.tenant_id;
  expect(tenantOf('before')).toBeUndefined();
  expect(tenantOf('inside acme')).toBe(acme);
  expect(tenantOf('still acme after a timer')).toBe(acme);
  expect(tenantOf('acme again')).toBe(acme);
  expect(tenantOf('globex')).toBe(globex);
  expect(tenantOf('globex later')).toBe(globex);
  expect(tenantOf('after')).toBeUndefined();
});

it('keeps a tenant_id the line names itself', async () => {
  const { logger, lines, raw } = capture();
  const acme = await createTenant(t.db);
  const named = randomUUID();
  await t.db.withTenant(acme, async () => {
    logger.info({ tenant_id: named }, 'explicit');
  });
  const line = lines.find((l) => l.msg === 'explicit');
  expect(line?.tenant_id).toBe(named);
  // One key in the written line, not the mixin's and the line's both.
  expect(raw.find((l) => l.includes('"explicit"'))?.match(/"tenant_id"/g)).toHaveLength(1);
});
