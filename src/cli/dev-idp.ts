import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import type { Server } from 'node:http';
import { isIP } from 'node:net';
import path from 'node:path';
import express from 'express';
import { exportJWK, type JWK } from 'jose';
import { CliError, UsageError } from './admin-client.js';
import type { CliContext, Command, Values } from './commands.js';
import { createOidcProvider, DEV_CLIENT_ID } from './dev-idp-oidc.js';
import { createSamlIdp } from './dev-idp-saml.js';
import { loadPeople, type DevPerson } from './dev-idp-users.js';

/**
 * What does a developer sign in at, on a laptop with no outside IdP?
 * `gatehouse dev-idp`: a SAML 2.0 IdP (samlify) and an OpenID Provider
 * (oidc-provider) on one loopback port, with the people of an editable JSON
 * file; `--setup` registers both with Gatehouse (dev-idp-setup.ts).
 *
 * samlify, oidc-provider and selfsigned stay devDependencies: the dev IdP is
 * run from a clone (where `npm install` brings them) and a production install
 * (`--omit=dev`) carries no IdP that signs for whoever asks.
 */
export interface DevIdpOptions {
  /** Loopback only: 127.0.0.0/8, ::1 or localhost. */
  host: string;
  /** 0: any free port. */
  port: number;
  /** Keys, client secret and the default people file live here. */
  dir: string;
  /** The people file (default `<dir>/users.json`). */
  usersFile?: string;
}

export interface DevIdp {
  baseUrl: string;
  saml: { entityId: string; metadataUrl: string; metadata: string };
  oidc: { issuer: string; clientId: string; clientSecret: string };
  usersFile: string;
  /** Its data folder (keys, secrets kept by --setup). */
  dir: string;
  people(): DevPerson[];
  close(): Promise<void>;
}

interface DevIdpState {
  samlCertificatePem: string;
  samlPrivateKeyPem: string;
  oidcSigningKey: JWK;
  clientSecret: string;
  cookieKey: string;
}

/** Refuses anything but a loopback address: the IdP signs in anyone who clicks a name. */
export function assertLoopbackHost(host: string): void {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  const loopback = h === 'localhost' || h === '::1' || (isIP(h) === 4 && h.startsWith('127.'));
  if (!loopback)
    throw new UsageError(
      `--host ${host}: the development IdP listens on loopback only (127.0.0.1, ::1, localhost)`,
    );
}

async function loadState(dir: string): Promise<DevIdpState> {
  const file = path.join(dir, 'state.json');
  try {
    return JSON.parse(await readFile(file, 'utf8')) as DevIdpState;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  let selfsigned: typeof import('selfsigned');
  try {
    selfsigned = (await import('selfsigned')).default;
  } catch {
    throw new CliError(
      'dev-idp needs the development dependencies: run `npm install` in the Gatehouse clone',
    );
  }
  const pems = await selfsigned.generate([{ name: 'commonName', value: 'Gatehouse dev IdP' }], {
    keyType: 'rsa',
    keySize: 2048,
    algorithm: 'sha256',
    notAfterDate: new Date(Date.now() + 5 * 365 * 86_400_000),
  });
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const state: DevIdpState = {
    samlCertificatePem: pems.cert,
    samlPrivateKeyPem: pems.private,
    oidcSigningKey: {
      ...(await exportJWK(privateKey)),
      kid: `dev-${randomBytes(4).toString('hex')}`,
      alg: 'RS256',
      use: 'sig',
    },
    clientSecret: randomBytes(32).toString('base64url'),
    cookieKey: randomBytes(32).toString('base64url'),
  };
  await writeFile(file, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
  return state;
}

export async function startDevIdp(options: DevIdpOptions): Promise<DevIdp> {
  assertLoopbackHost(options.host);
  await mkdir(options.dir, { recursive: true, mode: 0o700 });
  const state = await loadState(options.dir);
  const usersFile = options.usersFile ?? path.join(options.dir, 'users.json');
  // Read again on every page, so an edit to the file shows without a restart.
  let people = await loadPeople(usersFile);
  const current = () => people;
  const app = express();
  app.disable('x-powered-by');
  const server: Server = await new Promise((resolve, reject) => {
    const s = app.listen(options.port, options.host, () => resolve(s)).on('error', reject);
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : options.port;
  const host = options.host.includes(':') ? `[${options.host.replace(/^\[|\]$/g, '')}]` : options.host;
  const baseUrl = `http://${host}:${port}`;
  try {
    const saml = await createSamlIdp({
      baseUrl,
      keys: { certificatePem: state.samlCertificatePem, privateKeyPem: state.samlPrivateKeyPem },
      people: current,
    });
    const oidc = await createOidcProvider({
      baseUrl,
      clientSecret: state.clientSecret,
      signingKey: state.oidcSigningKey,
      cookieKey: state.cookieKey,
      people: current,
    });
    app.use(async (_req, _res, next) => {
      people = await loadPeople(usersFile).catch(() => people);
      next();
    });
    app.use(saml.router);
    app.use(oidc.router);
    return {
      baseUrl,
      saml: { entityId: saml.entityId, metadataUrl: saml.metadataUrl, metadata: saml.metadata },
      oidc: { issuer: oidc.issuer, clientId: DEV_CLIENT_ID, clientSecret: state.clientSecret },
      usersFile,
      dir: options.dir,
      people: current,
      close: () =>
        new Promise<void>((resolve) => {
          server.closeAllConnections();
          server.close(() => resolve());
        }),
    };
  } catch (error) {
    server.close();
    if ((error as NodeJS.ErrnoException).code === 'ERR_MODULE_NOT_FOUND')
      throw new CliError(
        'dev-idp needs the development dependencies: run `npm install` in the Gatehouse clone',
      );
    throw error;
  }
}

function portOf(values: Values): number {
  const raw = typeof values.port === 'string' ? values.port : '7080';
  const port = Number(raw);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError('--port must be 0–65535');
  return port;
}

export const DEV_IDP_COMMAND: Command = {
  name: 'dev-idp',
  usage:
    'dev-idp [--port 7080] [--host 127.0.0.1] [--users FILE] [--setup [--app-url http://localhost:3000]]   (development only; runs until Ctrl-C)',
  options: {
    port: { type: 'string' },
    host: { type: 'string' },
    users: { type: 'string' },
    setup: { type: 'boolean' },
    'app-url': { type: 'string' },
  },
  async run(ctx: CliContext, values: Values) {
    const host = typeof values.host === 'string' ? values.host : '127.0.0.1';
    assertLoopbackHost(host);
    const idp = await startDevIdp({
      host,
      port: portOf(values),
      dir: path.join(ctx.config.dataDir, 'dev-idp'),
      usersFile: typeof values.users === 'string' ? values.users : undefined,
    });
    ctx.log(
      [
        `Development IdP on ${idp.baseUrl} (loopback only; people in ${idp.usersFile})`,
        `  SAML metadata URL: ${idp.saml.metadataUrl}`,
        `  SAML entity id:    ${idp.saml.entityId}`,
        `  OIDC issuer:       ${idp.oidc.issuer}  (client_id ${idp.oidc.clientId})`,
      ].join('\n'),
    );
    if (values.setup) {
      const { setupDevIdp } = await import('./dev-idp-setup.js');
      const appUrl = typeof values['app-url'] === 'string' ? values['app-url'] : undefined;
      const result = await setupDevIdp(await ctx.api(), idp, idp.dir, appUrl);
      ctx.log(`Registered with Gatehouse:\n${JSON.stringify(result, null, 2)}`);
    }
    ctx.log('Ctrl-C stops it.');
    await new Promise<void>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
    });
    await idp.close();
    return { stopped: true };
  },
};
