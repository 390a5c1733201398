import argon2 from 'argon2';
import type { Request } from 'express';
import type { EntityManager } from 'typeorm';
import type { Database } from '../../db/database.js';
import { isUuid } from '../../db/database.js';
import { sha256Base64url } from '../../digest.js';
import { findApp, findAppWithSecretHash } from '../../apps/apps.service.js';
import type { App } from '../../apps/app.entity.js';
import { OAuthError } from '../oauth-errors.js';
import { oauthStringProblem } from '../oauth-limits.js';

/**
 * Client authentication at the token, introspection and revocation endpoints
 * (RFC 6749 §2.3): client_secret_basic or client_secret_post for confidential
 * apps, `none` (client_id only) for public apps, which must then prove
 * possession with PKCE. Exactly one method per request.
 */
export type ClientAuthMethod = 'client_secret_basic' | 'client_secret_post' | 'none';

export interface ClientCredentials {
  clientId: string;
  secret: string | null;
  method: ClientAuthMethod;
}

/** RFC 6749 §2.3.1: Basic credentials are form-urlencoded before base64. */
function formDecode(value: string): string {
  return decodeURIComponent(value.replace(/\+/g, ' '));
}

function field(body: Record<string, unknown>, name: string): string | undefined {
  const value = body[name];
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw new OAuthError('invalid_request', `${name} must be given once`);
  return bounded(name, value);
}

/** oauth-limits.ts: a credential past its bound is malformed, not a wrong secret. */
function bounded(name: string, value: string): string {
  const problem = oauthStringProblem(name, value);
  if (problem) throw new OAuthError('invalid_request', problem);
  return value;
}

export function readClientCredentials(req: Request): ClientCredentials {
  const body = (req.body ?? {}) as Record<string, unknown>;
  const bodyId = field(body, 'client_id');
  const bodySecret = field(body, 'client_secret');
  const header = req.headers.authorization;
  if (header && /^basic /i.test(header)) {
    const decoded = Buffer.from(header.slice(6).trim(), 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) throw basicFailure('Malformed Basic credentials');
    let clientId: string;
    let secret: string;
    try {
      clientId = formDecode(decoded.slice(0, colon));
      secret = formDecode(decoded.slice(colon + 1));
    } catch {
      throw basicFailure('Malformed Basic credentials');
    }
    bounded('client_id', clientId);
    bounded('client_secret', secret);
    if (bodySecret !== undefined)
      throw new OAuthError('invalid_request', 'Use one client authentication method, not two');
    if (bodyId !== undefined && bodyId !== clientId)
      throw new OAuthError('invalid_request', 'client_id differs from the authenticated client');
    return { clientId, secret, method: 'client_secret_basic' };
  }
  if (bodyId === undefined) throw new OAuthError('invalid_client', 'Client authentication is required');
  if (bodySecret !== undefined) return { clientId: bodyId, secret: bodySecret, method: 'client_secret_post' };
  return { clientId: bodyId, secret: null, method: 'none' };
}

function basicFailure(description: string): OAuthError {
  return new OAuthError('invalid_client', description, { challenge: 'Basic' });
}

/** The app itself, or null when the id is not a live registered app. */
export async function findClient(db: Database, clientId: string): Promise<App | null> {
  if (!isUuid(clientId)) return null;
  const app = await findApp(db, clientId);
  return app && !app.deletedAt ? app : null;
}

/**
 * argon2id costs tens of milliseconds per check, so its outcome is memoized:
 * keyed by a SHA-256 of (stored hash, presented secret), a pure function of
 * both, for a minute (docs/architecture.md). Whether the secret still counts — the app
 * not deleted, the secret neither rotated out, expired nor deleted — is read
 * from the database on every request (findAppWithSecretHash), never from the cache.
 */
const VERIFIED_TTL_MS = 60_000;
const verified = new Map<string, number>();

/**
 * argon2 checks in flight, by the same key (issue 13, the client-secret herd):
 * a node that has not memoized a secret yet (after a start, or a minute after
 * its last check) and receives N concurrent requests with it would run N
 * identical argon2id checks, each with its own 64 MiB or so. Requests that
 * arrive while one runs wait for its answer instead, as the SCIM bearer does
 * (scim/scim-auth.ts). The key covers the presented secret and the stored
 * hash, so a wrong secret never shares another's success, and each request
 * still reads the app and its secret itself.
 */
const checking = new Map<string, Promise<boolean>>();
let argon2Runs = 0;

/** How many argon2 checks of client secrets this process has run (tests watch it). */
export function clientSecretArgon2Checks(): number {
  return argon2Runs;
}

async function secretMatches(hash: string, secret: string, now: Date): Promise<boolean> {
  const key = sha256Base64url(`${hash}\u0000${secret}`);
  const until = verified.get(key);
  if (until !== undefined && until > now.getTime()) return true;
  verified.delete(key);
  let check = checking.get(key);
  if (!check) {
    argon2Runs++;
    check = argon2
      .verify(hash, secret)
      .then((ok) => {
        if (ok) {
          if (verified.size > 10_000) verified.clear();
          verified.set(key, Date.now() + VERIFIED_TTL_MS);
        }
        return ok;
      })
      .finally(() => checking.delete(key));
    checking.set(key, check);
  }
  return check;
}

/** Authenticates the calling client; any failure is `invalid_client` (401) without saying which part. */
export async function authenticateClient(
  db: Database,
  credentials: ClientCredentials,
  now: Date,
  /** Where the app is read: with the failed-authentication counters (client-auth-limits.ts), or alone. */
  lookup: <T>(read: (em: EntityManager) => Promise<T>) => Promise<T> = (read) => db.readPlatform(read),
): Promise<App> {
  // RFC 6749 §5.2: a client that tried Basic gets a Basic challenge back.
  const challenge = credentials.method === 'client_secret_basic' ? ('Basic' as const) : undefined;
  const refuse = (why: string) =>
    new OAuthError('invalid_client', 'Client authentication failed', { detail: why, challenge });
  // The app and the secret's stored hash in one statement (issue 13: one round trip, was two).
  const found = await lookup((em) =>
    findAppWithSecretHash(em, credentials.clientId, credentials.secret, now),
  );
  if (!found) throw refuse('unknown client');
  const { app, secretHash } = found;
  if (app.clientType === 'public') {
    if (credentials.method !== 'none') throw refuse('public client sent a secret');
    return app;
  }
  if (credentials.method === 'none' || credentials.secret === null)
    throw refuse('confidential client without secret');
  if (secretHash === null || !(await secretMatches(secretHash, credentials.secret, now)))
    throw refuse('wrong secret');
  return app;
}
