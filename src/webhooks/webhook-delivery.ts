import type { EntityManager } from 'typeorm';
import { deliveryFetch, type FetchClientPolicy } from '../outbound/fetch-client.js';
import { CHANNELS } from '../db/notification-bus.js';
import {
  httpOutcome,
  startOutboxWorker,
  type OutboxLogger,
  type OutboxOutcome,
  type OutboxRow,
  type OutboxWorker,
  type OutboxWorkerSettings,
} from '../db/outbox-worker.js';
import { openWebhookSecrets, signatureHeader } from './webhook-secrets.js';
import { tenantsWithDueWebhooks } from '../db/resolvers.js';

export type WebhookLogger = OutboxLogger;

export interface WebhookDeliveryOptions extends OutboxWorkerSettings {
  /** Opens the apps' sealed webhook secrets. */
  masterKey: Buffer;
  logger?: WebhookLogger;
  timeoutMs?: number;
  fetch?: typeof fetch;
  /**
   * The outbound address rule (config.outboundFetch): every delivery resolves
   * the target and connects only to a checked address (src/outbound/).
   * Without it (and without `fetch`), the platform fetch — tests and tools only.
   */
  outbound?: Omit<FetchClientPolicy, 'timeoutMs'>;
  /** The clock for the signature's `t` (tests). */
  now?: () => Date;
}

export type WebhookDelivery = OutboxWorker;

interface Claimed extends OutboxRow {
  event_id: string;
  payload: Record<string, unknown>;
}

interface AppTarget {
  id: string;
  webhook_url: string | null;
  deleted_at: Date | null;
  secrets: string[];
  /** Set when the sealed secrets would not open (another master key): retried, not given up. */
  secretsError?: string;
}

/**
 * The delivery side of the webhook outbox (the mechanism is db/outbox-worker.ts,
 * shared with back-channel logout): POSTs each event signed with the app's live
 * secrets. Rows of a batch go out in parallel and retries overtake nothing in
 * order: per-app ordering is NOT guaranteed (apps order by `data.version` /
 * `created_at`, dedupe by event id).
 */
export function startWebhookDelivery(options: WebhookDeliveryOptions): WebhookDelivery {
  const o = {
    maxAttempts: 15,
    timeoutMs: 10_000,
    now: () => new Date(),
    ...options,
  };
  const post = deliveryFetch(o);

  async function loadTargets(em: EntityManager, claimed: Claimed[]): Promise<Map<string, AppTarget>> {
    const rows = await em.query<Pick<AppTarget, 'id' | 'webhook_url' | 'deleted_at'>[]>(
      `SELECT id, webhook_url, deleted_at FROM apps WHERE id = ANY($1::uuid[])`,
      [[...new Set(claimed.map((c) => c.app_id))]],
    );
    const targets = new Map<string, AppTarget>();
    for (const app of rows) {
      try {
        targets.set(app.id, { ...app, secrets: await openWebhookSecrets(em, o.masterKey, app.id, o.now()) });
      } catch {
        targets.set(app.id, { ...app, secrets: [], secretsError: 'webhook secret cannot be opened' });
      }
    }
    return targets;
  }

  async function send(row: Claimed, app: AppTarget | undefined): Promise<OutboxOutcome> {
    if (!app || app.deleted_at) return { ok: false, error: 'app deleted', permanent: true };
    const url = app.webhook_url;
    if (!url) return { ok: false, error: 'app has no webhook URL', permanent: true };
    if (app.secretsError) return { ok: false, error: app.secretsError, permanent: false };
    if (app.secrets.length === 0) return { ok: false, error: 'app has no webhook secret', permanent: true };
    // Never the secret or the body in the error: only what went wrong.
    return httpOutcome(() => {
      const body = JSON.stringify(row.payload);
      const timestamp = Math.floor(o.now().getTime() / 1000);
      return post(url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'user-agent': 'Gatehouse-Webhooks/1',
          'gatehouse-event-id': row.event_id,
          'gatehouse-signature': signatureHeader(app.secrets, body, timestamp),
        },
        body,
      });
    });
  }

  return startOutboxWorker<Claimed, AppTarget>({
    ...o,
    table: 'webhook_outbox',
    columns: ['event_id', 'payload'],
    claimOrder: 'next_attempt_at, created_at',
    channel: CHANNELS.webhookOutbox,
    dueTenants: tenantsWithDueWebhooks,
    loadTargets,
    send,
    logFields: (row) => ({ event_id: row.event_id }),
    messages: {
      delivered: 'webhook delivered',
      givenUp: 'webhook given up',
      retrying: 'webhook delivery failed',
      crashed: 'webhook delivery failed',
    },
  });
}
