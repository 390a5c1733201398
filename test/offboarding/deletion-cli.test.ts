import { listen, runCli } from '../cli/support.js';
import { buildTestApp, type TestApp } from '../support/app.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';

/**
 * `gatehouse tenants delete TENANT` and `gatehouse tenants purge TENANT
 * [--force]` (issue 12): the built CLI against a real server, by slug.
 */
let t: TestDatabase;
let gh: TestApp;
let server: { url: string; close: () => Promise<void> };

beforeAll(async () => {
  t = await createTestDatabase();
  gh = buildTestApp(t, { GATEHOUSE_TENANT_RETENTION: '86400' });
  server = await listen(gh.app);
});
afterAll(async () => {
  await server.close();
  await t.close();
});

const gatehouse = (...args: string[]) =>
  runCli(args, { GATEHOUSE_BASE_URL: server.url, GATEHOUSE_ADMIN_TOKEN: gh.secrets.adminToken });

describe('gatehouse tenants delete / purge', () => {
  it('deletes by slug printing purge_after, refuses an early purge without --force, purges with it', async () => {
    const id = (await gatehouse('tenants', 'create', '--slug', 'leaving', '--name', 'Leaving')).json
      .id as string;
    const deleted = await gatehouse('tenants', 'delete', 'leaving');
    expect(deleted).toMatchObject({ code: 0, json: { id, slug: 'leaving', status: 'deleted' } });
    expect(Date.parse(deleted.json.purge_after) - Date.parse(deleted.json.deleted_at)).toBe(86_400_000);
    expect(deleted.json.final_checkpoint).toMatchObject({ tenant_id: id, seq: 2 });
    expect(deleted.stderr).toContain(`kept until ${deleted.json.purge_after}`);

    const early = await gatehouse('tenants', 'purge', 'leaving');
    expect(early.code).toBe(1);
    expect(early.stderr).toMatch(/conflict: .*force=true.*\(HTTP 409/);

    const purged = await gatehouse('tenants', 'purge', 'leaving', '--force');
    expect(purged).toMatchObject({ code: 0, json: { id, slug: 'leaving', status: 'purged' } });
    expect(purged.json.final_checkpoint).toEqual(deleted.json.final_checkpoint);
    expect((await gatehouse('tenants', 'delete', 'leaving')).code).toBe(1); // gone from the live list
  });
});
