import { endBusyBackends } from '../support/backend-loss.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { createTenant, ERROR, issueToken, newUser, scimClient, startNode, type ScimNode } from './support.js';

/*
 * Connections lost while SCIM requests are in flight (a database restart, a failover, an operator ending
 * backends): whatever step a request had reached — its token check, the tenant's counter, or a write
 * inside scimmy's routes — it is answered 503 with an RFC 7644 §3.12 body, never 500, and the process lives.
 * scimmy's own error message knows no 503, so a failure inside its routes is answered by Gatehouse's
 * handler (scim/scim.router.ts); it was a 500 (bench "database outage", 3–4 per run). Real backends are
 * ended by a superuser while the requests run; the token is verified from the node's cache (its LISTEN
 * connection, a backend of its own, is left alone), so requests do reach scimmy.
 */
const CLIENTS = 8;
const RUN_MS = 2_000;

let t: TestDatabase;
let node: ScimNode;
let tenantId: string;
let token: string;

beforeAll(async () => {
  t = await createTestDatabase();
  node = await startNode(t, { ownPool: true, env: { GATEHOUSE_RATE_LIMIT_STORE: 'memory' } });
  tenantId = await createTenant(t);
  token = (await issueToken(node.db, tenantId)).token;
});
afterAll(async () => {
  await node.close();
  await t.close();
});

describe('SCIM requests whose connection is lost', () => {
  it('are answered 201 or 503 (RFC 7644 error body), never 500', async () => {
    const scim = scimClient(node.app, tenantId, token);
    expect((await scim.post('/Users', newUser('warm@acme.test'))).status).toBe(201); // token now cached
    let running = true;
    const statuses = new Map<number, number>();
    const badBodies: unknown[] = [];
    const clients = Array.from({ length: CLIENTS }, async (_, c) => {
      for (let n = 0; running; n++) {
        const res = await scim.post('/Users', newUser(`u-${c}-${n}@acme.test`));
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        const wellFormed =
          res.body.schemas?.[0] === ERROR && res.body.status === '503' && res.headers['retry-after'] === '5';
        if (res.status === 503 && !wellFormed) badBodies.push({ body: res.body, headers: res.headers });
      }
    });
    const ended = await endBusyBackends(t, RUN_MS).finally(() => {
      running = false;
    });
    await Promise.all(clients);
    const seen = Object.fromEntries(statuses);
    expect(ended).toBeGreaterThan(0);
    expect(Object.keys(seen).sort()).toEqual(expect.arrayContaining(['201', '503']));
    expect(Object.keys(seen).filter((s) => s !== '201' && s !== '503')).toEqual([]);
    expect(badBodies).toEqual([]);
    // And afterwards, all well.
    expect((await scim.post('/Users', newUser('after@acme.test'))).status).toBe(201);
  }, 60_000);
});
