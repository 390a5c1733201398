import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as jose from 'jose';
import type { Database } from '../../src/db/database.js';
import { createSession } from '../../src/sessions/sessions.service.js';
import type { TokenSigner } from '../../src/sessions/token-signer.js';

export const ISSUER = 'https://gatehouse.test';

/** A TokenSigner over a real jose key pair: logout tokens carry real signatures. */
export async function joseSigner(): Promise<{
  signer: TokenSigner;
  publicKey: CryptoKey;
  signed: () => number;
}> {
  const { privateKey, publicKey } = await jose.generateKeyPair('ES256');
  let count = 0;
  const signer: TokenSigner = {
    sign: async (payload, { alg, typ }) => {
      count++;
      return new jose.SignJWT(payload).setProtectedHeader({ alg, typ, kid: 'test-key' }).sign(privateKey);
    },
    ready: async () => undefined, // the key is in memory from the start
  };
  return { signer, publicKey, signed: () => count };
}

export interface LogoutReceiver {
  url: string;
  /** Every POST body's logout_token, in arrival order. */
  tokens: string[];
  contentTypes: string[];
  /** Status answered per request, in order; 200 once the list is used up. */
  statuses: number[];
  waitFor(count: number, ms?: number): Promise<void>;
  close(): Promise<void>;
}

/** The main app's back-channel logout endpoint: a real HTTP server on loopback. */
export async function startLogoutReceiver(statuses: number[] = []): Promise<LogoutReceiver> {
  const tokens: string[] = [];
  const contentTypes: string[] = [];
  const waiters: (() => void)[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      const status = statuses.shift() ?? 200;
      contentTypes.push(req.headers['content-type'] ?? '');
      if (status === 200) tokens.push(new URLSearchParams(body).get('logout_token') ?? '');
      res.writeHead(status, { 'Cache-Control': 'no-store' }).end();
      for (const w of waiters.splice(0)) w();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/backchannel-logout`,
    tokens,
    contentTypes,
    statuses,
    async waitFor(count, ms = 5000) {
      const until = Date.now() + ms;
      while (tokens.length < count) {
        if (Date.now() > until) throw new Error(`received ${tokens.length} logout tokens, expected ${count}`);
        await new Promise<void>((resolve) => {
          waiters.push(resolve);
          setTimeout(resolve, 50);
        });
      }
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A registered main app (platform table) with a back-channel logout URI. */
export async function createApp(db: Database, backchannelLogoutUri: string | null): Promise<string> {
  const id = randomUUID();
  await db.withPlatform((em) =>
    em.query(
      `INSERT INTO apps (id, name, redirect_uris, backchannel_logout_uri, token_signing_alg)
       VALUES ($1, 'Main app', '{https://app.test/callback}', $2, 'ES256')`,
      [id, backchannelLogoutUri],
    ),
  );
  return id;
}

/** A signed-in session of the user at the app. */
export async function signIn(
  db: Database,
  tenantId: string,
  userId: string,
  appId: string | null,
): Promise<string> {
  return db.withTenant(tenantId, async (em) => {
    const session = await createSession(em, tenantId, {
      userId,
      appId,
      connectionId: null,
      authTime: new Date(),
      ttlSeconds: 3600,
    });
    return session.id;
  });
}

export async function outboxRows(db: Database, tenantId: string) {
  return db.withTenant(tenantId, (em) =>
    em.query<{ session_id: string; status: string; attempts: number; last_error: string | null }[]>(
      'SELECT session_id, status, attempts, last_error FROM logout_outbox ORDER BY created_at, id',
    ),
  );
}
