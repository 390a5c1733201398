import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import type { Express } from 'express';
import { createApp, type AppDeps } from '../../src/app.js';
import { parseConfig, type Config } from '../../src/config/config.js';
import { generateToken, ADMIN_TOKEN_PREFIX, type Secrets } from '../../src/config/secrets.js';
import { createLogger } from '../../src/http/logger.js';
import type { TestDatabase } from './database.js';

export interface TestApp {
  app: Express;
  config: Config;
  secrets: Secrets;
  /** Every log line the app wrote, as text. */
  logs: () => string;
}

/** The app as main.ts builds it, on a test database, with fresh secrets and captured logs. */
export function buildTestApp(
  t: TestDatabase,
  env: Record<string, string> = {},
  deps: Partial<Pick<AppDeps, 'resolveTenantAdmin'>> = {},
): TestApp {
  const config = parseConfig({ GATEHOUSE_BASE_URL: 'https://gatehouse.test', LOG_LEVEL: 'debug', ...env });
  const secrets: Secrets = {
    adminToken: generateToken(ADMIN_TOKEN_PREFIX),
    masterKey: randomBytes(32),
    adminTokenGenerated: false,
  };
  let captured = '';
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      captured += chunk.toString();
      done();
    },
  });
  const logger = createLogger(config.logLevel, sink);
  const app = createApp({ config, db: t.db, secrets, logger, ...deps });
  return { app, config, secrets, logs: () => captured };
}
