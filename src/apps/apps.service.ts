import { randomBytes, randomUUID } from 'node:crypto';
import argon2 from 'argon2';
import { IsNull, type EntityManager } from 'typeorm';
import { recordAudit, type AuditContext } from '../audit/audit.service.js';
import { outboundTargetProblem } from '../outbound/address-policy.js';
import { type Database, isUuid, PLATFORM_TENANT_ID } from '../db/database.js';
import { BadRequestError, NotFoundError } from '../errors.js';
import { App, type SigningAlg } from './app.entity.js';
import { AppSecret } from './app-secret.entity.js';
import {
  ensureWebhookSecret,
  rotateWebhookSecretOfLockedApp,
  type RotatedWebhookSecret,
} from '../webhooks/webhook-secrets.js';
import { revokeAppSessions } from './app-sessions.js';

/**
 * Main apps registered as OAuth clients of Gatehouse (platform level, operator
 * only). client_id = the app's id. Client secrets:
 * `gh_secret_<secret id, 32 hex>_<43 base64url>`, argon2id-hashed and shown
 * once; the id picks the one row to verify against, so a check costs one
 * argon2 verification however many secrets overlap during a rotation.
 */
export const CLIENT_SECRET_PREFIX = 'gh_secret_';
const SECRET_FORMAT = /^gh_secret_([0-9a-f]{32})_([A-Za-z0-9_-]{43})$/;
export const DEFAULT_ROTATION_OVERLAP_SECONDS = 86_400;

export interface AppInput {
  name: string;
  redirect_uris: string[];
  client_type?: 'confidential' | 'public';
  post_logout_redirect_uris?: string[];
  backchannel_logout_uri?: string | null;
  token_signing_alg?: SigningAlg;
  /** Signed directory events (src/webhooks); setting it issues a webhook secret if the app has none. */
  webhook_url?: string | null;
  /** OIDC Core §4 third-party initiated login: where IdP-initiated logins start the app's own login. */
  initiate_login_uri?: string | null;
}
export type AppUpdate = Partial<Omit<AppInput, 'client_type'>>;

export interface AppSecretView {
  id: string;
  created_at: string;
  /** null: valid until rotated. */
  expires_at: string | null;
}

export interface AppView {
  client_id: string;
  name: string;
  client_type: 'confidential' | 'public';
  redirect_uris: string[];
  post_logout_redirect_uris: string[];
  backchannel_logout_uri: string | null;
  token_signing_alg: SigningAlg;
  webhook_url: string | null;
  initiate_login_uri: string | null;
  created_at: string;
  updated_at: string;
  /** Metadata of the secrets that still verify; never the secret or its hash. */
  secrets: AppSecretView[];
}

export function appView(app: App, secrets: AppSecret[]): AppView {
  return {
    client_id: app.id,
    name: app.name,
    client_type: app.clientType,
    redirect_uris: app.redirectUris,
    post_logout_redirect_uris: app.postLogoutRedirectUris,
    backchannel_logout_uri: app.backchannelLogoutUri,
    token_signing_alg: app.tokenSigningAlg,
    webhook_url: app.webhookUrl,
    initiate_login_uri: app.initiateLoginUri,
    created_at: app.createdAt.toISOString(),
    updated_at: app.updatedAt.toISOString(),
    secrets: secrets.map((s) => ({
      id: s.id,
      created_at: s.createdAt.toISOString(),
      expires_at: s.expiresAt?.toISOString() ?? null,
    })),
  };
}

const target = (id: string) => ({ type: 'app', id });

/** Platform changes and their audit events, in one transaction on the platform chain. */
function withPlatformAudit<T>(db: Database, fn: (em: EntityManager) => Promise<T>): Promise<T> {
  return db.withTenant(PLATFORM_TENANT_ID, fn);
}

async function loadApp(em: EntityManager, appId: string): Promise<App> {
  const app = isUuid(appId) ? await em.findOneBy(App, { id: appId, deletedAt: IsNull() }) : null;
  if (!app) throw new NotFoundError('App');
  return app;
}

async function liveSecrets(em: EntityManager, appId: string, now: Date): Promise<AppSecret[]> {
  const rows = await em.find(AppSecret, { where: { appId }, order: { createdAt: 'ASC', id: 'ASC' } });
  return rows.filter((s) => !s.expiresAt || s.expiresAt > now);
}

async function issueSecret(em: EntityManager, appId: string, now: Date) {
  const id = randomUUID();
  const secret = `${CLIENT_SECRET_PREFIX}${id.replaceAll('-', '')}_${randomBytes(32).toString('base64url')}`;
  const row = em.create(AppSecret, {
    id,
    appId,
    secretHash: await argon2.hash(secret, { type: argon2.argon2id }),
    createdAt: now,
    expiresAt: null,
  });
  await em.insert(AppSecret, row);
  return { id, secret };
}

/** Where the outbound address rule applies to an app's URLs (config.outboundFetch). */
export type OperatorUrlPolicy = Parameters<typeof outboundTargetProblem>[1];

/**
 * Gatehouse POSTs to webhook_url and backchannel_logout_uri, and sends
 * browsers to initiate_login_uri: none may name a private, loopback,
 * link-local or cloud-metadata address unless the operator allowed it
 * (GATEHOUSE_OUTBOUND_ALLOWED_NETWORKS, or the development setting). Checked
 * here at registration, and again at every delivery (src/outbound/).
 */
async function checkOperatorUrls(input: AppUpdate, policy: OperatorUrlPolicy | undefined): Promise<void> {
  if (!policy) return;
  const fields = ['webhook_url', 'backchannel_logout_uri', 'initiate_login_uri'] as const;
  for (const field of fields) {
    const value = input[field];
    if (typeof value !== 'string') continue;
    const problem = await outboundTargetProblem(value, policy);
    if (problem) throw new BadRequestError(`${field}: ${problem}`);
  }
}

/** 201 answer: the app, plus `client_secret` for confidential clients (and `webhook_secret`) — shown this once. */
export async function createApp(
  db: Database,
  input: AppInput,
  ctx: AuditContext,
  masterKey?: Buffer,
  outbound?: OperatorUrlPolicy,
): Promise<AppView & { client_secret?: string; webhook_secret?: string }> {
  await checkOperatorUrls(input, outbound);
  const now = new Date();
  return withPlatformAudit(db, async (em) => {
    const app = em.create(App, {
      id: randomUUID(),
      name: input.name,
      clientType: input.client_type ?? 'confidential',
      redirectUris: input.redirect_uris,
      postLogoutRedirectUris: input.post_logout_redirect_uris ?? [],
      backchannelLogoutUri: input.backchannel_logout_uri ?? null,
      tokenSigningAlg: input.token_signing_alg ?? 'ES256',
      webhookUrl: input.webhook_url ?? null,
      initiateLoginUri: input.initiate_login_uri ?? null,
      createdAt: now,
      updatedAt: now,
      deletedAt: null,
    });
    await em.insert(App, app);
    const issued = app.clientType === 'confidential' ? await issueSecret(em, app.id, now) : null;
    const webhookSecret = app.webhookUrl ? await ensureWebhookSecret(em, masterKey, app.id, now) : null;
    const view = appView(app, await liveSecrets(em, app.id, now));
    await recordAudit(em, PLATFORM_TENANT_ID, {
      ...ctx,
      action: 'app.created',
      target: target(app.id),
      after: { ...view },
    });
    return {
      ...view,
      ...(issued ? { client_secret: issued.secret } : {}),
      ...(webhookSecret ? { webhook_secret: webhookSecret } : {}),
    };
  });
}

export async function listApps(
  db: Database,
  page: { limit: number; offset: number },
): Promise<{ data: AppView[]; total: number }> {
  const now = new Date();
  return db.withPlatform(async (em) => {
    const [rows, total] = await em.findAndCount(App, {
      where: { deletedAt: IsNull() },
      order: { createdAt: 'ASC', id: 'ASC' },
      take: page.limit,
      skip: page.offset,
    });
    const views: AppView[] = [];
    for (const app of rows) views.push(appView(app, await liveSecrets(em, app.id, now)));
    return { data: views, total };
  });
}

export async function getApp(db: Database, appId: string): Promise<AppView> {
  return db.withPlatform(async (em) => {
    const app = await loadApp(em, appId);
    return appView(app, await liveSecrets(em, app.id, new Date()));
  });
}

export async function updateApp(
  db: Database,
  appId: string,
  input: AppUpdate,
  ctx: AuditContext,
  masterKey?: Buffer,
  outbound?: OperatorUrlPolicy,
): Promise<AppView & { webhook_secret?: string }> {
  await checkOperatorUrls(input, outbound);
  const now = new Date();
  return withPlatformAudit(db, async (em) => {
    const app = await loadApp(em, appId);
    const secrets = await liveSecrets(em, app.id, now);
    const before = appView(app, secrets);
    if (input.name !== undefined) app.name = input.name;
    if (input.redirect_uris !== undefined) app.redirectUris = input.redirect_uris;
    if (input.post_logout_redirect_uris !== undefined)
      app.postLogoutRedirectUris = input.post_logout_redirect_uris;
    if (input.backchannel_logout_uri !== undefined) app.backchannelLogoutUri = input.backchannel_logout_uri;
    if (input.token_signing_alg !== undefined) app.tokenSigningAlg = input.token_signing_alg;
    if (input.webhook_url !== undefined) app.webhookUrl = input.webhook_url;
    if (input.initiate_login_uri !== undefined) app.initiateLoginUri = input.initiate_login_uri;
    app.updatedAt = now;
    await em.save(App, app);
    const webhookSecret = app.webhookUrl ? await ensureWebhookSecret(em, masterKey, app.id, now) : null;
    const after = appView(app, secrets);
    await recordAudit(em, PLATFORM_TENANT_ID, {
      ...ctx,
      action: 'app.updated',
      target: target(app.id),
      before: { ...before },
      after: { ...after },
    });
    return webhookSecret ? { ...after, webhook_secret: webhookSecret } : after;
  });
}

/**
 * Soft delete: the row stays (ids in old audit events still mean something);
 * its secrets and pending authorization requests go, and what it issued ends:
 * from the commit its tokens are refused (client authentication and
 * liveSession check deleted_at), then its live sessions are revoked in every
 * tenant (app-sessions.ts).
 */
export async function deleteApp(db: Database, appId: string, ctx: AuditContext): Promise<void> {
  const now = new Date();
  const id = await withPlatformAudit(db, async (em) => {
    const app = await loadApp(em, appId);
    const before = appView(app, await liveSecrets(em, app.id, now));
    await em.delete(AppSecret, { appId: app.id });
    await em.query('DELETE FROM authorization_requests WHERE app_id = $1', [app.id]);
    app.deletedAt = now;
    app.updatedAt = now;
    await em.save(App, app);
    await recordAudit(em, PLATFORM_TENANT_ID, {
      ...ctx,
      action: 'app.deleted',
      target: target(app.id),
      before: { ...before },
    });
    return app.id;
  });
  await revokeAppSessions(db, id, 'app_deleted', ctx);
}

/**
 * Rotation with overlap: a new secret (shown once), and every earlier secret
 * keeps working until now + overlapSeconds (never extended past an earlier
 * expiry), so the app can roll out the new one without downtime.
 */
export async function rotateAppSecret(
  db: Database,
  appId: string,
  input: { overlapSeconds: number },
  ctx: AuditContext,
): Promise<{
  client_id: string;
  client_secret: string;
  secret_id: string;
  previous_secrets_expire_at: string;
}> {
  const now = new Date();
  const expiresAt = new Date(now.getTime() + input.overlapSeconds * 1000);
  return withPlatformAudit(db, async (em) => {
    const app = await loadApp(em, appId);
    if (app.clientType !== 'confidential') throw new BadRequestError('public clients have no client secret');
    const previous = await liveSecrets(em, app.id, now);
    for (const secret of previous) {
      if (!secret.expiresAt || secret.expiresAt > expiresAt) {
        await em.update(AppSecret, { id: secret.id }, { expiresAt });
      }
    }
    const issued = await issueSecret(em, app.id, now);
    await recordAudit(em, PLATFORM_TENANT_ID, {
      ...ctx,
      action: 'app.secret_rotated',
      target: target(app.id),
      after: {
        new_secret_id: issued.id,
        previous_secret_ids: previous.map((s) => s.id),
        previous_expire_at: expiresAt.toISOString(),
      },
    });
    return {
      client_id: app.id,
      client_secret: issued.secret,
      secret_id: issued.id,
      previous_secrets_expire_at: expiresAt.toISOString(),
    };
  });
}

/**
 * Rotates the app's webhook signing secret (webhooks/webhook-secrets.ts) with
 * the live app's row locked for the transaction, so a concurrent delete waits.
 */
export async function rotateWebhookSecret(
  db: Database,
  masterKey: Buffer,
  appId: string,
  input: { overlapSeconds: number },
  ctx: AuditContext,
): Promise<RotatedWebhookSecret> {
  const now = new Date();
  return db.withTenant(PLATFORM_TENANT_ID, async (em) => {
    const found = isUuid(appId)
      ? await em.query<unknown[]>('SELECT 1 FROM apps WHERE id = $1 AND deleted_at IS NULL FOR UPDATE', [
          appId,
        ])
      : [];
    if (found.length === 0) throw new NotFoundError('App');
    return rotateWebhookSecretOfLockedApp(em, masterKey, appId, { ...input, now }, ctx);
  });
}

/** The app behind a client_id, when registered and not deleted (for /oauth/*). */
export async function findApp(db: Database, appId: string): Promise<App | null> {
  if (!isUuid(appId)) return null;
  return db.readPlatform((em) => em.findOneBy(App, { id: appId, deletedAt: IsNull() }));
}

/**
 * The initiate_login_uri of a registered, not deleted app (the app an
 * IdP-initiated login of a connection lands in), or null. In the caller's
 * transaction, tenant or platform: apps are platform rows every tenant reads.
 */
export async function idpInitiatedLoginUri(em: EntityManager, appId: string): Promise<string | null> {
  const rows = await em.query<{ initiate_login_uri: string | null }[]>(
    'SELECT initiate_login_uri FROM apps WHERE id = $1 AND deleted_at IS NULL',
    [appId],
  );
  return rows[0]?.initiate_login_uri ?? null;
}

/** Does `appId` name an app that takes IdP-initiated logins (idpInitiatedLoginUri)? */
export async function appTakesIdpInitiatedLogin(em: EntityManager, appId: string): Promise<boolean> {
  return (await idpInitiatedLoginUri(em, appId)) !== null;
}

/**
 * The stored secret that `secret` names by its id, if it belongs to the app,
 * the app is not deleted and the secret has not expired at `now` — read from
 * the database every time, so a rotation or deletion counts at once.
 */
export async function currentSecretHash(
  db: Database,
  appId: string,
  secret: string,
  now: Date,
): Promise<string | null> {
  const secretId = secretIdOf(secret);
  if (!secretId || !isUuid(appId)) return null;
  // One statement, no transaction around it (issue 13: a client authentication costs one round trip here, not three).
  const [row] = await db.queryOutsideTenant<{ secret_hash: string; expires_at: Date | null }>(
    `SELECT s.secret_hash, s.expires_at FROM app_secrets s JOIN apps a ON a.id = s.app_id
      WHERE s.id = $1 AND s.app_id = $2 AND a.deleted_at IS NULL`,
    [secretId, appId],
  );
  if (!row || (row.expires_at && row.expires_at <= now)) return null;
  return row.secret_hash;
}

/** The stored secret's id, which a client secret carries in clear (`gh_secret_<id>_<random>`). */
function secretIdOf(secret: string): string | null {
  const h = SECRET_FORMAT.exec(secret)?.[1];
  return h ? `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}` : null;
}

/**
 * Client authentication's read (issue 13): the live app behind a client_id and, when `secret` names one of
 * its secrets that has not expired at `now`, that secret's hash — one statement (in the caller's context:
 * db.readPlatform, or a platform transaction that sends it with others), read every time so a deletion,
 * rotation or expiry counts at once. Null when the app is unknown or deleted.
 */
export async function findAppWithSecretHash(
  em: EntityManager,
  appId: string,
  secret: string | null,
  now: Date,
): Promise<{ app: App; secretHash: string | null } | null> {
  if (!isUuid(appId)) return null;
  const secretId = secret === null ? null : secretIdOf(secret);
  const { entities, raw } = await em
    .createQueryBuilder(App, 'a')
    .leftJoin(AppSecret, 's', 's.id = :secretId AND s.app_id = a.id', { secretId })
    .addSelect(['s.secret_hash AS secret_hash', 's.expires_at AS secret_expires_at'])
    .where('a.id = :appId AND a.deleted_at IS NULL', { appId })
    .getRawAndEntities<{ secret_hash: string | null; secret_expires_at: Date | null }>();
  const app = entities[0];
  if (!app) return null;
  const row = raw[0];
  const current = row?.secret_hash && !(row.secret_expires_at && row.secret_expires_at <= now);
  return { app, secretHash: current ? row.secret_hash : null };
}

/** Whether `secret` is a current (not expired at `now`) client secret of the app. */
export async function verifyClientSecret(
  db: Database,
  appId: string,
  secret: string,
  now: Date,
): Promise<boolean> {
  const hash = await currentSecretHash(db, appId, secret, now);
  return hash !== null && argon2.verify(hash, secret);
}
