import { randomUUID } from 'node:crypto';
import type { JWTPayload } from 'jose';
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
import type { SigningAlg, TokenSigner } from './token-signer.js';
import { tenantsWithDueLogouts } from '../db/resolvers.js';

/** OIDC Back-Channel Logout 1.0 §2.4: the one event a logout token carries. */
export const BACKCHANNEL_LOGOUT_EVENT = 'http://schemas.openid.net/event/backchannel-logout';

/** The claims of a logout token (§2.4): no nonce, both sub and sid. */
export function logoutTokenClaims(input: {
  issuer: string;
  appId: string;
  userId: string;
  sessionId: string;
  now: Date;
  ttlSeconds: number;
}): JWTPayload {
  const iat = Math.floor(input.now.getTime() / 1000);
  return {
    iss: input.issuer,
    aud: input.appId,
    iat,
    exp: iat + input.ttlSeconds,
    jti: randomUUID(),
    sub: input.userId,
    sid: input.sessionId,
    events: { [BACKCHANNEL_LOGOUT_EVENT]: {} },
  };
}

export type LogoutLogger = OutboxLogger;

export interface LogoutDeliveryOptions extends OutboxWorkerSettings {
  signer: TokenSigner;
  /** The `iss` of Gatehouse's tokens. */
  issuer: string;
  logger?: LogoutLogger;
  timeoutMs?: number;
  tokenTtlSeconds?: number;
  fetch?: typeof fetch;
  /**
   * The outbound address rule (config.outboundFetch): every delivery resolves
   * the target and connects only to a checked address (src/outbound/).
   * Without it (and without `fetch`), the platform fetch — tests and tools only.
   */
  outbound?: Omit<FetchClientPolicy, 'timeoutMs'>;
}

export type LogoutDelivery = OutboxWorker;

interface Claimed extends OutboxRow {
  session_id: string;
  user_id: string;
}

interface AppTarget {
  id: string;
  backchannel_logout_uri: string | null;
  token_signing_alg: SigningAlg;
  deleted_at: Date | null;
}

/**
 * The delivery side of the logout outbox (the mechanism is db/outbox-worker.ts):
 * signs a logout token per claimed row and POSTs it to the app's
 * `backchannel_logout_uri`; a deleted app or one without the URI is given up at once.
 */
export function startLogoutDelivery(options: LogoutDeliveryOptions): LogoutDelivery {
  const o = {
    maxAttempts: 10,
    timeoutMs: 5000,
    tokenTtlSeconds: 120,
    ...options,
  };
  const post = deliveryFetch(o);

  async function send(row: Claimed, app: AppTarget | undefined): Promise<OutboxOutcome> {
    if (!app || app.deleted_at) return { ok: false, error: 'app deleted', permanent: true };
    const uri = app.backchannel_logout_uri;
    if (!uri) return { ok: false, error: 'app has no back-channel logout URI', permanent: true };
    // §2.8: 200 OK on success (any 2xx accepted); anything else is retried.
    return httpOutcome(async () => {
      const token = await o.signer.sign(
        logoutTokenClaims({
          issuer: o.issuer,
          appId: app.id,
          userId: row.user_id,
          sessionId: row.session_id,
          now: new Date(),
          ttlSeconds: o.tokenTtlSeconds,
        }),
        { alg: app.token_signing_alg, typ: 'logout+jwt' },
      );
      return post(uri, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', 'cache-control': 'no-store' },
        body: new URLSearchParams({ logout_token: token }).toString(),
      });
    });
  }

  return startOutboxWorker<Claimed, AppTarget>({
    ...o,
    table: 'logout_outbox',
    columns: ['session_id', 'user_id'],
    claimOrder: 'next_attempt_at',
    channel: CHANNELS.logoutOutbox,
    dueTenants: tenantsWithDueLogouts,
    async loadTargets(em, rows) {
      const apps = await em.query<AppTarget[]>(
        `SELECT id, backchannel_logout_uri, token_signing_alg, deleted_at FROM apps WHERE id = ANY($1::uuid[])`,
        [[...new Set(rows.map((c) => c.app_id))]],
      );
      return new Map(apps.map((a) => [a.id, a]));
    },
    send,
    messages: {
      delivered: 'back-channel logout delivered',
      givenUp: 'back-channel logout given up',
      retrying: 'back-channel logout failed',
      crashed: 'back-channel logout delivery failed',
    },
  });
}
