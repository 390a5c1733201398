import { createHmac, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Database } from '../../src/db/database.js';
import { createApp } from '../../src/apps/apps.service.js';
import type { WebhookEvent } from '../../src/webhooks/webhook-events.js';

/**
 * How an app verifies a Gatehouse webhook, written the way docs/webhooks.md
 * tells app developers to: HMAC-SHA256 over "<t>.<raw body>" with the secret,
 * compared in constant time with every v1 of the header, and `t` within a
 * tolerance of the app's clock (replays of old deliveries fail).
 */
export function verifyGatehouseSignature(
  header: string,
  rawBody: string,
  secret: string,
  nowSeconds = Math.floor(Date.now() / 1000),
  toleranceSeconds = 300,
): boolean {
  const parts = header.split(',').map((p) => p.split('=', 2) as [string, string | undefined]);
  const t = Number(parts.find(([k]) => k === 't')?.[1]);
  if (!Number.isInteger(t) || Math.abs(nowSeconds - t) > toleranceSeconds) return false;
  const expected = createHmac('sha256', secret).update(`${t}.${rawBody}`).digest();
  return parts.some(([k, v]) => {
    if (k !== 'v1' || !v || !/^[0-9a-f]{64}$/.test(v)) return false;
    return timingSafeEqual(Buffer.from(v, 'hex'), expected);
  });
}

export interface ReceivedWebhook {
  eventId: string;
  signature: string;
  contentType: string;
  body: string;
  event: WebhookEvent;
  /** Whether verifyGatehouseSignature accepted it with the receiver's secret. */
  verified: boolean;
}

export interface WebhookReceiver {
  url: string;
  /** The app's secret, set once the admin API has shown it. */
  secret: string;
  /** Deliveries answered 2xx, in arrival order. */
  received: ReceivedWebhook[];
  /** Every request, whatever was answered. */
  attempts: number;
  /** Status answered per request, in order; 200 once the list is used up. */
  statuses: number[];
  waitFor(count: number, ms?: number): Promise<void>;
  ofType(type: string): ReceivedWebhook[];
  close(): Promise<void>;
}

/** An app's webhook endpoint: a real HTTP server on loopback that verifies what it gets. */
export async function startWebhookReceiver(statuses: number[] = []): Promise<WebhookReceiver> {
  const waiters: (() => void)[] = [];
  const r: Omit<WebhookReceiver, 'url' | 'close'> = {
    secret: '',
    received: [],
    attempts: 0,
    statuses,
    async waitFor(count, ms = 5000) {
      const until = Date.now() + ms;
      while (r.received.length < count) {
        if (Date.now() > until) throw new Error(`received ${r.received.length} webhooks, expected ${count}`);
        await new Promise<void>((resolve) => {
          waiters.push(resolve);
          setTimeout(resolve, 50);
        });
      }
    },
    ofType: (type) => r.received.filter((w) => w.event.type === type),
  };
  const server = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => {
      r.attempts++;
      const status = r.statuses.shift() ?? 200;
      const signature = String(req.headers['gatehouse-signature'] ?? '');
      const verified = verifyGatehouseSignature(signature, body, r.secret);
      // A real app answers 400 to a bad signature; the test then sees it in `received` as unverified.
      if (status === 200) {
        r.received.push({
          eventId: String(req.headers['gatehouse-event-id'] ?? ''),
          signature,
          contentType: String(req.headers['content-type'] ?? ''),
          body,
          event: JSON.parse(body) as WebhookEvent,
          verified,
        });
      }
      res.writeHead(status).end();
      for (const w of waiters.splice(0)) w();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const extra: Pick<WebhookReceiver, 'url' | 'close'> = {
    url: `http://127.0.0.1:${port}/webhooks/gatehouse`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  return Object.assign(r, extra);
}

/** Registers an app with a webhook URL as the admin API does; its webhook secret. */
export async function registerWebhookApp(
  db: Database,
  masterKey: Buffer,
  webhookUrl: string,
): Promise<{ appId: string; secret: string }> {
  const created = await createApp(
    db,
    { name: 'Webhook app', redirect_uris: ['https://app.test/callback'], webhook_url: webhookUrl },
    { actor: { type: 'operator', id: null } },
    masterKey,
  );
  if (!created.webhook_secret) throw new Error('no webhook secret issued');
  return { appId: created.client_id, secret: created.webhook_secret };
}

export async function outboxRows(db: Database, tenantId: string) {
  return db.withTenant(tenantId, (em) =>
    em.query<{ event_type: string; status: string; attempts: number; app_id: string; tenant_id: string }[]>(
      'SELECT event_type, status, attempts, app_id, tenant_id FROM webhook_outbox ORDER BY created_at, id',
    ),
  );
}
