import { createTenantWithToken, startScimServer } from './scim-bench-support.js';
import { startPolis } from '../peers/polis/polis.js';

/**
 * One side of the memory comparison (scim-memory.ts), alone in its own
 * process so that its resident set is its own: `gatehouse APP_URL` starts a
 * Gatehouse node on the bench database, `polis ADMIN_URL` starts Ory Polis.
 * Prints one JSON line — where to send SCIM creates and with which bearer —
 * then serves until its parent closes stdin.
 */
const [side, url] = process.argv.slice(2);
if ((side !== 'gatehouse' && side !== 'polis') || !url) {
  process.stderr.write('usage: memory-child gatehouse APP_URL | polis ADMIN_URL\n');
  process.exit(2);
}

let close: () => Promise<void>;
let target: { usersUrl: string; bearer: string };
if (side === 'gatehouse') {
  // The server reads only appUrl of the bench database.
  const server = await startScimServer({ appUrl: url } as Parameters<typeof startScimServer>[0]);
  const { tenantId, token } = await createTenantWithToken(server.db);
  target = { usersUrl: `${server.url}/scim/v2/${tenantId}/Users`, bearer: token };
  close = () => server.close();
} else {
  const polis = await startPolis({ adminUrl: url, name: 'memory', redirectUri: 'http://localhost:3000/cb' });
  target = { usersUrl: polis.scimUsersUrl, bearer: polis.scimSecret };
  close = () => polis.close();
}
process.stdout.write(`${JSON.stringify(target)}\n`);
process.stdin.resume();
process.stdin.on('end', () => {
  void close().then(() => process.exit(0));
});
