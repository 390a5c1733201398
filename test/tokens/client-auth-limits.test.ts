import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { createTestDatabase, type TestDatabase } from '../support/database.js';

/*
 * The failed-authentication counters travel in the trip that reads the app (tokens/client-auth-limits.ts):
 * several statements are in flight before any is awaited. Whichever fails first — the read, or all of
 * them when the connection is lost in an outage — the others' failures must stay observed: an unobserved
 * rejection ends the process (seen in bench "database outage": write EPIPE from a counter, a fatal log
 * line, exit). jest observes every rejection itself, so this runs in a plain Node process over the build,
 * where an unobserved rejection exits non-zero as it would in the service.
 */
let t: TestDatabase;
beforeAll(async () => {
  t = await createTestDatabase();
});
afterAll(() => t.close());

const root = path.resolve(import.meta.dirname, '..', '..');
const script = `
const { createDataSource } = await import('./dist/src/db/data-source.js');
const { Database } = await import('./dist/src/db/database.js');
const { ENTITIES } = await import('./dist/src/entities.js');
const { ClientAuthLimits } = await import('./dist/src/tokens/client-auth-limits.js');
const { useCounterKey } = await import('./dist/src/http/rate-limit-store.js');
const ds = createDataSource({ url: process.env.APP_URL, entities: ENTITIES, poolSize: 2 });
await ds.initialize();
const config = { logLevel: 'silent', rateLimits: { store: 'postgres', clientAuthFailuresPerAddress: 100, clientAuthFailuresPerClient: 100 } };
const db = new Database(ds);
useCounterKey(db, Buffer.alloc(32, 7));
const limits = new ClientAuthLimits(config, db);
const req = (i) => ({ ip: '203.0.113.' + i, body: { client_id: crypto.randomUUID() }, headers: {}, get: () => undefined });
let surfaced = 0;
for (let i = 0; i < 5; i++) {
  await limits.checkWith(req(i), async () => { throw new Error('read failed'); }).catch((e) => { if (e.message === 'read failed') surfaced++; });
  // The read ends its own connection: the counters written behind it fail with it.
  await limits.checkWith(req(i), (em) => em.query('SELECT pg_terminate_backend(pg_backend_pid())')).catch(() => surfaced++);
}
const read = await limits.checkWith(req(9), (em) => em.query('SELECT 1 AS one'));
await new Promise((r) => setTimeout(r, 100));
await ds.destroy();
console.log(JSON.stringify({ surfaced, read }));
`;

describe('client authentication limits, counted with the read of the app', () => {
  it('a failed read or a lost connection leaves no unobserved rejection: the process lives and the error surfaces', () => {
    const run = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
      cwd: root,
      env: { PATH: process.env.PATH ?? '', APP_URL: t.appUrl },
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect({ status: run.status, stderr: run.stderr }).toEqual({ status: 0, stderr: '' });
    const out = JSON.parse(run.stdout.trim().split('\n').pop()!) as { surfaced: number; read: unknown };
    expect(out.surfaced).toBe(10);
    expect(out.read).toEqual([{ one: 1 }]);
  });
});
