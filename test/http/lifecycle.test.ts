import { chmod, mkdtemp, readFile, stat } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startService, waitFor } from '../support/server-process.js';

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => resolve(typeof a === 'object' && a ? a.port : 0));
    });
  });
}

// The built server, as `npm start` runs it: embedded PostgreSQL, first-start
// secrets, readiness, and an orderly SIGTERM.
it('starts on an embedded database, becomes ready, and exits 0 on SIGTERM', async () => {
  const parent = await mkdtemp(path.join(tmpdir(), 'gatehouse-start-'));
  await chmod(parent, 0o755); // as a checkout folder would be
  const dataDir = path.join(parent, 'data');
  const port = await freePort();
  const service = startService({
    PORT: String(port),
    HOST: '127.0.0.1',
    GATEHOUSE_DATA_DIR: dataDir,
    GATEHOUSE_EMBEDDED_PG_PORT: String(await freePort()),
    // A typo: warned about at start, naming the setting meant.
    GATEHOUSE_SESION_TTL: '600',
  });
  try {
    await waitFor(
      () => /listening on|failed to start/.test(service.output()),
      90_000,
      'the service to listen',
    );
    expect(service.output()).toMatch(/listening on/);
    const ready = await fetch(`http://127.0.0.1:${port}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: 'ready' });

    // First start: the admin token is generated and stored 0600. Output that is not a terminal
    // (this pipe, container logs) never holds it: it says where the token was written instead.
    const token = (await readFile(path.join(dataDir, 'admin-token'), 'utf8')).trim();
    expect(token).toMatch(/^gh_admin_[A-Za-z0-9_-]{43}$/);
    expect(service.output()).not.toContain(token);
    expect(service.output()).toContain(
      `Operator admin token generated and stored in ${path.join(dataDir, 'admin-token')} (mode 0600)`,
    );
    expect(service.output()).toMatch(
      /GATEHOUSE_SESION_TTL is not a Gatehouse setting and is ignored; did you mean GATEHOUSE_SESSION_TTL\?/,
    );
    for (const file of ['admin-token', 'master-key']) {
      expect((await stat(path.join(dataDir, file))).mode & 0o777).toBe(0o600);
    }
    // The log shows the configuration but no secret.
    expect(service.output()).toMatch(/effective configuration/);
  } finally {
    service.child.kill('SIGTERM');
  }
  const exit = await service.exited;
  expect(exit).toMatchObject({ code: 0, signal: null });
  expect(exit.stdout).toMatch(/"msg":"stopped"/);
}, 120_000);
