import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import type { EntityManager } from 'typeorm';
import { recordAudit, type AuditContext } from '../audit/audit.service.js';
import { open, seal } from '../config/secret-box.js';
import { PLATFORM_TENANT_ID } from '../db/database.js';
import { AppWebhookSecret } from './app-webhook-secret.entity.js';

/**
 * An app's webhook signing secrets: `gh_whsec_<43 base64url>` (32 random
 * bytes), shown once, stored sealed with the master key and bound to its row
 * (context = app id + secret id), so Gatehouse can sign with it and a copied
 * ciphertext opens nowhere else.
 */
export const WEBHOOK_SECRET_PREFIX = 'gh_whsec_';
export const DEFAULT_WEBHOOK_ROTATION_OVERLAP_SECONDS = 86_400;

const sealContext = (appId: string, secretId: string) => `app-webhook-secret:${appId}:${secretId}`;

/** The Stripe/WorkOS scheme: `t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`, one v1 per live secret. */
export function signatureHeader(secrets: string[], body: string, timestamp: number): string {
  const v1 = secrets.map(
    (secret) => `v1=${createHmac('sha256', secret).update(`${timestamp}.${body}`, 'utf8').digest('hex')}`,
  );
  return [`t=${timestamp}`, ...v1].join(',');
}

async function insertSecret(em: EntityManager, masterKey: Buffer, appId: string, now: Date) {
  const id = randomUUID();
  const secret = `${WEBHOOK_SECRET_PREFIX}${randomBytes(32).toString('base64url')}`;
  await em.insert(AppWebhookSecret, {
    id,
    appId,
    secretSealed: seal(masterKey, secret, sealContext(appId, id)),
    createdAt: now,
    expiresAt: null,
  });
  return { id, secret };
}

async function liveSecretRows(em: EntityManager, appId: string, now: Date): Promise<AppWebhookSecret[]> {
  const rows = await em.find(AppWebhookSecret, {
    where: { appId },
    order: { createdAt: 'DESC', id: 'ASC' },
  });
  return rows.filter((s) => !s.expiresAt || s.expiresAt > now);
}

/**
 * Issues the app's first webhook secret when it has none that is live (called
 * in the transaction that sets a webhook URL); the secret to show once, or null.
 */
export async function ensureWebhookSecret(
  em: EntityManager,
  masterKey: Buffer | undefined,
  appId: string,
  now: Date,
): Promise<string | null> {
  if ((await liveSecretRows(em, appId, now)).length > 0) return null;
  if (!masterKey) throw new Error('a master key is needed to issue a webhook secret');
  return (await insertSecret(em, masterKey, appId, now)).secret;
}

/** The app's live secrets, newest first, opened for signing a delivery. */
export async function openWebhookSecrets(
  em: EntityManager,
  masterKey: Buffer,
  appId: string,
  now: Date,
): Promise<string[]> {
  return (await liveSecretRows(em, appId, now)).map((row) =>
    open(masterKey, row.secretSealed, sealContext(appId, row.id)),
  );
}

export interface RotatedWebhookSecret {
  client_id: string;
  webhook_secret: string;
  secret_id: string;
  previous_secrets_expire_at: string;
}

/**
 * Rotation with overlap, like client secrets: a new secret (shown once); the
 * earlier ones keep signing (an extra `v1=` in the header) until now +
 * overlapSeconds, so the app can roll out the new one without rejecting events.
 * In the caller's platform transaction, which holds the live app's row locked
 * (apps/apps.service.ts rotateWebhookSecret), so a concurrent delete waits.
 */
export async function rotateWebhookSecretOfLockedApp(
  em: EntityManager,
  masterKey: Buffer,
  appId: string,
  input: { overlapSeconds: number; now: Date },
  ctx: AuditContext,
): Promise<RotatedWebhookSecret> {
  const { now } = input;
  const expiresAt = new Date(now.getTime() + input.overlapSeconds * 1000);
  const previous = await liveSecretRows(em, appId, now);
  for (const secret of previous) {
    if (!secret.expiresAt || secret.expiresAt > expiresAt)
      await em.update(AppWebhookSecret, { id: secret.id }, { expiresAt });
  }
  const issued = await insertSecret(em, masterKey, appId, now);
  await recordAudit(em, PLATFORM_TENANT_ID, {
    ...ctx,
    action: 'app.webhook_secret_rotated',
    target: { type: 'app', id: appId },
    after: {
      new_secret_id: issued.id,
      previous_secret_ids: previous.map((s) => s.id),
      previous_expire_at: expiresAt.toISOString(),
    },
  });
  return {
    client_id: appId,
    webhook_secret: issued.secret,
    secret_id: issued.id,
    previous_secrets_expire_at: expiresAt.toISOString(),
  };
}
