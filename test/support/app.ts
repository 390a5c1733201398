import type { Express } from 'express';
import { createApp, type AppDeps } from '../../src/app.js';
import { parseConfig, type Config } from '../../src/config/config.js';
import type { Secrets } from '../../src/config/secrets.js';
import type { TestDatabase } from './database.js';
import { capturingLogger, installationSecrets } from './gatehouse-node.js';

export { installationSecrets };

export interface TestApp {
  app: Express;
  config: Config;
  secrets: Secrets;
  /** Every log line the app wrote, as text. */
  logs: () => string;
}

/** The app as main.ts builds it, on a test database, with its installation's secrets and captured logs. */
export function buildTestApp(
  t: TestDatabase,
  env: Record<string, string> = {},
  deps: Partial<Pick<AppDeps, 'resolveTenantAdmin' | 'secrets'>> = {},
): TestApp {
  const config = parseConfig({ GATEHOUSE_BASE_URL: 'https://gatehouse.test', LOG_LEVEL: 'debug', ...env });
  const secrets = deps.secrets ?? installationSecrets(t);
  const { logger, logs } = capturingLogger(config.logLevel);
  const app = createApp({ config, db: t.db, secrets, logger, ...deps });
  return { app, config, secrets, logs };
}
