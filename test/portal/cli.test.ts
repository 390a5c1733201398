import { buildTestApp, type TestApp } from '../support/app.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { listen, runCli } from '../cli/support.js';

/**
 * Issue 15: the operator reaches the portal and sends setup links from the
 * CLI (src/cli/portal-commands.ts), the built CLI against a real server.
 */
let t: TestDatabase;
let a: TestApp;
let server: { url: string; close: () => Promise<void> };
let env: Record<string, string>;

beforeAll(async () => {
  t = await createTestDatabase();
  a = buildTestApp(t);
  server = await listen(a.app);
  env = { GATEHOUSE_BASE_URL: server.url, GATEHOUSE_ADMIN_TOKEN: a.secrets.adminToken };
  await gatehouse('tenants', 'create', '--slug', 'acme', '--name', 'Acme');
});
afterAll(async () => {
  await server.close();
  await t.close();
});

const gatehouse = (...args: string[]) => runCli(args, env);

it('prints a one-time operator login link', async () => {
  const res = await gatehouse('portal-link');
  expect(res.code).toBe(0);
  // The link names the server's public base URL (GATEHOUSE_BASE_URL), not the address the CLI called.
  expect(res.json.url).toMatch(/^https:\/\/gatehouse\.test\/portal\/start\?token=gh_portal_/);
});

it('creates, lists and revokes a setup link by tenant slug, with a TTL', async () => {
  const created = await gatehouse('setup-links', 'create', 'acme', '--intents', 'sso,dsync', '--ttl', '2d');
  expect(created.code).toBe(0);
  expect(created.json).toMatchObject({ intents: ['sso', 'dsync'], status: 'active' });
  expect(created.json.url).toMatch(/\/portal\/start\?token=gh_setup_/);
  const days = (Date.parse(created.json.expires_at) - Date.parse(created.json.created_at)) / 86_400_000;
  expect(days).toBe(2);

  const listed = await gatehouse('setup-links', 'list', 'acme');
  expect(listed.json.data.map((l: { id: string }) => l.id)).toContain(created.json.id);
  expect(listed.stdout).not.toContain('gh_setup_');

  const revoked = await gatehouse('setup-links', 'revoke', 'acme', created.json.id);
  expect(revoked.code).toBe(0);
  expect(revoked.json.status).toBe('revoked');
});

it('refuses unknown intents and a malformed TTL before calling the server', async () => {
  const bad = await gatehouse('setup-links', 'create', 'acme', '--intents', 'sso,root');
  expect(bad.code).toBe(2);
  expect(bad.stderr).toMatch(/unknown intent\(s\) root/);
  const ttl = await gatehouse('setup-links', 'create', 'acme', '--intents', 'sso', '--ttl', 'soon');
  expect(ttl.code).toBe(2);
  const [row] = await t.asOwner<{ n: number }>(
    `SELECT count(*)::int AS n FROM audit_events WHERE action = 'setup_link.created'`,
  );
  expect(row?.n).toBe(1);
});
