import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { inflateRawSync } from 'node:zlib';
import pg from 'pg';

/**
 * How does the bench run Ory Polis (npm: @boxyhq/saml-jackson) beside
 * Gatehouse? In this process, on the bench's PostgreSQL in a database of its
 * own, behind a small node:http server so that both pay for HTTP: SCIM POST
 * /Users (its directory sync API), the SAML ACS (`oauthController.samlResponse`)
 * and the code exchange (`oauthController.token`), routed as Polis's own API
 * routes call those controllers. Polis lives in bench/peers/polis with its own
 * package.json, installed here on first use, never by the root `npm install`;
 * its types are not imported (the folder may not be installed when the bench
 * is compiled), so the few calls used are typed below.
 */

const ROOT = [path.resolve(import.meta.dirname, '..', '..', '..', '..'), process.cwd()].find((dir) =>
  existsSync(path.join(dir, 'bench', 'peers', 'polis', 'package.json')),
);
const PEER_DIR = path.join(ROOT ?? process.cwd(), 'bench', 'peers', 'polis');

interface DirectorySyncResponse {
  status: number;
  data: unknown;
}
interface PolisControllers {
  connectionAPIController: {
    createSAMLConnection(body: Record<string, unknown>): Promise<{ clientID: string; clientSecret: string }>;
  };
  oauthController: {
    authorize(body: Record<string, unknown>): Promise<{ redirect_url?: string; error?: string }>;
    samlResponse(body: {
      SAMLResponse: string;
      RelayState: string;
    }): Promise<{ redirect_url?: string; error?: string }>;
    token(body: Record<string, unknown>, authHeader?: string | null): Promise<{ access_token: string }>;
  };
  directorySyncController: {
    directories: {
      create(params: Record<string, unknown>): Promise<{
        data: { id: string; scim: { secret: string } } | null;
        error: { message: string } | null;
      }>;
    };
    requests: { handle(request: Record<string, unknown>): Promise<DirectorySyncResponse> };
  };
  close(): Promise<void>;
}

/** Installs the peer on first use (`npm install --prefix bench/peers/polis`), then loads it. */
function loadPolis(): (opts: Record<string, unknown>) => Promise<PolisControllers> {
  if (!existsSync(path.join(PEER_DIR, 'node_modules', '@boxyhq', 'saml-jackson', 'package.json'))) {
    process.stdout.write(`# installing the Ory Polis peer into ${PEER_DIR} (first use)\n`);
    const npm = spawnSync('npm', ['install', '--prefix', PEER_DIR, '--no-audit', '--no-fund'], {
      stdio: 'inherit',
    });
    if (npm.status !== 0) throw new Error(`npm install of the Polis peer failed (exit ${npm.status})`);
  }
  const require = createRequire(path.join(PEER_DIR, 'package.json'));
  const loaded = require('@boxyhq/saml-jackson') as {
    default?: (opts: Record<string, unknown>) => Promise<PolisControllers>;
    controllers?: (opts: Record<string, unknown>) => Promise<PolisControllers>;
  };
  const start = loaded.controllers ?? loaded.default;
  if (!start) throw new Error('@boxyhq/saml-jackson exports no controllers()');
  return start;
}

export interface PolisPeer {
  url: string;
  /** Where the IdP posts (Polis's ACS), and the audience Polis checks. */
  acsUrl: string;
  audience: string;
  /** SCIM POST /Users over HTTP, as an IdP's SCIM client sends it. */
  scimUsersUrl: string;
  scimSecret: string;
  tokenUrl: string;
  clientId: string;
  clientSecret: string;
  redirectUri: string;
  /** SAML logins answered at Polis's ACS: the authorization codes its redirects carry. */
  codesFor(responses: { samlResponse: string; relayState: string }[]): Promise<string[]>;
  /** Starts `count` SP-initiated logins: the AuthnRequest id each response must answer, and its RelayState. */
  startLogins(count: number): Promise<{ requestId: string; relayState: string }[]>;
  close(): Promise<void>;
}

async function body(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * Polis on `adminUrl`'s server (a superuser URL: it creates the database `polis_<name>`), with one
 * SAML connection to the IdP described by `idpMetadataXml` and one SCIM directory.
 */
export async function startPolis(input: {
  adminUrl: string;
  name: string;
  /** The IdP for the SAML connection; without it Polis gets no connection (a SCIM-only comparison). */
  idpMetadataXml?: string;
  redirectUri: string;
}): Promise<PolisPeer> {
  const controllers = loadPolis();
  const database = `polis_${input.name}`;
  const admin = new pg.Client({ connectionString: input.adminUrl });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
    await admin.query(`CREATE DATABASE ${database}`);
  } finally {
    await admin.end();
  }
  const dbUrl = new URL(input.adminUrl);
  dbUrl.pathname = `/${database}`;

  const handlers: {
    fn?: (req: IncomingMessage) => Promise<{ status: number; headers: Record<string, string>; body: string }>;
  } = {};
  const server: Server = createServer((req, res) => {
    void (handlers.fn ? handlers.fn(req) : Promise.resolve({ status: 503, headers: {}, body: '' }))
      .then((answer) => res.writeHead(answer.status, answer.headers).end(answer.body))
      .catch((err: unknown) =>
        res
          .writeHead(500, { 'content-type': 'application/json' })
          .end(JSON.stringify({ error: String(err) })),
      );
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const audience = 'https://saml.polis.bench';
  const polis = await controllers({
    externalUrl: url,
    samlPath: '/api/oauth/saml',
    samlAudience: audience,
    // As a production install sets DB_ENCRYPTION_KEY: every stored record encrypted (AES-256-GCM).
    db: {
      engine: 'sql',
      type: 'postgres',
      url: dbUrl.toString(),
      encryptionKey: randomBytes(16).toString('hex'),
    },
    clientSecretVerifier: randomBytes(16).toString('hex'),
    noAnalytics: true,
    logger: { info: () => undefined, warn: () => undefined, error: () => undefined },
  });
  const connection =
    input.idpMetadataXml === undefined
      ? { clientID: '', clientSecret: '' }
      : await polis.connectionAPIController.createSAMLConnection({
          rawMetadata: input.idpMetadataXml,
          defaultRedirectUrl: input.redirectUri,
          redirectUrl: JSON.stringify([input.redirectUri]),
          tenant: 'bench.test',
          product: 'gatehouse-bench',
        });
  const directory = await polis.directorySyncController.directories.create({
    tenant: 'bench.test',
    product: 'gatehouse-bench',
    type: 'generic-scim-v2',
  });
  if (!directory.data) throw new Error(`Polis directory: ${directory.error?.message ?? 'not created'}`);
  const directoryId = directory.data.id;
  const scimSecret = directory.data.scim.secret;

  const json = (status: number, data: unknown) => ({
    status,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(data),
  });
  handlers.fn = async (req) => {
    const text = await body(req);
    if (req.method === 'POST' && req.url === '/api/scim/v2.0/Users') {
      // Polis checks the directory's bearer secret inside handle() (DirectoryUsers.handleRequest).
      const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1] ?? null;
      const answer = await polis.directorySyncController.requests.handle({
        method: 'POST',
        body: JSON.parse(text) as unknown,
        directoryId,
        resourceType: 'users',
        resourceId: undefined,
        apiSecret: bearer,
        query: {},
      });
      return json(answer.status, answer.data);
    }
    if (req.method === 'POST' && req.url === '/api/oauth/saml') {
      const form = new URLSearchParams(text);
      const answer = await polis.oauthController.samlResponse({
        SAMLResponse: form.get('SAMLResponse') ?? '',
        RelayState: form.get('RelayState') ?? '',
      });
      if (!answer.redirect_url) return json(403, { error: answer.error ?? 'no redirect' });
      return { status: 302, headers: { location: answer.redirect_url }, body: '' };
    }
    if (req.method === 'POST' && req.url === '/api/oauth/token') {
      const form = Object.fromEntries(new URLSearchParams(text));
      try {
        return json(200, await polis.oauthController.token(form, req.headers.authorization ?? null));
      } catch (err) {
        return json(400, { error: err instanceof Error ? err.message : String(err) });
      }
    }
    return json(404, {});
  };

  return {
    url,
    acsUrl: `${url}/api/oauth/saml`,
    audience,
    scimUsersUrl: `${url}/api/scim/v2.0/Users`,
    scimSecret,
    tokenUrl: `${url}/api/oauth/token`,
    clientId: connection.clientID,
    clientSecret: connection.clientSecret,
    redirectUri: input.redirectUri,
    async startLogins(count) {
      const out: { requestId: string; relayState: string }[] = [];
      for (let i = 0; i < count; i++) {
        const started = await polis.oauthController.authorize({
          client_id: connection.clientID,
          redirect_uri: input.redirectUri,
          response_type: 'code',
          state: randomBytes(8).toString('hex'),
          code_challenge: '',
          code_challenge_method: '',
        });
        if (!started.redirect_url) throw new Error(`Polis authorize: ${started.error ?? 'no redirect'}`);
        const to = new URL(started.redirect_url);
        // HTTP-Redirect binding (SAML Bindings §3.4.4.1): base64 of raw DEFLATE.
        const request = inflateRawSync(
          Buffer.from(to.searchParams.get('SAMLRequest') ?? '', 'base64'),
        ).toString('utf8');
        const requestId = /\sID="([^"]+)"/.exec(request)?.[1];
        const relayState = to.searchParams.get('RelayState');
        if (!requestId || !relayState) throw new Error('Polis AuthnRequest without ID or RelayState');
        out.push({ requestId, relayState });
      }
      return out;
    },
    async codesFor(responses) {
      const codes: string[] = [];
      for (const r of responses) {
        const answer = await polis.oauthController.samlResponse({
          SAMLResponse: r.samlResponse,
          RelayState: r.relayState,
        });
        const code = answer.redirect_url ? new URL(answer.redirect_url).searchParams.get('code') : null;
        if (!code) throw new Error(`Polis samlResponse gave no code: ${answer.error ?? 'no redirect'}`);
        codes.push(code);
      }
      return codes;
    },
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      await polis.close();
    },
  };
}
