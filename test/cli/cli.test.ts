import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { buildTestApp, type TestApp } from '../support/app.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { startDnsServer, type TestDnsServer } from '../support/dns-server.js';
import { listen, runCli } from './support.js';

let t: TestDatabase;
let dns: TestDnsServer;
let a: TestApp;
let server: { url: string; close: () => Promise<void> };
let env: Record<string, string>;

beforeAll(async () => {
  t = await createTestDatabase();
  dns = await startDnsServer();
  a = buildTestApp(t, { GATEHOUSE_DNS_SERVERS: dns.address });
  server = await listen(a.app);
  env = { GATEHOUSE_BASE_URL: server.url, GATEHOUSE_ADMIN_TOKEN: a.secrets.adminToken };
});
afterAll(async () => {
  await server.close();
  await dns.close();
  await t.close();
});

const gatehouse = (...args: string[]) => runCli(args, env);

describe('gatehouse CLI against a running server', () => {
  let tenantId: string;

  it('creates and lists tenants, printing the answers as JSON', async () => {
    const created = await gatehouse('tenants', 'create', '--slug', 'acme', '--name', 'Acme Inc');
    expect(created).toMatchObject({ code: 0, stderr: '' });
    expect(created.json).toMatchObject({ slug: 'acme', name: 'Acme Inc', status: 'active' });
    expect(created.stdout).toContain('\n  "slug": "acme"');
    tenantId = created.json.id;
    const list = await gatehouse('tenants', 'list', '--limit', '10');
    expect(list.code).toBe(0);
    expect(list.json).toMatchObject({ total: 1, limit: 10, data: [{ id: tenantId }] });
  });

  it('adds a domain (tenant by slug) and verifies it by name through DNS', async () => {
    const added = await gatehouse('domains', 'add', '--tenant', 'acme', '--domain', 'Acme.com');
    expect(added.code).toBe(0);
    expect(added.json).toMatchObject({ domain: 'acme.com', status: 'pending' });
    expect(added.json.verification.name).toBe('_gatehouse-challenge.acme.com');

    const refused = await gatehouse('domains', 'verify', '--tenant', 'acme', '--domain', 'acme.com');
    expect(refused.code).toBe(1);
    expect(refused.stdout).toBe('');
    expect(refused.stderr).toMatch(
      /^gatehouse: dns_record_not_found: No TXT record found: .* \(HTTP 400, request [0-9a-f-]{36}\)\n {2}hint: .*--manual --reason TEXT\n$/,
    );

    dns.setTxt(added.json.verification.name, [added.json.verification.value]);
    const verified = await gatehouse('domains', 'verify', '--tenant', tenantId, '--domain', 'acme.com');
    expect(verified.code).toBe(0);
    expect(verified.json).toMatchObject({
      id: added.json.id,
      status: 'verified',
      verification_method: 'dns',
    });
    const list = await gatehouse('domains', 'list', '--tenant', 'acme');
    expect(list.json.data).toEqual([verified.json]);
  });

  it('verifies a domain manually with a reason, by id', async () => {
    const added = await gatehouse('domains', 'add', '--tenant', 'acme', '--domain', 'acme.org');
    const res = await gatehouse(
      'domains',
      'verify',
      '--tenant',
      'acme',
      '--domain',
      added.json.id,
      '--manual',
      '--reason',
      'Ticket 42',
    );
    expect(res.code).toBe(0);
    expect(res.json).toMatchObject({ status: 'verified', verification_method: 'manual' });
  });

  it('creates role mappings by group name or external id', async () => {
    const byName = await gatehouse(
      'role-mappings',
      'create',
      '--tenant',
      'acme',
      '--group',
      'Engineering',
      '--role',
      'admin',
    );
    expect(byName.code).toBe(0);
    expect(byName.json).toMatchObject({ group: { display_name: 'Engineering' }, role: 'admin' });
    const byId = await gatehouse(
      'role-mappings',
      'create',
      '--tenant',
      'acme',
      '--group-external-id',
      '00g1',
      '--role',
      'member',
    );
    expect(byId.json.group).toEqual({ external_id: '00g1' });
    const dup = await gatehouse(
      'role-mappings',
      'create',
      '--tenant',
      'acme',
      '--group',
      'engineering',
      '--role',
      'admin',
    );
    expect(dup.code).toBe(1);
    expect(dup.stderr).toMatch(/conflict: .*\(HTTP 409/);
    const list = await gatehouse('role-mappings', 'list', '--tenant', 'acme');
    expect(list.json.total).toBe(2);
  });

  it('creates, lists and revokes SCIM tokens', async () => {
    const created = await gatehouse('scim-tokens', 'create', '--tenant', 'acme', '--description', 'Okta');
    expect(created.code).toBe(0);
    expect(created.json.token).toMatch(/^gh_scim_/);
    expect(created.json.scim_base_url).toBe(`https://gatehouse.test/scim/v2/${tenantId}`);
    const revoked = await gatehouse('scim-tokens', 'revoke', '--tenant', 'acme', '--id', created.json.id);
    expect(revoked.code).toBe(0);
    expect(revoked.json).toMatchObject({ id: created.json.id, revoked_at: expect.any(String) });
    const list = await gatehouse('scim-tokens', 'list', '--tenant', 'acme');
    expect(list.json.data).toEqual([revoked.json]);
  });

  it('creates an active SAML connection from a metadata file and answers the SP details', async () => {
    const res = await gatehouse(
      'connections',
      'create',
      '--tenant',
      'acme',
      '--metadata-file',
      'fixtures/saml/metadata/okta.xml',
      '--name',
      'Okta',
      '--status',
      'active',
    );
    expect(res).toMatchObject({ code: 0, stderr: '' });
    expect(res.json).toMatchObject({ type: 'saml', name: 'Okta', status: 'active', tenant_id: tenantId });
    expect(res.json.sp.acs_url).toBe(`${a.config.baseUrl}/saml/${res.json.id}/acs`);
  });

  it('registers an app and shows its client secret once', async () => {
    const res = await gatehouse(
      'apps',
      'create',
      '--name',
      'Main app',
      '--redirect-uri',
      'https://app.example.com/callback',
      '--backchannel-logout-uri',
      'https://app.example.com/backchannel-logout',
      '--webhook-url',
      'https://app.example.com/gatehouse-events',
      '--initiate-login-uri',
      'https://app.example.com/login/start',
    );
    expect(res).toMatchObject({ code: 0, stderr: '' });
    expect(res.json).toMatchObject({
      name: 'Main app',
      redirect_uris: ['https://app.example.com/callback'],
      backchannel_logout_uri: 'https://app.example.com/backchannel-logout',
      webhook_url: 'https://app.example.com/gatehouse-events',
      initiate_login_uri: 'https://app.example.com/login/start',
    });
    expect(res.json.client_secret).toMatch(/^gh_secret_/);
    expect(res.json.webhook_secret).toMatch(/^gh_whsec_/);
  });

  it('lists the audit trail and verifies its chain', async () => {
    const list = await gatehouse('audit', 'list', '--tenant', 'acme', '--action', 'domain.*');
    expect(list.code).toBe(0);
    expect(list.json.data.map((e: { action: string }) => e.action)).toEqual([
      'domain.verified',
      'domain.added',
      'domain.verified',
      'domain.added',
    ]);
    const verify = await gatehouse('audit', 'verify', '--tenant', 'acme');
    expect(verify.code).toBe(0);
    // tenant, 2 × (domain added + verified), 2 role mappings, SCIM token created + revoked, connection
    expect(verify.json).toEqual({
      valid: true,
      checked: 10,
      first_broken_seq: null,
      erased_unverifiable_seqs: [],
      checkpoints_checked: 0,
      forged_checkpoint_seq: null,
      checkpoint_mismatch_seq: null,
      truncated_after_seq: null,
      unsealed: 0,
      oldest_unsealed_at: null,
    });
  });

  it('saves the signed checkpoints to a file and verifies the trail against it, recomputing every hash', async () => {
    const taken = await gatehouse('audit', 'checkpoint', '--tenant', 'acme');
    expect(taken.code).toBe(0);
    expect(taken.json).toMatchObject({ tenant_id: tenantId, seq: 10 });
    const saved = await gatehouse('audit', 'checkpoints', '--tenant', 'acme');
    expect(saved.code).toBe(0);
    expect(saved.json).toEqual({ data: [taken.json] });
    const dir = await mkdtemp(path.join(tmpdir(), 'gatehouse-cli-'));
    try {
      const file = path.join(dir, 'checkpoints.json');
      await writeFile(file, saved.stdout);
      const verify = await gatehouse('audit', 'verify', '--tenant', 'acme', '--checkpoints', file);
      expect(verify).toMatchObject({ code: 0, stderr: '' });
      expect(verify.json).toMatchObject({ valid: true, checked: 10, checkpoints_checked: 1 });
      const usage = await gatehouse('audit', 'verify', '--tenant', 'acme', '--key', file);
      expect(usage.code).toBe(2);
      expect(usage.stderr).toMatch(/--key goes with --checkpoints/);
      const missing = await gatehouse('audit', 'verify', '--tenant', 'acme', '--checkpoints', `${file}.gone`);
      expect(missing.code).toBe(1);
      expect(missing.stderr).toMatch(/^gatehouse: --checkpoints .*ENOENT/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('exits 1 when the audit chain is broken', async () => {
    const other = await gatehouse('tenants', 'create', '--slug', 'tampered', '--name', 'T');
    await t.asOwner(`
      BEGIN;
      SET LOCAL app.tenant_id = '${other.json.id}';
      ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only;
      UPDATE audit_events SET action = 'tenant.nothing' WHERE tenant_id = '${other.json.id}';
      ALTER TABLE audit_events ENABLE TRIGGER audit_events_append_only;
      COMMIT;`);
    const verify = await gatehouse('audit', 'verify', '--tenant', 'tampered');
    expect(verify.code).toBe(1);
    expect(verify.json).toMatchObject({ valid: false, checked: 0, first_broken_seq: 1 });
  });

  it("reads the operator token from the data folder's admin-token file", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'gatehouse-cli-'));
    try {
      await writeFile(path.join(dir, 'admin-token'), `${a.secrets.adminToken}\n`, { mode: 0o600 });
      const res = await runCli(['tenants', 'list', '--url', server.url], { GATEHOUSE_DATA_DIR: dir });
      expect(res.code).toBe(0);
      expect(res.json.total).toBe(2);
      const none = await runCli(['tenants', 'list', '--url', server.url], {
        GATEHOUSE_DATA_DIR: path.join(dir, 'x'),
      });
      expect(none.code).toBe(1);
      expect(none.stderr).toMatch(/no operator token: set GATEHOUSE_ADMIN_TOKEN/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('reports a refused token, an unknown tenant and an unreachable server on stderr with exit 1', async () => {
    const bad = await runCli(['tenants', 'list'], {
      ...env,
      GATEHOUSE_ADMIN_TOKEN: `gh_admin_${'x'.repeat(43)}`,
    });
    expect(bad).toMatchObject({ code: 1, stdout: '' });
    expect(bad.stderr).toMatch(/unauthorized: Missing or invalid bearer token \(HTTP 401/);
    const unknown = await gatehouse('domains', 'list', '--tenant', 'nobody');
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/no tenant with slug "nobody"/);
    const down = await gatehouse('tenants', 'list', '--url', 'http://127.0.0.1:2');
    expect(down.code).toBe(1);
    expect(down.stderr).toMatch(/cannot reach http:\/\/127\.0\.0\.1:2: ECONNREFUSED/);
  });
});

describe('gatehouse CLI usage errors (exit 2, nothing sent)', () => {
  it.each([
    [[], /Usage: gatehouse <command>/],
    [['frobnicate'], /unknown command "frobnicate"/],
    [['tenants', 'create', '--slug', 'x'], /--name is required/],
    [['tenants', 'create', '--slug', 'x', '--name', 'y', '--plan', 'gold'], /Unknown option '--plan'/],
    [['tenants', 'list', 'extra'], /unexpected argument "extra"/],
    [
      ['domains', 'verify', '--tenant', 'acme', '--domain', 'a.com', '--reason', 'x'],
      /--reason goes with --manual/,
    ],
    [
      ['role-mappings', 'create', '--tenant', 'acme', '--role', 'admin'],
      /exactly one of --group or --group-external-id/,
    ],
    [
      [
        'connections',
        'create',
        '--tenant',
        'acme',
        '--metadata-url',
        'https://idp/x',
        '--issuer',
        'https://op',
      ],
      /exactly one of/,
    ],
    [
      [
        'connections',
        'create',
        '--tenant',
        'acme',
        '--issuer',
        'not a url',
        '--client-id',
        'c',
        '--client-secret',
        's',
      ],
      /--issuer must be an absolute URL/,
    ],
    [['apps', 'create', '--name', 'Main app'], /--redirect-uri is required/],
  ])('refuses %j', async (args, message) => {
    const before = (await t.asOwner<{ n: number }>('SELECT count(*)::int AS n FROM tenants'))[0]?.n;
    const res = await gatehouse(...args);
    expect(res.code).toBe(2);
    expect(res.stdout).toBe('');
    expect(res.stderr).toMatch(message);
    expect((await t.asOwner<{ n: number }>('SELECT count(*)::int AS n FROM tenants'))[0]?.n).toBe(before);
  });

  it('prints help on --help with exit 0', async () => {
    const res = await gatehouse('--help');
    expect(res.code).toBe(0);
    expect(res.stdout).toMatch(/domains verify --tenant ID\|SLUG --domain ID\|DOMAIN/);
  });
});
