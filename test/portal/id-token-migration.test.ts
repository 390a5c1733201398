import { randomUUID } from 'node:crypto';
import { PortalIdTokenSealed1767400000000 } from '../../migrations/1767400000000-portal-id-token-sealed.js';
import { seal } from '../../src/config/secret-box.js';
import { createDataSource } from '../../src/db/data-source.js';
import { ENTITIES } from '../../src/entities.js';
import { openIdToken } from '../../src/portal/portal-sessions.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';

/**
 * Migration 1767400000000: tenant admins' ID tokens stored in clear before
 * sealing (src/portal/portal-sessions.ts) are cleared; sealed ones, and the
 * sessions themselves, stay. Run as the migrations run, by the owner, on a
 * real QueryRunner.
 */
let t: TestDatabase;
beforeAll(async () => {
  t = await createTestDatabase();
});
afterAll(() => t.close());

const JWT = 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhZGEifQ.c2lnbmF0dXJl';

async function tenantAdminRow(idHash: string, idToken: string): Promise<void> {
  await t.asOwner(
    `INSERT INTO portal_sessions (id_hash, kind, tenant_scope, intents, expires_at, csrf_secret,
                                  gatehouse_session_id, user_id, id_token)
     VALUES ($1, 'tenant_admin', $2, ARRAY['sso'], now() + interval '1 hour', 'csrf', $3, $4, $5)`,
    [idHash, randomUUID(), randomUUID(), randomUUID(), idToken],
  );
}

it('clears clear-text ID tokens, keeps sealed ones and every session', async () => {
  const key = Buffer.alloc(32, 7);
  const sealed = seal(key, JWT, 'portal:id-token:sealed-row');
  await tenantAdminRow('clear-row', JWT);
  await tenantAdminRow('sealed-row', sealed);

  const ds = createDataSource({ url: t.ownerUrl, entities: ENTITIES, poolSize: 1 });
  await ds.initialize();
  const runner = ds.createQueryRunner();
  try {
    await new PortalIdTokenSealed1767400000000().up(runner);
  } finally {
    await runner.release();
    await ds.destroy();
  }

  const rows = await t.asOwner<{ id_hash: string; id_token: string | null }>(
    'SELECT id_hash, id_token FROM portal_sessions ORDER BY id_hash',
  );
  expect(rows).toEqual([
    { id_hash: 'clear-row', id_token: null },
    { id_hash: 'sealed-row', id_token: sealed },
  ]);
  // The kept value still opens in its own row only.
  expect(openIdToken(key, sealed, 'sealed-row')).toBe(JWT);
  expect(openIdToken(key, sealed, 'clear-row')).toBeNull();
});
