import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Chromium, type ChromiumPage } from '../support/chromium.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { startService, waitFor } from '../support/server-process.js';

/**
 * Issue 14: the README quickstart as a newcomer runs it, every process the
 * one the README names: the built server on http://localhost, `gatehouse
 * dev-idp --setup` (bin/gatehouse.js), examples/main-app/server.js, a real
 * Chromium signing Alice in through the dev IdP, then the README's SCIM
 * command (run by bash, as written) deprovisioning her, after which the
 * example app's page shows her session ended (back-channel logout).
 */
const ROOT = path.resolve(import.meta.dirname, '..', '..');
let t: TestDatabase;
let work: string;
let browser: Chromium;
const children: ChildProcess[] = [];

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

function run(args: string[], env: Record<string, string>): () => string {
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let output = '';
  child.stdout?.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr?.on('data', (c: Buffer) => (output += c.toString()));
  return () => output;
}

beforeAll(async () => {
  t = await createTestDatabase();
  work = await mkdtemp(path.join(tmpdir(), 'gatehouse-quickstart-'));
  await mkdir(path.join(work, '.gatehouse'));
  browser = await Chromium.launch();
});

/**
 * SIGTERM, then waits for the exit (SIGKILL after 15 s): a child still draining when the file ends
 * keeps its process and pipe handles open in the jest worker, which then "failed to exit gracefully".
 */
async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const deadline = setTimeout(() => child.kill('SIGKILL'), 15_000);
  await exited;
  clearTimeout(deadline);
}

afterAll(async () => {
  await Promise.all(children.map(stop));
  await browser?.close();
  await t?.close();
  await rm(work, { recursive: true, force: true });
});

async function appText(page: ChromiumPage, appUrl: string, expected: string): Promise<string> {
  const until = Date.now() + 20_000;
  let text = '';
  while (Date.now() < until) {
    await page.goto(appUrl);
    await page.waitForUrl((u) => u.startsWith(appUrl));
    text = (await page.text()) ?? '';
    if (text.includes(expected)) return text;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  return text;
}

it('signs Alice in to the example app, deprovisions her by SCIM and the app shows her signed out', async () => {
  const [ghPort, idpPort, appPort] = [await freePort(), await freePort(), await freePort()];
  const gatehouseUrl = `http://localhost:${ghPort}`;
  const appUrl = `http://localhost:${appPort}`;
  const dataDir = path.join(work, '.gatehouse');

  // 1. Gatehouse (the built server, as npm start runs it).
  const service = startService({
    PORT: String(ghPort),
    HOST: '127.0.0.1',
    DATABASE_URL: t.ownerUrl,
    GATEHOUSE_DATABASE_APP_URL: t.appUrl,
    GATEHOUSE_DATA_DIR: dataDir,
    GATEHOUSE_ALLOW_PRIVATE_METADATA_URLS: 'true',
    GATEHOUSE_BACKCHANNEL_LOGOUT_TIMEOUT: '2',
  });
  children.push(service.child);
  await waitFor(() => /listening on|failed to start/.test(service.output()), 90_000, 'Gatehouse to listen');
  expect(service.output()).toContain('listening on');
  // http://localhost is a secure context: no plain-http warning.
  expect(service.output()).not.toContain('plain http on a host other than localhost');

  // 2. The dev IdP, registered.
  const idp = run(
    ['bin/gatehouse.js', 'dev-idp', '--setup', '--port', String(idpPort), '--app-url', appUrl],
    { GATEHOUSE_DATA_DIR: dataDir, GATEHOUSE_BASE_URL: gatehouseUrl },
  );
  await waitFor(() => /Ctrl-C stops it|gatehouse: /.test(idp()), 60_000, 'the dev IdP');
  expect(idp()).toContain('Registered with Gatehouse');

  // 3. The example app.
  const app = run(['examples/main-app/server.js'], {
    APP_URL: appUrl,
    GATEHOUSE_URL: gatehouseUrl,
    GATEHOUSE_DATA_DIR: dataDir,
  });
  await waitFor(() => /Example app on|Error/.test(app()), 30_000, 'the example app');
  expect(app()).toContain('Example app on');

  // 4. Sign in: the app → Gatehouse (two connections for example.test: choose SAML) → the dev IdP → back.
  const page = await browser.newPage();
  await page.goto(appUrl);
  await page.click('form[action="/login"] button');
  await page.clickLink('Dev IdP (SAML)');
  await page.click('button[value="alice@example.test"]');
  await page.waitForUrl((u) => u === `${appUrl}/`);
  expect(await page.evaluate('document.getElementById("roles")?.textContent')).toBe('admin, engineer');
  await page.clickLink('Call the API');
  await page.waitForUrl((u) => u.startsWith(`${appUrl}/call-api`));
  expect(await page.evaluate('document.getElementById("api")?.textContent')).toMatch(
    /^200 .*"roles":\["admin","engineer"\]/,
  );

  expect(await appText(page, appUrl, 'Signed in as alice@example.test')).toContain('Signed in as alice');

  // 5. The README's SCIM command, as written, in a folder whose .gatehouse is this one.
  const readme = await readFile(path.join(ROOT, 'README.md'), 'utf8');
  const block = /^S=\.gatehouse\/dev-idp\/setup\.json;[\s\S]*?"active":false\}\}\]\}'$/m.exec(readme)?.[0];
  expect(block).toBeDefined();
  const { stdout } = await promisify(execFile)('bash', ['-c', block ?? 'false'], { cwd: work });
  expect(JSON.parse(stdout)).toMatchObject({ userName: 'alice@example.test', active: false });
  expect(await appText(page, appUrl, 'Signed out.')).toContain('Signed out.');

  // RP-initiated logout: Bob signs in, then out; Gatehouse sends the browser back to the app.
  await page.click('form[action="/login"] input');
  await page.evaluate('document.querySelector("form[action=\'/login\'] input").value = "bob@example.test"');
  await page.click('form[action="/login"] button');
  await page.clickLink('Dev IdP (SAML)');
  await page.click('button[value="bob@example.test"]');
  await page.waitForUrl((u) => u === `${appUrl}/`);
  expect(await page.text()).toContain('Signed in as bob@example.test');
  await page.clickLink('Sign out');
  expect(await page.waitForText('Signed out.')).not.toContain('bob@example.test');
  expect(await page.url()).toBe(`${appUrl}/`);
}, 180_000);
