import { randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import type { Express } from 'express';
import request from 'supertest';
import { createApp } from '../../src/app.js';
import { parseConfig, type Config } from '../../src/config/config.js';
import { createDataSource } from '../../src/db/data-source.js';
import { Database } from '../../src/db/database.js';
import { NotificationBus } from '../../src/db/notification-bus.js';
import { ENTITIES } from '../../src/entities.js';
import { createLogger } from '../../src/http/logger.js';
import { notifyScimTokenRevoked } from '../../src/scim/scim-token-events.js';
import { issueScimToken } from '../../src/scim/scim-token.js';
import type { TestDatabase } from '../support/database.js';
import { installationSecrets } from '../support/gatehouse-node.js';

export const SCIM = 'application/scim+json';
export const USER_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:User';
export const GROUP_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:Group';
export const ENTERPRISE = 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User';
export const PATCH_OP = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';
export const LIST = 'urn:ietf:params:scim:api:messages:2.0:ListResponse';
export const ERROR = 'urn:ietf:params:scim:api:messages:2.0:Error';
export const BASE_URL = 'https://gatehouse.test';

export interface ScimNode {
  app: Express;
  config: Config;
  db: Database;
  notifications: NotificationBus | undefined;
  logs: () => string;
  close(): Promise<void>;
}

/**
 * A Gatehouse node as main.ts builds it, with its own pool and (unless
 * `listen: false`) its own LISTEN connection: two of these on one test
 * database are two service nodes.
 */
export async function startNode(
  t: TestDatabase,
  options: { env?: Record<string, string>; listen?: boolean; ownPool?: boolean } = {},
): Promise<ScimNode> {
  const config = parseConfig({ GATEHOUSE_BASE_URL: BASE_URL, LOG_LEVEL: 'debug', ...options.env });
  let db = t.db;
  let closePool = async () => {};
  if (options.ownPool) {
    const ds = createDataSource({ url: t.appUrl, entities: ENTITIES, poolSize: 5 });
    await ds.initialize();
    db = new Database(ds);
    closePool = () => db.close();
  }
  const notifications = options.listen === false ? undefined : new NotificationBus({ url: t.appUrl });
  await notifications?.start();
  let captured = '';
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      captured += chunk.toString();
      done();
    },
  });
  const app = createApp({
    config,
    db,
    // Nodes of one installation share its secrets (src/db/installation.ts).
    secrets: installationSecrets(t),
    logger: createLogger(config.logLevel, sink),
    notifications,
  });
  return {
    app,
    config,
    db,
    notifications,
    logs: () => captured,
    close: async () => {
      await notifications?.close();
      await closePool();
    },
  };
}

export async function createTenant(t: TestDatabase, slug = `t-${randomUUID().slice(0, 8)}`): Promise<string> {
  const id = randomUUID();
  await t.db.withPlatform((em) =>
    em.query('INSERT INTO tenants (id, slug, name) VALUES ($1, $2, $3)', [id, slug, slug]),
  );
  return id;
}

/** A SCIM token for the tenant, as the admin API issues it (argon2id hash stored). */
export async function issueToken(db: Database, tenantId: string): Promise<{ id: string; token: string }> {
  const issued = await issueScimToken();
  await db.withTenant(tenantId, (em) =>
    em.query('INSERT INTO scim_tokens (tenant_id, id, description, token_hash) VALUES ($1, $2, $3, $4)', [
      tenantId,
      issued.id,
      'test',
      issued.hash,
    ]),
  );
  return { id: issued.id, token: issued.token };
}

/** Revokes a token the way the admin API does: in one transaction with the NOTIFY. */
export async function revokeToken(
  db: Database,
  tenantId: string,
  tokenId: string,
  notify = true,
): Promise<void> {
  await db.withTenant(tenantId, async (em) => {
    await em.query('UPDATE scim_tokens SET revoked_at = now() WHERE id = $1', [tokenId]);
    if (notify) await notifyScimTokenRevoked(em, tokenId);
  });
}

/** A SCIM client for one tenant: paths are relative to /scim/v2/{tenantId}. */
export function scimClient(app: Express, tenantId: string, token: string) {
  const url = (path: string) => `/scim/v2/${tenantId}${path}`;
  const auth = { Authorization: `Bearer ${token}`, Accept: SCIM };
  return {
    get: (path: string) => request(app).get(url(path)).set(auth),
    delete: (path: string) => request(app).delete(url(path)).set(auth),
    post: (path: string, body: unknown, type = SCIM) =>
      request(app).post(url(path)).set(auth).set('Content-Type', type).send(JSON.stringify(body)),
    put: (path: string, body: unknown, type = SCIM) =>
      request(app).put(url(path)).set(auth).set('Content-Type', type).send(JSON.stringify(body)),
    patch: (path: string, body: unknown, type = SCIM) =>
      request(app).patch(url(path)).set(auth).set('Content-Type', type).send(JSON.stringify(body)),
  };
}

export type ScimClient = ReturnType<typeof scimClient>;

export function newUser(userName: string, extra: Record<string, unknown> = {}) {
  return {
    schemas: [USER_SCHEMA],
    userName,
    name: { givenName: 'Given', familyName: 'Family' },
    emails: [{ value: userName, type: 'work', primary: true }],
    active: true,
    ...extra,
  };
}

export const patchOp = (...operations: Record<string, unknown>[]) => ({
  schemas: [PATCH_OP],
  Operations: operations,
});

export async function waitUntil(
  predicate: () => boolean | Promise<boolean>,
  what: string,
  ms = 5000,
): Promise<void> {
  const until = Date.now() + ms;
  while (!(await predicate())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * Resolves when `bus` receives a matching notification. Handlers run in
 * subscription order, so the node's own subscribers (registered when the app
 * was built) have already acted on it.
 */
export function nextNotification(
  bus: NotificationBus | undefined,
  channel: Parameters<NotificationBus['on']>[0],
  matches: (payload: string) => boolean = () => true,
  ms = 5000,
): Promise<string> {
  if (!bus) throw new Error('this node does not listen');
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`no ${channel} notification within ${ms} ms`));
    }, ms);
    const off = bus.on(channel, (payload) => {
      if (!matches(payload)) return;
      clearTimeout(timer);
      off();
      resolve(payload);
    });
  });
}
