import { randomBytes, randomUUID } from 'node:crypto';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { EntityManager } from 'typeorm';
import { createApp } from '../../src/app.js';
import { parseConfig } from '../../src/config/config.js';
import { ADMIN_TOKEN_PREFIX, generateToken } from '../../src/config/secrets.js';
import { createDataSource } from '../../src/db/data-source.js';
import { Database } from '../../src/db/database.js';
import { NotificationBus } from '../../src/db/notification-bus.js';
import { ENTITIES } from '../../src/entities.js';
import { createLogger } from '../../src/http/logger.js';
import { issueScimToken } from '../../src/scim/scim-token.js';
import type { BenchDatabase } from '../support/bench-db.js';

/** A Database that adds up the time spent inside tenant transactions (the database's share). */
export class TimedDatabase extends Database {
  busyMs = 0;
  override withTenant<T>(tenantId: string, fn: (em: EntityManager) => Promise<T>): Promise<T> {
    const start = performance.now();
    return super.withTenant(tenantId, fn).finally(() => {
      this.busyMs += performance.now() - start;
    });
  }
}

export interface ScimServer {
  url: string;
  /** The operator's admin API token of this node. */
  adminToken: string;
  db: TimedDatabase;
  bus: NotificationBus;
  close(): Promise<void>;
}

/** One Gatehouse node as main.ts runs it (own pool, LISTEN connection, HTTP listener on loopback). */
export async function startScimServer(bench: BenchDatabase): Promise<ScimServer> {
  const config = parseConfig({
    GATEHOUSE_BASE_URL: 'http://127.0.0.1',
    LOG_LEVEL: 'silent',
    // The benchmark measures throughput, not the limiter.
    GATEHOUSE_SCIM_RATE_LIMIT: '1000000000',
  });
  const ds = createDataSource({ url: bench.appUrl, entities: ENTITIES, poolSize: 20 });
  await ds.initialize();
  const db = new TimedDatabase(ds);
  const bus = new NotificationBus({ url: bench.appUrl });
  await bus.start();
  const adminToken = generateToken(ADMIN_TOKEN_PREFIX);
  const app = createApp({
    config,
    db,
    secrets: {
      adminToken,
      masterKey: randomBytes(32),
      adminTokenGenerated: false,
    },
    logger: createLogger('silent'),
    notifications: bus,
  });
  const server: Server = await new Promise((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    adminToken,
    db,
    bus,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await bus.close();
      await db.close();
    },
  };
}

export async function createTenantWithToken(db: Database): Promise<{ tenantId: string; token: string }> {
  const tenantId = randomUUID();
  const issued = await issueScimToken();
  await db.withTenant(tenantId, async (em) => {
    await em.query('INSERT INTO tenants (id, slug, name) VALUES ($1, $2, $2)', [
      tenantId,
      `b-${tenantId.slice(0, 8)}`,
    ]);
    await em.query('INSERT INTO scim_tokens (tenant_id, id, token_hash) VALUES ($1, $2, $3)', [
      tenantId,
      issued.id,
      issued.hash,
    ]);
  });
  return { tenantId, token: issued.token };
}

/** A SCIM request over real HTTP (fetch keeps connections alive); returns status, body and latency. */
export async function scimFetch(
  base: string,
  token: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; body: Record<string, unknown>; ms: number; receivedAt: number }> {
  const start = performance.now();
  const res = await fetch(`${base}${path}`, {
    method,
    headers: {
      Authorization: `Bearer ${token}`,
      Accept: 'application/scim+json',
      ...(body === undefined ? {} : { 'Content-Type': 'application/scim+json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  const receivedAt = performance.now();
  return {
    status: res.status,
    body: text ? (JSON.parse(text) as Record<string, unknown>) : {},
    ms: receivedAt - start,
    receivedAt,
  };
}

/** Runs `task(i)` for i in [0, count) with `concurrency` workers; returns the elapsed milliseconds. */
export async function pool(
  count: number,
  concurrency: number,
  task: (i: number) => Promise<void>,
): Promise<number> {
  let next = 0;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) await task(next++);
    }),
  );
  return performance.now() - start;
}

export function envCount(name: string, fallback: number): number {
  const value = Number(process.env[name]);
  return Number.isInteger(value) && value > 0 ? value : fallback;
}

export const sorted = (values: number[]) => [...values].sort((a, b) => a - b);
