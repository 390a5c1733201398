import { mkdtemp, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { checkpointKey } from '../../src/audit/checkpoint-key.js';
import { startExportWorker, type ExportJob } from '../../src/offboarding/export-worker.js';
import { buildTestApp, type TestApp } from '../support/app.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { listen, runCli } from './support.js';

/**
 * `gatehouse tenants export TENANT [--out FILE] [--wait]` and `gatehouse
 * tenants import FILE` (issue 12): the built CLI against real servers, the
 * source running the real export worker, the target on a database of its own.
 */
let t1: TestDatabase;
let t2: TestDatabase;
let source: TestApp;
let target: TestApp;
let servers: { url: string; close: () => Promise<void> }[];
let worker: ExportJob;
let dir: string;
let tenantId: string;

beforeAll(async () => {
  t1 = await createTestDatabase();
  t2 = await createTestDatabase();
  source = buildTestApp(t1);
  // The same operator's second installation: same master key and token (checkpoints verify there).
  target = buildTestApp(t2, {}, { secrets: source.secrets });
  servers = [await listen(source.app), await listen(target.app)];
  worker = startExportWorker({
    db: t1.db,
    masterKey: source.secrets.masterKey,
    baseUrl: source.config.baseUrl,
    checkpointKey: (await checkpointKey(source.secrets.masterKey)).publicJwk,
    intervalMs: 100,
  });
  dir = await mkdtemp(path.join(tmpdir(), 'gatehouse-export-'));
  tenantId = (await gatehouse(0, 'tenants', 'create', '--slug', 'acme-cli', '--name', 'Acme')).json.id;
  await gatehouse(0, 'domains', 'add', '--tenant', 'acme-cli', '--domain', 'acme-cli.test');
});
afterAll(async () => {
  await worker.stop();
  for (const s of servers) await s.close();
  await t1.close();
  await t2.close();
});

const env = (server: number) => ({
  GATEHOUSE_BASE_URL: servers[server]?.url ?? '',
  GATEHOUSE_ADMIN_TOKEN: source.secrets.adminToken,
});
const gatehouse = (server: number, ...args: string[]) => runCli(args, env(server));

describe('gatehouse tenants export / import', () => {
  it('exports a tenant by slug to a file readable by the operator only, and imports it elsewhere once', async () => {
    const file = path.join(dir, 'acme.json.gz');
    const exported = await gatehouse(0, 'tenants', 'export', 'acme-cli', '--out', file);
    expect(exported).toMatchObject({ code: 0, json: { tenant_id: tenantId, status: 'downloaded', file } });
    expect(exported.stderr).toContain(`wrote ${file}`);
    expect((await stat(file)).mode & 0o777).toBe(0o600);

    const imported = await gatehouse(1, 'tenants', 'import', file);
    expect(imported).toMatchObject({ code: 0, json: { tenant_id: tenantId, slug: 'acme-cli' } });
    expect(imported.json.counts).toMatchObject({ tenants: 1, domains: 1 });
    const verify = await gatehouse(1, 'audit', 'verify', '--tenant', tenantId);
    expect(verify).toMatchObject({ code: 0, json: { valid: true } });

    const again = await gatehouse(1, 'tenants', 'import', file);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/^gatehouse: conflict: .*\(HTTP 409\)/);
  });

  it('requests an export without waiting, answering its pending state', async () => {
    const res = await gatehouse(0, 'tenants', 'export', tenantId);
    expect(res).toMatchObject({ code: 0, json: { tenant_id: tenantId, status: 'pending' } });
  });

  it('refuses a missing TENANT or FILE as a usage error, and an unknown slug', async () => {
    expect(await gatehouse(0, 'tenants', 'export')).toMatchObject({ code: 2 });
    expect(await gatehouse(0, 'tenants', 'import')).toMatchObject({ code: 2 });
    expect(await gatehouse(0, 'tenants', 'export', 'a', 'b')).toMatchObject({ code: 2 });
    const unknown = await gatehouse(0, 'tenants', 'export', 'no-such-tenant', '--wait');
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('no tenant with slug "no-such-tenant"');
    const missing = await gatehouse(1, 'tenants', 'import', path.join(dir, 'none.json.gz'));
    expect(missing).toMatchObject({ code: 1 });
    expect(missing.stderr).toContain('ENOENT');
  });
});
