import pg from 'pg';
import type { EntityManager } from 'typeorm';

/** The channels Gatehouse nodes tell each other on. */
export const CHANNELS = {
  /** payload: JSON `{ tenant_id, user_id, session_ids }` (sessions/session-events.ts). */
  sessionsRevoked: 'gatehouse_sessions_revoked',
  /** payload: tenant id with a back-channel logout to deliver. */
  logoutOutbox: 'gatehouse_logout_outbox',
  /** payload: SCIM token id (scim/scim-token-events.ts). */
  scimTokenRevoked: 'gatehouse_scim_token_revoked',
  /** payload: id of a tenant suspended, reactivated or deleted (tenants/tenants.service.ts). */
  tenantStatusChanged: 'gatehouse_tenant_status_changed',
  /** payload: tenant id with a webhook event to deliver (webhooks/webhook-events.ts). */
  webhookOutbox: 'gatehouse_webhook_outbox',
} as const;

export type Channel = (typeof CHANNELS)[keyof typeof CHANNELS];

const KNOWN_CHANNELS = new Set<string>(Object.values(CHANNELS));

/**
 * Queues a notification in the caller's transaction: Postgres delivers it to
 * every listening node when (and only if) that transaction commits.
 */
export async function notifyInTransaction(
  em: EntityManager,
  channel: Channel,
  payload: string,
): Promise<void> {
  await em.query('SELECT pg_notify($1, $2)', [channel, payload]);
}

export interface NotificationBusOptions {
  /** A URL of the runtime role; the bus holds one dedicated connection (not a pool slot). */
  url: string;
  /**
   * First reconnect delay; doubles up to maxReconnectDelayMs (default 1 s: after an outage the
   * connection is back within a second of PostgreSQL, so caches are trusted again at once).
   */
  reconnectDelayMs?: number;
  maxReconnectDelayMs?: number;
  onError?: (error: unknown) => void;
}

type Handler = (payload: string) => void;

/**
 * One LISTEN connection per node (docs/architecture.md): other nodes learn of
 * revocations through Postgres, not by polling. Reconnects on its own; while
 * it is down `listening` is false and notifications may be missed, so
 * subscribers that cache must not trust their cache then, and `onReconnect`
 * handlers run after every reconnection so they can resynchronise.
 */
export class NotificationBus {
  private client: pg.Client | null = null;
  private readonly handlers = new Map<string, Set<Handler>>();
  private readonly reconnectHandlers = new Set<() => void>();
  /** Channels LISTENed to on the current connection. */
  private readonly active = new Set<string>();
  private connected = false;
  private closed = false;
  private delay: number;
  private timer: NodeJS.Timeout | null = null;
  private connecting: Promise<void> | null = null;
  private everConnected = false;
  /** When the current outage of the LISTEN connection began (null: never lost since it connected). */
  private lostAt: number | null = null;
  private listenQueue: Promise<void> = Promise.resolve();

  constructor(private readonly options: NotificationBusOptions) {
    this.delay = options.reconnectDelayMs ?? 250;
  }

  /** True while the LISTEN connection is up: notifications are being received. */
  get listening(): boolean {
    return this.connected;
  }

  /** How long the LISTEN connection has been down (0 while it is up), for /readyz. */
  downForMs(now = Date.now()): number {
    return this.connected || this.lostAt === null ? 0 : now - this.lostAt;
  }

  /** True once `channel` is being listened to on the current connection. */
  isListening(channel: Channel): boolean {
    return this.connected && this.active.has(channel);
  }

  /** Connects and listens; resolves once listening (the first attempt's failure rejects). */
  async start(): Promise<void> {
    this.closed = false;
    await this.connect();
  }

  on(channel: Channel, handler: Handler): () => void {
    if (!KNOWN_CHANNELS.has(channel)) throw new Error(`unknown channel ${channel}`);
    let set = this.handlers.get(channel);
    if (!set) {
      set = new Set();
      this.handlers.set(channel, set);
      if (this.client && this.connected) void this.listen(this.client, channel).catch((e) => this.fail(e));
    }
    set.add(handler);
    return () => set.delete(handler);
  }

  /** Runs after each reconnection (not the first connection). */
  onReconnect(handler: () => void): () => void {
    this.reconnectHandlers.add(handler);
    return () => this.reconnectHandlers.delete(handler);
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.connecting?.catch(() => undefined);
    const client = this.client;
    this.client = null;
    this.connected = false;
    if (client) await client.end().catch(() => undefined);
  }

  private connect(): Promise<void> {
    this.connecting ??= this.open().finally(() => {
      this.connecting = null;
    });
    return this.connecting;
  }

  private async open(): Promise<void> {
    const client = new pg.Client({
      connectionString: this.options.url,
      application_name: 'gatehouse-listen',
      // A dead peer must surface as an error (and a reconnect), not as silence.
      keepAlive: true,
      connectionTimeoutMillis: 10_000,
    });
    this.client = client;
    this.active.clear();
    client.on('notification', (message) => this.dispatch(message.channel, message.payload ?? ''));
    client.on('error', (error) => this.lost(client, error));
    client.on('end', () => this.lost(client, new Error('listen connection ended')));
    try {
      await client.connect();
      for (const channel of this.handlers.keys()) await this.listen(client, channel);
    } catch (error) {
      if (this.client === client) this.client = null;
      await client.end().catch(() => undefined);
      throw error;
    }
    if (this.closed || this.client !== client) {
      await client.end().catch(() => undefined);
      return;
    }
    const reconnected = this.everConnected;
    this.connected = true;
    this.everConnected = true;
    this.lostAt = null;
    this.delay = this.options.reconnectDelayMs ?? 250;
    if (reconnected) for (const handler of this.reconnectHandlers) this.safely(handler);
  }

  /** One LISTEN at a time: pg deprecates overlapping queries on one client (subscribers may come together). */
  private listen(client: pg.Client, channel: string): Promise<void> {
    const run = this.listenQueue.then(async () => {
      await client.query(`LISTEN ${client.escapeIdentifier(channel)}`);
      if (this.client === client) this.active.add(channel);
    });
    this.listenQueue = run.catch(() => undefined);
    return run;
  }

  private dispatch(channel: string, payload: string): void {
    for (const handler of this.handlers.get(channel) ?? []) this.safely(() => handler(payload));
  }

  private safely(fn: () => void): void {
    try {
      fn();
    } catch (error) {
      this.fail(error);
    }
  }

  private fail(error: unknown): void {
    this.options.onError?.(error);
  }

  private lost(client: pg.Client, error: unknown): void {
    // Only the current connection counts, and only once ('error' and 'end' both fire).
    if (this.client !== client) return;
    this.client = null;
    this.connected = false;
    this.lostAt ??= Date.now();
    this.active.clear();
    void client.end().catch(() => undefined);
    if (this.closed) return;
    this.fail(error);
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.closed || this.timer) return;
    const wait = this.delay;
    this.delay = Math.min(this.delay * 2, this.options.maxReconnectDelayMs ?? 1_000);
    this.timer = setTimeout(() => {
      this.timer = null;
      this.connect().catch((error: unknown) => {
        this.fail(error);
        this.scheduleReconnect();
      });
    }, wait);
    this.timer.unref();
  }
}
