import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createApp } from '../../src/app.js';
import { parseConfig, type Config } from '../../src/config/config.js';
import { ADMIN_TOKEN_PREFIX, generateToken } from '../../src/config/secrets.js';
import type { Database } from '../../src/db/database.js';
import { createLogger } from '../../src/http/logger.js';
import { createSigningKeyStore, type SigningKeyStore } from '../../src/tokens/keys/key-store.js';

/** Gatehouse on a loopback port over a bench database (no IdP side: codes are minted directly). */
export interface BenchGatehouse {
  url: string;
  config: Config;
  keys: SigningKeyStore;
  close(): Promise<void>;
}

export async function startBenchGatehouse(db: Database): Promise<BenchGatehouse> {
  // The port is known only once listening, and the app needs it as its base URL.
  const target: { handler?: Parameters<typeof createServer>[1] } = {};
  const server: Server = createServer((req, res) => target.handler?.(req, res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const config = parseConfig({ GATEHOUSE_BASE_URL: url, LOG_LEVEL: 'silent' });
  const secrets = {
    adminToken: generateToken(ADMIN_TOKEN_PREFIX),
    masterKey: randomBytes(32),
    adminTokenGenerated: false,
  };
  const keys = createSigningKeyStore(config, db, secrets.masterKey);
  target.handler = createApp({ config, db, secrets, logger: createLogger('silent'), signingKeys: keys });
  return {
    url,
    config,
    keys,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A tenant with a connection and one active person. */
export async function seedPerson(
  db: Database,
): Promise<{ tenantId: string; userId: string; connectionId: string }> {
  const tenantId = randomUUID();
  const userId = randomUUID();
  const connectionId = randomUUID();
  await db.withTenant(tenantId, async (em) => {
    await em.query(`INSERT INTO tenants (id, slug, name) VALUES ($1, 'bench', 'Bench')`, [tenantId]);
    await em.query(
      `INSERT INTO connections (tenant_id, id, type, name, status) VALUES ($1, $2, 'saml', 'IdP', 'active')`,
      [tenantId, connectionId],
    );
    await em.query(
      `INSERT INTO users (tenant_id, id, user_name, email) VALUES ($1, $2, 'p@bench.test', 'p@bench.test')`,
      [tenantId, userId],
    );
  });
  return { tenantId, userId, connectionId };
}
