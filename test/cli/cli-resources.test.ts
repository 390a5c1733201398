import { buildTestApp, type TestApp } from '../support/app.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { startDnsServer, type TestDnsServer } from '../support/dns-server.js';
import { listen, runCli } from './support.js';

/**
 * The CLI commands issue 14 added: connections list/show/update/delete, apps
 * list/show, a group's subcommands, --force for a second connection to one
 * IdP, and the hints after a refusal. The built CLI against a real server.
 */
let t: TestDatabase;
let dns: TestDnsServer;
let a: TestApp;
let server: { url: string; close: () => Promise<void> };
let env: Record<string, string>;
let acmeId: string;

beforeAll(async () => {
  t = await createTestDatabase();
  dns = await startDnsServer();
  a = buildTestApp(t, { GATEHOUSE_DNS_SERVERS: dns.address, GATEHOUSE_DNS_TIMEOUT_MS: '200' });
  server = await listen(a.app);
  env = { GATEHOUSE_BASE_URL: server.url, GATEHOUSE_ADMIN_TOKEN: a.secrets.adminToken };
  acmeId = (await gatehouse('tenants', 'create', '--slug', 'acme', '--name', 'Acme')).json.id;
  await gatehouse('tenants', 'create', '--slug', 'globex', '--name', 'Globex');
});
afterAll(async () => {
  await server.close();
  await dns.close();
  await t.close();
});

const gatehouse = (...args: string[]) => runCli(args, env);
const countRows = async (table: 'connections' | 'apps') =>
  (await t.asOwner<{ n: number }>(`SELECT count(*)::int AS n FROM ${table}`))[0]?.n;
const createOkta = (...extra: string[]) =>
  gatehouse(
    'connections',
    'create',
    '--tenant',
    'acme',
    '--metadata-file',
    'fixtures/saml/metadata/okta.xml',
    '--name',
    'Okta',
    ...extra,
  );

describe('gatehouse connections', () => {
  let oktaId: string;

  it('refuses a second active-IdP connection without --force, with a hint, and creates it with --force', async () => {
    const first = await createOkta('--status', 'active');
    expect(first.code).toBe(0);
    oktaId = first.json.id;
    const before = await countRows('connections');
    const again = await createOkta();
    expect(again).toMatchObject({ code: 1, stdout: '' });
    expect(again.stderr).toMatch(/^gatehouse: idp_entity_id_in_use: The active connection .* \(HTTP 409/);
    expect(again.stderr).toMatch(
      /\n {2}hint: to create another connection to the same IdP anyway, add --force\n$/,
    );
    expect(await countRows('connections')).toBe(before);

    const forced = await createOkta('--name', 'Okta (new)', '--force');
    expect(forced.code).toBe(0);
    expect(forced.json).toMatchObject({ name: 'Okta (new)', status: 'draft' });
  });

  it('lists and shows connections, by id or by name', async () => {
    const list = await gatehouse('connections', 'list', '--tenant', 'acme');
    expect(list.code).toBe(0);
    expect(list.json).toMatchObject({
      total: 2,
      data: [{ id: oktaId, name: 'Okta' }, { name: 'Okta (new)' }],
    });
    const byName = await gatehouse('connections', 'show', '--tenant', 'acme', '--connection', 'Okta');
    expect(byName.code).toBe(0);
    expect(byName.json).toEqual(
      (await gatehouse('connections', 'show', '--tenant', acmeId, '--connection', oktaId)).json,
    );
    const missing = await gatehouse('connections', 'show', '--tenant', 'acme', '--connection', 'Entra');
    expect(missing).toMatchObject({ code: 1, stdout: '' });
    expect(missing.stderr).toMatch(/no connection named "Entra"/);
  });

  it('updates a connection from options and a --body file on stdin', async () => {
    const renamed = await gatehouse(
      'connections',
      'update',
      '--tenant',
      'acme',
      '--connection',
      'Okta (new)',
      '--name',
      'Okta staging',
      '--default-role',
      'viewer',
    );
    expect(renamed.code).toBe(0);
    expect(renamed.json).toMatchObject({ name: 'Okta staging', default_role: 'viewer' });
    const fromStdin = await runCli(
      ['connections', 'update', '--tenant', 'acme', '--connection', renamed.json.id, '--body', '-'],
      env,
      JSON.stringify({ jit_enabled: false }),
    );
    expect(fromStdin.code).toBe(0);
    expect(fromStdin.json).toMatchObject({ id: renamed.json.id, jit_enabled: false });
    const refused = await gatehouse(
      'connections',
      'update',
      '--tenant',
      'acme',
      '--connection',
      'Okta staging',
      '--status',
      'sideways',
    );
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/bad_request: status: .*\(HTTP 400/);
  });

  it('deletes a connection by name, and it is gone', async () => {
    const before = await countRows('connections');
    const res = await gatehouse('connections', 'delete', '--tenant', 'acme', '--connection', 'Okta staging');
    expect(res.code).toBe(0);
    expect(res.json).toEqual({ deleted: expect.stringMatching(/^[0-9a-f-]{36}$/) });
    expect(await countRows('connections')).toBe((before ?? 0) - 1);
    expect((await gatehouse('connections', 'list', '--tenant', 'acme')).json.data).toEqual([
      expect.objectContaining({ id: oktaId }),
    ]);
  });

  it("cannot reach another tenant's connection by naming it under its own tenant", async () => {
    const globex = await gatehouse(
      'connections',
      'create',
      '--tenant',
      'globex',
      '--metadata-file',
      'fixtures/saml/metadata/entra.xml',
      '--name',
      'Globex Entra',
    );
    expect(globex.code).toBe(0);
    const before = await countRows('connections');
    for (const ref of ['Globex Entra', globex.json.id]) {
      const res = await gatehouse('connections', 'delete', '--tenant', 'acme', '--connection', ref);
      expect(res.code).toBe(1);
      expect(res.stderr).toMatch(/no connection named|not_found: Connection not found \(HTTP 404/);
    }
    expect(await countRows('connections')).toBe(before);
  });
});

describe('gatehouse apps', () => {
  it('lists apps and shows one by name or id, without its secret', async () => {
    const created = await gatehouse(
      'apps',
      'create',
      '--name',
      'Main app',
      '--redirect-uri',
      'https://app.example.com/callback',
    );
    expect(created.code).toBe(0);
    const list = await gatehouse('apps', 'list');
    expect(list.code).toBe(0);
    expect(list.json.data).toEqual([
      expect.objectContaining({ client_id: created.json.client_id, name: 'Main app' }),
    ]);
    const shown = await gatehouse('apps', 'show', '--app', 'Main app');
    expect(shown.code).toBe(0);
    expect(shown.json).toMatchObject({
      client_id: created.json.client_id,
      redirect_uris: ['https://app.example.com/callback'],
    });
    expect(shown.stdout).not.toContain(created.json.client_secret);
    expect((await gatehouse('apps', 'show', '--app', created.json.client_id)).json).toEqual(shown.json);
  });
});

describe('gatehouse domains verify: the three DNS outcomes and their hints', () => {
  it('tells a missing record, a wrong value and an unreachable DNS server apart', async () => {
    const added = await gatehouse('domains', 'add', '--tenant', 'acme', '--domain', 'acme.example');
    const verify = () => gatehouse('domains', 'verify', '--tenant', 'acme', '--domain', 'acme.example');

    const missing = await verify();
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^gatehouse: dns_record_not_found: No TXT record found/);
    expect(missing.stderr).toMatch(/hint: .*--manual --reason TEXT/);

    dns.setTxt(added.json.verification.name, ['gatehouse-verification=stale']);
    const wrong = await verify();
    expect(wrong.stderr).toMatch(/^gatehouse: dns_record_mismatch: .*found "gatehouse-verification=stale"/);

    dns.setFailure('silent');
    const down = await verify();
    expect(down.stderr).toMatch(/^gatehouse: dns_unavailable: .*ETIMEOUT.*\(HTTP 503/);
    expect(down.stderr).toMatch(/hint: the DNS server did not answer/);
    dns.clear();
    expect((await gatehouse('domains', 'list', '--tenant', 'acme')).json.data[0].status).toBe('pending');
  });
});

describe("gatehouse <group>: the group's subcommands", () => {
  it.each([
    [
      'connections',
      [
        'connections create',
        'connections list',
        'connections show',
        'connections update',
        'connections delete',
      ],
    ],
    ['apps', ['apps create', 'apps list', 'apps show']],
    ['scim-tokens', ['scim-tokens create', 'scim-tokens list', 'scim-tokens revoke']],
    ['domains', ['domains add', 'domains list', 'domains verify']],
  ])('prints the %s subcommands (stderr, exit 2; --help: stdout, exit 0)', async (group, subcommands) => {
    const bare = await gatehouse(group);
    expect(bare).toMatchObject({ code: 2, stdout: '' });
    expect(bare.stderr).toMatch(new RegExp(`^Usage: gatehouse ${group} <command>`));
    for (const sub of subcommands) expect(bare.stderr).toContain(`\n  ${sub}`);
    expect(bare.stderr).not.toMatch(/\n {2}tenants create/);
    const help = await gatehouse(group, '--help');
    expect(help).toMatchObject({ code: 0, stderr: '', stdout: bare.stderr });
  });

  it('names an unknown subcommand and lists the real ones', async () => {
    const res = await gatehouse('connections', 'frobnicate');
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(
      /^gatehouse: unknown command "connections frobnicate"\n\nUsage: gatehouse connections/,
    );
  });

  it('refuses connections update with nothing to change, sending nothing', async () => {
    const res = await gatehouse('connections', 'update', '--tenant', 'acme', '--connection', 'Okta');
    expect(res).toMatchObject({ code: 2, stdout: '' });
    expect(res.stderr).toMatch(/nothing to change/);
  });

  it('warns on stderr about a mistyped GATEHOUSE_* variable, and still runs', async () => {
    const res = await runCli(['apps', 'list'], { ...env, GATEHOUSE_ADMIN_TOKN: 'x' });
    expect(res.code).toBe(0);
    expect(res.stderr).toBe(
      'gatehouse: warning: GATEHOUSE_ADMIN_TOKN is not a Gatehouse setting and is ignored; did you mean GATEHOUSE_ADMIN_TOKEN?\n',
    );
  });
});
