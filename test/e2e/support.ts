import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import type { Express } from 'express';
import * as jose from 'jose';
import * as client from 'openid-client';
import { createApp, type AppDeps } from '../../src/app.js';
import { parseConfig, type Config } from '../../src/config/config.js';
import { ADMIN_TOKEN_PREFIX, generateToken, type Secrets } from '../../src/config/secrets.js';
import { createDataSource } from '../../src/db/data-source.js';
import { Database } from '../../src/db/database.js';
import { NotificationBus } from '../../src/db/notification-bus.js';
import { ENTITIES } from '../../src/entities.js';
import { createLogger } from '../../src/http/logger.js';
import { startLogoutDelivery, type LogoutDelivery } from '../../src/sessions/backchannel-logout.js';
import { createSigningKeyStore, type SigningKeyStore } from '../../src/tokens/keys/key-store.js';
import type { Connection } from '../../src/connections/connection.entity.js';
import { TestBrowser } from '../support/browser.js';
import type { TestDatabase } from '../support/database.js';
import type { SamlTestIdp } from '../support/saml-idp.js';
import { spOf } from '../support/sso-factories.js';

/**
 * Gatehouse nodes wired exactly as src/main.ts wires one: its own pool on the
 * shared database, its own started LISTEN connection (NotificationBus), one
 * signing-key store shared by the token endpoints and the back-channel logout
 * delivery worker, listening on its own loopback port. Nodes of one cluster
 * share GATEHOUSE_BASE_URL (the first node's address: the issuer, as behind a
 * load balancer) and the secrets.
 */
export interface GatehouseNode {
  /** Where this node listens. */
  address: string;
  /** GATEHOUSE_BASE_URL: the issuer, the same on every node. */
  baseUrl: string;
  app: Express;
  config: Config;
  secrets: Secrets;
  db: Database;
  notifications: NotificationBus;
  keys: SigningKeyStore;
  delivery: LogoutDelivery;
  logs: () => string;
  close(): Promise<void>;
}

export async function startNode(
  t: TestDatabase,
  shared: {
    baseUrl?: string;
    /** Public URL http://localhost:<port> (a secure context for browsers) instead of http://127.0.0.1:<port>. */
    localhost?: boolean;
    secrets?: Secrets;
    env?: Record<string, string>;
    /** The node's metrics registry, as main.ts makes it (issue 11 metrics tests). */
    metrics?: (db: Database) => AppDeps['metrics'];
  } = {},
): Promise<GatehouseNode> {
  // The first node's base URL is its own address, known only once listening.
  const holder: { app?: Express } = {};
  const server: Server = createServer((req, res) => {
    if (holder.app) holder.app(req, res);
    else res.writeHead(503).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const config = parseConfig({
    GATEHOUSE_BASE_URL:
      shared.baseUrl ?? (shared.localhost ? address.replace('127.0.0.1', 'localhost') : address),
    LOG_LEVEL: 'debug',
    // The SAML IdP in these tests lives on loopback.
    GATEHOUSE_ALLOW_PRIVATE_METADATA_URLS: 'true',
    ...shared.env,
  });
  const secrets: Secrets = shared.secrets ?? {
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

  const ds = createDataSource({ url: t.appUrl, entities: ENTITIES, poolSize: 5 });
  await ds.initialize();
  const db = new Database(ds);
  // From here on, as main.ts: bus, key store, delivery worker, app.
  const notifications = new NotificationBus({
    url: t.appUrl,
    onError: (err) => logger.warn({ err }, 'notification bus error'),
  });
  await notifications.start();
  const keys = createSigningKeyStore(config, db, secrets.masterKey);
  const delivery = startLogoutDelivery({
    db,
    signer: keys,
    issuer: config.baseUrl,
    notifications,
    logger: logger.child({ component: 'backchannel-logout' }),
    maxAttempts: config.backchannelLogout.maxAttempts,
    timeoutMs: config.backchannelLogout.timeoutSeconds * 1000,
  });
  const app = createApp({
    config,
    db,
    secrets,
    logger,
    signingKeys: keys,
    notifications,
    metrics: shared.metrics?.(db),
  });
  holder.app = app;
  return {
    address,
    baseUrl: config.baseUrl,
    app,
    config,
    secrets,
    db,
    notifications,
    keys,
    delivery,
    logs: () => captured,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await delivery.stop();
      await notifications.close();
      await db.close();
    },
  };
}

/** `count` nodes behind one public URL (the first node's address), sharing secrets. */
export async function startCluster(
  t: TestDatabase,
  count: number,
  env: Record<string, string> = {},
): Promise<GatehouseNode[]> {
  const first = await startNode(t, { env });
  const nodes = [first];
  for (let i = 1; i < count; i++)
    nodes.push(await startNode(t, { baseUrl: first.baseUrl, secrets: first.secrets, env }));
  return nodes;
}

/** A JSON request to a node's admin API with the operator token. */
export async function operator(
  node: GatehouseNode,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${node.address}/admin/v1${path}`, {
    method,
    headers: {
      Authorization: `Bearer ${node.secrets.adminToken}`,
      ...(body === undefined ? {} : { 'Content-Type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

/** Registers the main app (a confidential client) through the admin API. */
export async function registerMainApp(
  node: GatehouseNode,
  input: { redirect_uris: string[]; backchannel_logout_uri?: string },
): Promise<{ clientId: string; clientSecret: string }> {
  const res = await operator(node, 'POST', '/apps', { name: 'Main app', ...input });
  if (res.status !== 201) throw new Error(`app registration failed: ${res.status}`);
  return { clientId: String(res.body.client_id), clientSecret: String(res.body.client_secret) };
}

/** A SCIM token issued through the admin API, as the IdP admin pastes it into Okta or Entra. */
export async function issueScimToken(
  node: GatehouseNode,
  tenantId: string,
): Promise<{ id: string; token: string; scimBaseUrl: string }> {
  const res = await operator(node, 'POST', `/tenants/${tenantId}/scim-tokens`, { description: 'Okta' });
  if (res.status !== 201) throw new Error(`SCIM token: ${res.status}`);
  return {
    id: String(res.body.id),
    token: String(res.body.token),
    scimBaseUrl: String(res.body.scim_base_url),
  };
}

export const SCIM_TYPE = 'application/scim+json';
export const PATCH_OP = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';

/**
 * The IdP's SCIM client over real HTTP, sending to one node: the path is the
 * scim_base_url's path (the public URL), the host is the node's.
 */
export function scimClient(node: GatehouseNode, scimBaseUrl: string, token: string) {
  const path = new URL(scimBaseUrl).pathname;
  return async (
    method: string,
    resource: string,
    body?: unknown,
  ): Promise<{ status: number; body: Record<string, unknown> }> => {
    const res = await fetch(`${node.address}${path}${resource}`, {
      method,
      headers: {
        Authorization: `Bearer ${token}`,
        Accept: SCIM_TYPE,
        ...(body === undefined ? {} : { 'Content-Type': SCIM_TYPE }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
  };
}

/**
 * The main app, played by openid-client 6 as a real integration uses it: it
 * discovered Gatehouse at the public URL (node 1) and verifies access tokens
 * against the remote JWKS; `via(node)` is the same client with its
 * back-channel requests (token, introspection, userinfo) landing on one node,
 * as a load balancer would route them.
 */
export class MainApp {
  private constructor(
    readonly config: client.Configuration,
    readonly clientId: string,
    private readonly clientSecret: string,
    readonly callback: string,
    readonly jwks: ReturnType<typeof jose.createRemoteJWKSet>,
  ) {}

  static async connect(
    node: GatehouseNode,
    registered: { clientId: string; clientSecret: string },
    callback: string,
  ): Promise<MainApp> {
    const config = await client.discovery(
      new URL(node.baseUrl),
      registered.clientId,
      undefined,
      client.ClientSecretBasic(registered.clientSecret),
      { execute: [client.allowInsecureRequests] },
    );
    const jwks = jose.createRemoteJWKSet(new URL(config.serverMetadata().jwks_uri ?? ''));
    return new MainApp(config, registered.clientId, registered.clientSecret, callback, jwks);
  }

  get issuer(): string {
    return this.config.serverMetadata().issuer;
  }

  via(node: GatehouseNode): client.Configuration {
    // The discovered metadata, without openid-client's helper methods.
    const metadata = JSON.parse(JSON.stringify(this.config.serverMetadata())) as client.ServerMetadata;
    const onNode = (url: string | undefined) => url?.replace(node.baseUrl, node.address);
    const config = new client.Configuration(
      {
        ...metadata,
        jwks_uri: onNode(metadata.jwks_uri),
        token_endpoint: onNode(metadata.token_endpoint),
        introspection_endpoint: onNode(metadata.introspection_endpoint),
        revocation_endpoint: onNode(metadata.revocation_endpoint),
        userinfo_endpoint: onNode(metadata.userinfo_endpoint),
      },
      this.clientId,
      undefined,
      client.ClientSecretBasic(this.clientSecret),
    );
    client.allowInsecureRequests(config);
    return config;
  }

  /**
   * SP-initiated SAML, every hop real: the app's authorize request → Gatehouse
   * redirects to the IdP → the IdP (samlify) signs its answer → the browser
   * POSTs it to the ACS. `back.redirectedTo` is the app's callback, or null
   * when Gatehouse answered with a page.
   */
  async loginAtIdp(saml: SamlLogin, email: string, attributes: Record<string, string | string[]> = {}) {
    const verifier = client.randomPKCECodeVerifier();
    const checks = {
      pkceCodeVerifier: verifier,
      expectedState: client.randomState(),
      expectedNonce: client.randomNonce(),
    };
    const url = client.buildAuthorizationUrl(this.config, {
      redirect_uri: this.callback,
      scope: 'openid email profile',
      code_challenge: await client.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state: checks.expectedState,
      nonce: checks.expectedNonce,
      login_hint: email,
    });
    const browser = new TestBrowser();
    // A refusal before the IdP (discovery) goes back to the app's callback with an OAuth error.
    const toIdp = await browser.visit(url.toString(), [saml.idp.ssoUrl, this.callback]);
    if (!toIdp.redirectedTo || toIdp.redirectedTo.startsWith(this.callback)) return { back: toIdp, checks };
    const sp = spOf(this.issuer, saml.connection);
    const answer = await saml.idp.answer(toIdp.redirectedTo, sp, {
      nameId: email,
      attributes: { email, firstName: 'Alice', lastName: 'Anderson', ...attributes },
    });
    const back = await browser.visit(sp.acsUrl, this.callback, {
      method: 'POST',
      form: { SAMLResponse: answer.samlResponse },
    });
    return { back, checks };
  }

  /** The whole sign-in, then the code exchange and the API's JWKS check of the access token. */
  async signIn(
    saml: SamlLogin,
    email: string,
    attributes: Record<string, string | string[]> = {},
  ): Promise<SignedIn> {
    const { back, checks } = await this.loginAtIdp(saml, email, attributes);
    if (!back.redirectedTo) throw new Error(`no redirect to the app: ${back.status} ${back.body}`);
    const tokens = await client.authorizationCodeGrant(this.config, new URL(back.redirectedTo), {
      ...checks,
      idTokenExpected: true,
    });
    const idToken = tokens.claims();
    if (!idToken || typeof idToken.sid !== 'string' || !tokens.refresh_token)
      throw new Error('expected an ID token with sid, and a refresh token');
    const { payload } = await jose.jwtVerify(tokens.access_token, this.jwks, {
      issuer: this.issuer,
      typ: 'at+jwt',
    });
    if (payload.sub !== idToken.sub || payload.sid !== idToken.sid || payload.client_id !== this.clientId)
      throw new Error('the access token does not match the ID token');
    return {
      accessToken: tokens.access_token,
      refreshToken: tokens.refresh_token,
      sub: idToken.sub,
      sid: idToken.sid,
      tid: String(payload.tid),
      roles: payload.roles,
    };
  }
}

/** A tenant's SAML IdP and the Gatehouse connection trusting it. */
export interface SamlLogin {
  idp: SamlTestIdp;
  connection: Pick<Connection, 'id'>;
}

export interface SignedIn {
  accessToken: string;
  refreshToken: string;
  sub: string;
  /** The session id, from the ID token. */
  sid: string;
  tid: string;
  roles: unknown;
}

/** The logout tokens `receiver` got for one session. */
export function logoutTokensOf(receiver: { tokens: string[] }, sid: string): string[] {
  return receiver.tokens.filter((token) => jose.decodeJwt(token).sid === sid);
}

/** Polls `predicate` until true, at most `ms` (an upper bound on waiting, not a timing assertion). */
export async function eventually(
  predicate: () => boolean | Promise<boolean>,
  what: string,
  ms = 10_000,
): Promise<void> {
  const until = Date.now() + ms;
  while (!(await predicate())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The tenant's back-channel logout outbox, oldest first. */
export function outbox(
  db: Database,
  tenantId: string,
): Promise<{ session_id: string; user_id: string; status: string; attempts: number }[]> {
  return db.withTenant(tenantId, (em) =>
    em.query('SELECT session_id, user_id, status, attempts FROM logout_outbox ORDER BY created_at, id'),
  );
}

/** A logout token verified as the app must (Back-Channel Logout 1.0 §2.6): Gatehouse's JWKS, iss, aud, typ. */
export async function verifyLogoutToken(app: MainApp, token: string) {
  return jose.jwtVerify(token, app.jwks, {
    issuer: app.issuer,
    audience: app.clientId,
    typ: 'logout+jwt',
    requiredClaims: ['iat', 'exp', 'jti', 'sub', 'sid', 'events'],
  });
}

/** Waits until the tenant's outbox holds a row for each of `sids` and every row is delivered. */
export async function logoutsDelivered(db: Database, tenantId: string, sids: string[]): Promise<void> {
  await eventually(
    async () => {
      const rows = await outbox(db, tenantId);
      return (
        sids.every((sid) => rows.some((r) => r.session_id === sid)) &&
        rows.every((r) => r.status === 'delivered')
      );
    },
    `the back-channel logouts of ${sids.join(', ')}`,
  );
}

/**
 * A refused login after the app's redirect_uri was validated: the browser is back at the app's callback with
 * RFC 6749 §4.1.2.1 error=access_denied, its state, Gatehouse's iss (RFC 9207) and the reason code.
 */
export function expectRefusedToApp(
  back: { redirectedTo: string | null },
  checks: { expectedState: string },
  callback: string,
  issuer: string,
  reason: string,
): void {
  expect(back.redirectedTo?.startsWith(`${callback}?`)).toBe(true);
  const params = Object.fromEntries(new URL(back.redirectedTo ?? '').searchParams);
  expect(params).toEqual({
    error: 'access_denied',
    error_description: reason,
    state: checks.expectedState,
    iss: issuer,
  });
}
