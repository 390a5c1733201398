import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { TraceKind } from './login-trace-steps.js';

/**
 * Is this login a portal "test sign-in", and for which tenant and connection?
 * The portal (src/portal/test-login.ts) starts a test with a login id made
 * here: `portaltest.<tenant hex>.<connection hex>.<nonce>.<mac>`, the MAC an
 * HMAC-SHA-256 under the master key over tenant, connection and nonce. Only
 * such an id may use a connection that is not active yet (issue 15: test
 * before activation); a real login on it is refused as before. The id fits
 * sso's login id shape ([A-Za-z0-9._~-]{1,128}; 116 characters).
 */

const PREFIX = 'portaltest';
const SHAPE = /^portaltest\.([0-9a-f]{32})\.([0-9a-f]{32})\.([A-Za-z0-9_-]{16})\.([A-Za-z0-9_-]{22})$/;
const LABEL = 'gatehouse portal test login v1';

const hex = (uuid: string) => uuid.replace(/-/g, '').toLowerCase();
const uuid = (h: string) =>
  `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;

function mac(masterKey: Buffer, tenantHex: string, connectionHex: string, nonce: string): Buffer {
  return createHmac('sha256', masterKey)
    .update(`${LABEL}\0${tenantHex}\0${connectionHex}\0${nonce}`)
    .digest()
    .subarray(0, 16);
}

/** A fresh test login id for this tenant and connection. */
export function newTestLoginId(masterKey: Buffer, tenantId: string, connectionId: string): string {
  const t = hex(tenantId);
  const c = hex(connectionId);
  const nonce = randomBytes(12).toString('base64url');
  return `${PREFIX}.${t}.${c}.${nonce}.${mac(masterKey, t, c, nonce).toString('base64url')}`;
}

/** Whether the id merely claims to be a test (cheap routing; never a permission). */
export function looksLikeTestLoginId(loginId: string | null | undefined): boolean {
  return typeof loginId === 'string' && loginId.startsWith(`${PREFIX}.`);
}

/** The tenant and connection a genuine test login id is bound to; null for any other id. */
export function openTestLoginId(
  masterKey: Buffer,
  loginId: string | null | undefined,
): { tenantId: string; connectionId: string } | null {
  const m = typeof loginId === 'string' ? SHAPE.exec(loginId) : null;
  if (!m?.[1] || !m[2] || !m[3] || !m[4]) return null;
  const expected = mac(masterKey, m[1], m[2], m[3]);
  const given = Buffer.from(m[4], 'base64url');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return null;
  return { tenantId: uuid(m[1]), connectionId: uuid(m[2]) };
}

/** A genuine test login id of exactly this tenant and connection. */
export function isTestLoginFor(
  masterKey: Buffer,
  loginId: string | null | undefined,
  tenantId: string,
  connectionId: string,
): boolean {
  const bound = openTestLoginId(masterKey, loginId);
  return bound !== null && bound.tenantId === tenantId && bound.connectionId === connectionId;
}

/** The kind of a login from the app's pending login id it answers (null: IdP-initiated). */
export function traceKindOf(masterKey: Buffer, loginId: string | null | undefined): TraceKind {
  if (loginId === null) return 'idp_initiated';
  if (loginId === undefined) return 'unknown';
  return openTestLoginId(masterKey, loginId) ? 'test' : 'sp_initiated';
}
