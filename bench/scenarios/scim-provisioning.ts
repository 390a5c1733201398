import { randomUUID } from 'node:crypto';
import { recordAudit } from '../../src/audit/audit.service.js';
import { addGroupMembers, createGroup } from '../../src/directory/groups.service.js';
import { createUser } from '../../src/directory/users.service.js';
import type { BenchResult, Scenario } from '../harness.js';
import { percentile, roundTrips } from '../harness.js';
import { startPolis } from '../peers/polis/polis.js';
import { openBenchDatabase } from '../support/bench-db.js';
import {
  createTenantWithToken,
  envCount,
  pool,
  scimFetch,
  sorted,
  startScimServer,
} from './scim-bench-support.js';

const CONCURRENCY = 10; // Okta sends up to about ten requests in parallel.
const BATCH = 100;

/**
 * Provisioning a directory through the SCIM HTTP API, as Okta would: users by
 * POST, then groups and their memberships by PATCH add in batches. Floors: the
 * same directory writes called in-process (no HTTP, no SCIM), same concurrency.
 * Sizes: GATEHOUSE_BENCH_SCIM_USERS (default 10000) and GATEHOUSE_BENCH_SCIM_GROUPS
 * (default 500), 20 memberships per user: the directory the SCIM issue names
 * (about a minute and a half on two cores; smaller values for a quick look).
 */
export const scimProvisioningScenario: Scenario = {
  name: 'scim-provisioning',
  async run(): Promise<BenchResult[]> {
    const userCount = envCount('GATEHOUSE_BENCH_SCIM_USERS', 10000);
    const groupCount = envCount('GATEHOUSE_BENCH_SCIM_GROUPS', 500);
    const perUser = Math.min(20, groupCount);
    const bench = await openBenchDatabase('scim_provisioning');
    const server = await startScimServer(bench);
    try {
      const floor = await inProcessFloor(server.db, Math.min(userCount, 2000), perUser);

      const { tenantId, token } = await createTenantWithToken(server.db);
      const base = `${server.url}/scim/v2/${tenantId}`;
      await scimFetch(base, token, 'GET', '/ServiceProviderConfig');
      const userIds: string[] = new Array<string>(userCount);
      const userLatencies: number[] = [];
      const busyBefore = server.db.busyMs;
      const usersMs = await pool(userCount, CONCURRENCY, async (i) => {
        const res = await scimFetch(base, token, 'POST', '/Users', {
          schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'],
          userName: `user${i}@bench.test`,
          externalId: `ext-${i}`,
          name: { givenName: 'Bench', familyName: `User ${i}` },
          emails: [{ value: `user${i}@bench.test`, type: 'work', primary: true }],
          active: true,
        });
        if (res.status !== 201)
          throw new Error(`create user: HTTP ${res.status} ${JSON.stringify(res.body)}`);
        userIds[i] = String(res.body.id);
        userLatencies.push(res.ms);
      });
      const usersDbShare = (server.db.busyMs - busyBefore) / userLatencies.reduce((a, b) => a + b, 0);

      const groupIds: string[] = new Array<string>(groupCount);
      await pool(groupCount, CONCURRENCY, async (g) => {
        const res = await scimFetch(base, token, 'POST', '/Groups', {
          schemas: ['urn:ietf:params:scim:schemas:core:2.0:Group'],
          displayName: `Group ${g}`,
          members: [],
        });
        if (res.status !== 201) throw new Error(`create group: HTTP ${res.status}`);
        groupIds[g] = String(res.body.id);
      });
      const batches = membershipBatches(userIds, groupCount, perUser);
      const patchLatencies: number[] = [];
      const busyBeforePatch = server.db.busyMs;
      const membershipsMs = await pool(batches.length, CONCURRENCY, async (b) => {
        const batch = batches[b];
        if (!batch) return;
        const res = await scimFetch(base, token, 'PATCH', `/Groups/${groupIds[batch.group]}`, {
          schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'],
          Operations: [{ op: 'add', path: 'members', value: batch.users.map((value) => ({ value })) }],
        });
        if (res.status !== 204)
          throw new Error(`add members: HTTP ${res.status} ${JSON.stringify(res.body)}`);
        patchLatencies.push(res.ms);
      });
      const memberships = batches.reduce((n, b) => n + b.users.length, 0);
      const patchDbShare = (server.db.busyMs - busyBeforePatch) / patchLatencies.reduce((a, b) => a + b, 0);
      const users = sorted(userLatencies);
      const patches = sorted(patchLatencies);
      const peer =
        process.env.GATEHOUSE_BENCH_POLIS === '0' ? [] : [await versusPolis(server, bench.adminUrl)];
      return [
        ...peer,
        {
          name: `SCIM POST /Users over HTTP, concurrency ${CONCURRENCY} (${userCount} users)`,
          unit: 'users/s',
          value: userCount / (usersMs / 1000),
          baseline: { name: 'the same directory writes in-process', value: floor.usersPerSecond },
          extra: { p50_ms: percentile(users, 50), p99_ms: percentile(users, 99), db_share: usersDbShare },
        },
        {
          name: `SCIM PATCH /Groups add members, ${BATCH} per request (${groupCount} groups, ${memberships} memberships)`,
          unit: 'memberships/s',
          value: memberships / (membershipsMs / 1000),
          baseline: { name: 'the same membership inserts in-process', value: floor.membershipsPerSecond },
          extra: { p50_ms: percentile(patches, 50), p99_ms: percentile(patches, 99), db_share: patchDbShare },
        },
      ];
    } finally {
      await server.close();
      await bench.close();
    }
  },
};

/** Each user in `perUser` distinct groups, as PATCH batches of up to BATCH members per group. */
function membershipBatches(userIds: string[], groupCount: number, perUser: number) {
  const byGroup: string[][] = Array.from({ length: groupCount }, () => []);
  userIds.forEach((id, i) => {
    for (let k = 0; k < perUser; k++) byGroup[(i * 7 + k * 13) % groupCount]?.push(id);
  });
  const batches: { group: number; users: string[] }[] = [];
  byGroup.forEach((members, group) => {
    const unique = [...new Set(members)];
    for (let i = 0; i < unique.length; i += BATCH) batches.push({ group, users: unique.slice(i, i + BATCH) });
  });
  return batches;
}

/** The same rows written by the directory functions directly, with the same concurrency. */
async function inProcessFloor(
  db: import('../../src/db/database.js').Database,
  count: number,
  perUser: number,
) {
  const { tenantId } = await createTenantWithToken(db);
  const actor = { type: 'scim' as const, id: randomUUID() };
  const ids: string[] = new Array<string>(count);
  const usersMs = await pool(count, CONCURRENCY, async (i) => {
    await db.withTenant(tenantId, async (em) => {
      const user = await createUser(em, tenantId, {
        userName: `floor${i}@bench.test`,
        email: `floor${i}@bench.test`,
        givenName: 'Bench',
        familyName: `User ${i}`,
        displayName: null,
        externalId: `ext-${i}`,
        attributes: { emails: [{ value: `floor${i}@bench.test`, type: 'work', primary: true }] },
      });
      await recordAudit(em, tenantId, {
        actor,
        action: 'scim.user.created',
        target: { type: 'user', id: user.id },
      });
      ids[i] = user.id;
    });
  });
  const groups = Math.max(1, Math.ceil((count * perUser) / 400));
  const groupIds = await db.withTenant(tenantId, async (em) => {
    const made: string[] = [];
    for (let g = 0; g < groups; g++)
      made.push(
        (await createGroup(em, tenantId, { displayName: `Floor ${g}`, externalId: null }, { source: 'scim' }))
          .id,
      );
    return made;
  });
  const batches = membershipBatches(ids, groups, Math.min(perUser, groups));
  const membershipsMs = await pool(batches.length, CONCURRENCY, async (b) => {
    const batch = batches[b];
    if (!batch) return;
    await db.withTenant(tenantId, async (em) => {
      await em.query('SELECT 1 FROM groups WHERE id = $1 FOR UPDATE', [groupIds[batch.group]]);
      await addGroupMembers(em, tenantId, groupIds[batch.group] ?? '', batch.users);
    });
  });
  const memberships = batches.reduce((n, b) => n + b.users.length, 0);
  return {
    usersPerSecond: count / (usersMs / 1000),
    membershipsPerSecond: memberships / (membershipsMs / 1000),
  };
}

const POLIS_CONCURRENCY = 8;
const POLIS_ROUNDS = 2;

/**
 * SCIM POST /Users, Gatehouse vs Ory Polis (bench/peers/polis, its directory
 * sync API over HTTP on the same PostgreSQL): the same bodies, 8 in flight, in
 * interleaved rounds (Gatehouse, Polis, Gatehouse, Polis) on fresh tenants.
 * GATEHOUSE_BENCH_POLIS_SCIM_USERS per side (default 1000); GATEHOUSE_BENCH_POLIS=0 leaves it out.
 */
async function versusPolis(
  server: Awaited<ReturnType<typeof startScimServer>>,
  adminUrl: string,
): Promise<import('../harness.js').BenchResult> {
  const count = envCount('GATEHOUSE_BENCH_POLIS_SCIM_USERS', 1000);
  const polis = await startPolis({ adminUrl, name: 'scim', redirectUri: 'http://localhost:3000/callback' });
  try {
    const { tenantId, token } = await createTenantWithToken(server.db);
    const base = `${server.url}/scim/v2/${tenantId}`;
    const body = (side: string, i: number) => ({
      schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'],
      userName: `${side}${i}@bench.test`,
      externalId: `${side}-${i}`,
      name: { givenName: 'Bench', familyName: `User ${i}` },
      emails: [{ value: `${side}${i}@bench.test`, type: 'work', primary: true }],
      active: true,
    });
    const gatehouse = async (i: number) => {
      const res = await scimFetch(base, token, 'POST', '/Users', body('gh', i));
      if (res.status !== 201) throw new Error(`Gatehouse create: HTTP ${res.status}`);
      return res.ms;
    };
    const peer = async (i: number) => {
      const res = await scimFetch(
        polis.scimUsersUrl.replace(/\/Users$/, ''),
        polis.scimSecret,
        'POST',
        '/Users',
        body('polis', i),
      );
      if (res.status !== 201) throw new Error(`Polis create: HTTP ${res.status} ${JSON.stringify(res.body)}`);
      return res.ms;
    };
    for (let i = 0; i < 20; i++) {
      await gatehouse(count + i);
      await peer(count + i);
    }
    const per = Math.ceil(count / POLIS_ROUNDS);
    const sides = { gh: { ms: 0, lat: [] as number[] }, polis: { ms: 0, lat: [] as number[] } };
    const counted = await roundTrips();
    let ghTrips = 0;
    for (let r = 0; r < POLIS_ROUNDS; r++) {
      const from = r * per;
      const n = Math.min(per, count - from);
      const before = counted();
      sides.gh.ms += await pool(
        n,
        POLIS_CONCURRENCY,
        async (i) => void sides.gh.lat.push(await gatehouse(from + i)),
      );
      ghTrips += counted() - before;
      sides.polis.ms += await pool(
        n,
        POLIS_CONCURRENCY,
        async (i) => void sides.polis.lat.push(await peer(from + i)),
      );
    }
    const gh = sorted(sides.gh.lat);
    const po = sorted(sides.polis.lat);
    return {
      name: `SCIM POST /Users, Gatehouse vs Ory Polis (${POLIS_CONCURRENCY} in flight, ${count} users each, ${POLIS_ROUNDS} interleaved rounds)`,
      unit: 'users/s',
      value: count / (sides.gh.ms / 1000),
      baseline: {
        name: 'Ory Polis directory sync POST /Users over HTTP',
        value: count / (sides.polis.ms / 1000),
      },
      extra: {
        p50_ms: percentile(gh, 50),
        p99_ms: percentile(gh, 99),
        polis_p50_ms: percentile(po, 50),
        polis_p99_ms: percentile(po, 99),
        round_trips_per_create: ghTrips / count,
      },
    };
  } finally {
    await polis.close();
  }
}
