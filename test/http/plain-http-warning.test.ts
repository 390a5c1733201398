import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { startService, waitFor } from '../support/server-process.js';

/**
 * Issue 14: on a plain-http base URL other than localhost, the SSO binding
 * cookie cannot be Secure; SameSite=None, so a SAML IdP's cross-site POST
 * arrives without it. The built server says so at start, with the fix.
 * (On http://localhost it does not: test/e2e/quickstart.test.ts.)
 */
let t: TestDatabase;
let dataDir: string;

beforeAll(async () => {
  t = await createTestDatabase();
  dataDir = await mkdtemp(path.join(tmpdir(), 'gatehouse-plain-http-'));
});
afterAll(async () => {
  await t?.close();
  await rm(dataDir, { recursive: true, force: true });
});

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

it('warns at start that SAML sign-ins fail on a plain-http base URL other than localhost', async () => {
  const port = await freePort();
  const service = startService({
    PORT: String(port),
    HOST: '127.0.0.1',
    GATEHOUSE_BASE_URL: `http://127.0.0.1:${port}`,
    DATABASE_URL: t.ownerUrl,
    GATEHOUSE_DATABASE_APP_URL: t.appUrl,
    GATEHOUSE_DATA_DIR: dataDir,
  });
  try {
    await waitFor(
      () => /listening on|failed to start/.test(service.output()),
      90_000,
      'the service to listen',
    );
    const warning = service
      .output()
      .split('\n')
      .find((line) => line.includes('plain http on a host other than localhost'));
    expect(JSON.parse(warning ?? '{}')).toMatchObject({
      level: 40,
      msg: expect.stringMatching(/saml_in_response_to_invalid.*Use https, or http:\/\/localhost/),
    });
  } finally {
    service.child.kill('SIGTERM');
  }
  await service.exited;
});
