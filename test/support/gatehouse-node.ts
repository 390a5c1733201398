import { randomBytes } from 'node:crypto';
import { createServer, type RequestListener } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import type { Express } from 'express';
import type { Logger } from 'pino';
import { createApp, type AppDeps } from '../../src/app.js';
import { parseConfig, type Config } from '../../src/config/config.js';
import { ADMIN_TOKEN_PREFIX, generateToken, type Secrets } from '../../src/config/secrets.js';
import { createLogger } from '../../src/http/logger.js';
import type { TestDatabase } from './database.js';

/**
 * What the test apps (app.ts, oauth-server.ts, sso-app.ts) build the same way:
 * fresh secrets, a logger whose output the test can read, and Gatehouse
 * listening on a loopback port.
 */

/** A new operator token and master key, as a first start makes them. */
export function freshSecrets(): Secrets {
  return {
    adminToken: generateToken(ADMIN_TOKEN_PREFIX),
    masterKey: randomBytes(32),
    adminTokenGenerated: false,
  };
}

/**
 * One installation's secrets per test database, as every node of a real
 * installation shares them (src/db/installation.ts): a second app on the same
 * database is a second node, and can open the signing keys the first sealed.
 */
const installations = new WeakMap<TestDatabase, Secrets>();

export function installationSecrets(t: TestDatabase): Secrets {
  let secrets = installations.get(t);
  if (!secrets) {
    secrets = freshSecrets();
    installations.set(t, secrets);
  }
  return secrets;
}

/** A logger writing into memory; `logs()` is every line so far, for asserting what was (not) logged. */
export function capturingLogger(level: string): { logger: Logger; logs: () => string } {
  let captured = '';
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      captured += chunk.toString();
      done();
    },
  });
  return { logger: createLogger(level, sink), logs: () => captured };
}

export interface LoopbackServer {
  /** `http://127.0.0.1:<port>` */
  url: string;
  /** Sets the handler; until then requests get 503 (an app may need `url` to be built). */
  serve: (handler: RequestListener) => void;
  close: () => Promise<void>;
}

export async function listenOnLoopback(): Promise<LoopbackServer> {
  let handler: RequestListener | undefined;
  const server = createServer((req, res) => {
    if (handler) handler(req, res);
    else res.writeHead(503).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    serve: (h) => {
      handler = h;
    },
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** The app's optional dependencies (src/app.ts), chosen per test app. */
export type ExtraDeps = Partial<Omit<AppDeps, 'config' | 'db' | 'secrets' | 'logger'>>;

export interface GatehouseNode<D extends ExtraDeps = ExtraDeps> {
  /** Where this node listens. */
  address: string;
  app: Express;
  config: Config;
  secrets: Secrets;
  /** The optional dependencies the app was made with. */
  deps: D;
  logs: () => string;
  close: () => Promise<void>;
}

/**
 * Gatehouse on a loopback port with GATEHOUSE_BASE_URL = that address (so
 * issuer, ACS and callback URLs are real) unless `env` sets another, e.g. a
 * first node's address for a second node.
 */
export async function startGatehouseNode<D extends ExtraDeps = ExtraDeps>(
  t: TestDatabase,
  options: {
    env: Record<string, string>;
    secrets?: Secrets;
    /** The app's optional dependencies, made from the node's config and secrets. */
    deps?: (config: Config, secrets: Secrets) => D;
  },
): Promise<GatehouseNode<D>> {
  const server = await listenOnLoopback();
  const config = parseConfig({ GATEHOUSE_BASE_URL: server.url, LOG_LEVEL: 'debug', ...options.env });
  // A second node on the same database is a node of the same installation: it shares the secrets.
  const secrets = options.secrets ?? installationSecrets(t);
  const { logger, logs } = capturingLogger(config.logLevel);
  const deps = options.deps?.(config, secrets) ?? ({} as D);
  const app = createApp({ config, db: t.db, secrets, logger, ...deps });
  server.serve(app);
  return { address: server.url, app, config, secrets, deps, logs, close: server.close };
}
