import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { Request, Response } from 'express';
import { open, seal } from '../config/secret-box.js';
import { recordAudit, type AuditContext } from '../audit/audit.service.js';
import { PLATFORM_TENANT_ID, type Database } from '../db/database.js';
import { sha256Base64url } from '../digest.js';
import { TENANT_ADMIN_ROLE } from '../directory/roles.service.js';
import { liveSession, type LiveSession } from '../tokens/live-session.js';
import { browserTransportOf, type BrowserTransport } from '../http/browser-binding.js';
import { INTENTS, type Intent } from './intents.js';
import { setupLinkStillValid } from './links.service.js';
import { PortalSession } from './portal-session.entity.js';

/**
 * Who is this portal browser, and may it do this? A server-side session row
 * found by the SHA-256 of the cookie's random value; the cookie is httpOnly,
 * SameSite=Lax, Secure wherever the browser allows it, `__Host-` prefixed
 * under https (no Domain, Path=/: no sibling host can set it). Forms carry
 * the session's synchronizer CSRF token (OWASP CSRF cheat sheet), kept in the
 * row, compared in constant time. A tenant admin's session (admin-signin.ts)
 * is bound to the Gatehouse session their sign-in created: every request asks
 * liveSession (src/tokens/live-session.ts, the one "still true?") whether that
 * session is live and the person still holds the admin role.
 */

/**
 * An operator session lasts 8 hours; a setup-link session 12 hours, never past its link; a tenant admin's
 * 8 hours, never past the Gatehouse session behind it.
 */
const OPERATOR_SESSION_SECONDS = 8 * 3600;
const SETUP_SESSION_SECONDS = 12 * 3600;
const TENANT_ADMIN_SESSION_SECONDS = 8 * 3600;

const COOKIE = 'gh_portal';
const VALUE = /^[A-Za-z0-9_-]{43}$/;

export interface PortalPrincipal {
  kind: 'operator' | 'setup_link' | 'tenant_admin';
  /** null: the operator, who may reach every tenant. */
  tenantId: string | null;
  setupLinkId: string | null;
  /** tenant_admin: the person signed in. */
  userId: string | null;
  intents: Intent[];
  csrf: string;
  expiresAt: Date;
}

export const cookieNameFor = (transport: BrowserTransport) =>
  transport === 'https' ? `__Host-${COOKIE}` : COOKIE;

function readCookie(req: Request, name: string): string | null {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq >= 0 && part.slice(0, eq).trim() === name) {
      const value = part.slice(eq + 1).trim();
      return VALUE.test(value) ? value : null;
    }
  }
  return null;
}

export interface PortalSessionDeps {
  db: Database;
  baseUrl: string;
  /** Seals a tenant admin's ID token at rest; without it no ID token is kept (sign-out then offers no hint). */
  masterKey?: Buffer;
}

/**
 * Tokens at rest are sealed (docs/security.md): the ID token kept for RP-Initiated Logout's `id_token_hint` is
 * AES-256-GCM under the master key with the row's id_hash as associated data, so a value copied into another
 * session's row fails to open there.
 */
const idTokenContext = (idHash: string) => `portal:id-token:${idHash}`;

function sealIdToken(masterKey: Buffer | undefined, idToken: string, idHash: string): string | null {
  return masterKey && idToken ? seal(masterKey, idToken, idTokenContext(idHash)) : null;
}

/** The sealed ID token of the row, or null when there is none or it does not open under this row's binding. */
export function openIdToken(
  masterKey: Buffer | undefined,
  sealed: string | null,
  idHash: string,
): string | null {
  if (!masterKey || !sealed) return null;
  try {
    return open(masterKey, sealed, idTokenContext(idHash));
  } catch {
    return null;
  }
}

export type PortalGrant =
  | { kind: 'operator' }
  | { kind: 'setup_link'; tenantId: string; setupLinkId: string; intents: Intent[]; linkExpiresAt: Date }
  | {
      kind: 'tenant_admin';
      tenantId: string;
      userId: string;
      gatehouseSessionId: string;
      sessionExpiresAt: Date;
      idToken: string;
    };

const LIFETIME_SECONDS: Record<PortalGrant['kind'], number> = {
  operator: OPERATOR_SESSION_SECONDS,
  setup_link: SETUP_SESSION_SECONDS,
  tenant_admin: TENANT_ADMIN_SESSION_SECONDS,
};

/**
 * Starts a session, audits `portal.session_started` with the principal's kind (on the tenant's trail, the
 * operator's on the platform trail) in the same transaction, and sets the cookie.
 */
export async function startPortalSession(
  deps: PortalSessionDeps,
  res: Response,
  grant: PortalGrant,
  now: Date,
): Promise<void> {
  const value = randomBytes(32).toString('base64url');
  let expiresAt = new Date(now.getTime() + LIFETIME_SECONDS[grant.kind] * 1000);
  if (grant.kind === 'setup_link' && grant.linkExpiresAt < expiresAt) expiresAt = grant.linkExpiresAt;
  if (grant.kind === 'tenant_admin' && grant.sessionExpiresAt < expiresAt) expiresAt = grant.sessionExpiresAt;
  const idHash = sha256Base64url(value);
  const row: PortalSession = {
    idHash,
    kind: grant.kind,
    tenantId: grant.kind === 'operator' ? null : grant.tenantId,
    setupLinkId: grant.kind === 'setup_link' ? grant.setupLinkId : null,
    gatehouseSessionId: grant.kind === 'tenant_admin' ? grant.gatehouseSessionId : null,
    userId: grant.kind === 'tenant_admin' ? grant.userId : null,
    idToken: grant.kind === 'tenant_admin' ? sealIdToken(deps.masterKey, grant.idToken, idHash) : null,
    // A tenant admin may do every intent for their tenant; setup links and the tenant list stay the operator's.
    intents: grant.kind === 'setup_link' ? grant.intents : [...INTENTS],
    createdAt: now,
    expiresAt,
    csrfSecret: randomBytes(32).toString('base64url'),
  };
  const principal = principalOf(row);
  await deps.db.withTenant(row.tenantId ?? PLATFORM_TENANT_ID, async (em) => {
    await em.query('DELETE FROM portal_sessions WHERE expires_at < $1', [now]);
    await em.insert(PortalSession, row);
    await recordAudit(em, row.tenantId ?? PLATFORM_TENANT_ID, {
      ...portalAuditContext(principal, res.req),
      action: 'portal.session_started',
      target: principalTarget(principal),
      after: { kind: row.kind, intents: row.intents, expires_at: expiresAt.toISOString() },
    });
  });
  const transport = browserTransportOf(deps.baseUrl);
  res.cookie(cookieNameFor(transport), value, {
    httpOnly: true,
    secure: transport !== 'http',
    sameSite: 'lax',
    path: '/',
    expires: expiresAt,
  });
}

/** The session this browser presents, when it is live (and its setup link too); else null. */
export async function currentPortalSession(
  deps: PortalSessionDeps,
  req: Request,
  now: Date,
): Promise<PortalPrincipal | null> {
  const value = readCookie(req, cookieNameFor(browserTransportOf(deps.baseUrl)));
  if (!value) return null;
  const row = await deps.db.withPlatform((em) =>
    em.findOneBy(PortalSession, { idHash: sha256Base64url(value) }),
  );
  if (!row || row.expiresAt <= now) return null;
  // Revocation deletes the link's sessions; this also covers a link revoked on a node mid-request.
  if (row.kind === 'setup_link') {
    if (!row.tenantId || !row.setupLinkId) return null;
    if (!(await setupLinkStillValid(deps.db, row.tenantId, row.setupLinkId, now))) return null;
  }
  if (row.kind === 'tenant_admin' && !(await tenantAdminStillTrue(deps.db, row, now))) {
    // Deprovisioned, signed out, session revoked or no longer an admin: this portal session is over too.
    await deps.db.withPlatform((em) =>
      em.query('DELETE FROM portal_sessions WHERE id_hash = $1', [row.idHash]),
    );
    return null;
  }
  return principalOf(row);
}

function principalOf(row: PortalSession): PortalPrincipal {
  return {
    kind: row.kind,
    tenantId: row.tenantId,
    setupLinkId: row.setupLinkId,
    userId: row.userId,
    intents: row.intents as Intent[],
    csrf: row.csrfSecret,
    expiresAt: row.expiresAt,
  };
}

/**
 * "Still true?" for a tenant admin, asked of liveSession (the one home of that answer): the Gatehouse
 * session is live (not revoked, not expired, the person active, the tenant live, the portal's app present),
 * belongs to this tenant and person, and their roles now include `admin`.
 */
export async function tenantAdminStillTrue(
  db: Database,
  row: Pick<PortalSession, 'tenantId' | 'gatehouseSessionId' | 'userId'>,
  now: Date,
): Promise<boolean> {
  return (await liveTenantAdmin(db, row, now)) !== null;
}

/** The live Gatehouse session behind a tenant admin, when tenantAdminStillTrue; else null. */
export async function liveTenantAdmin(
  db: Database,
  row: Pick<PortalSession, 'tenantId' | 'gatehouseSessionId' | 'userId'>,
  now: Date,
): Promise<LiveSession | null> {
  if (!row.tenantId || !row.gatehouseSessionId || !row.userId) return null;
  const live = await liveSession(
    db,
    { tid: row.tenantId, sid: row.gatehouseSessionId, sub: row.userId },
    now,
  );
  return live?.roles.includes(TENANT_ADMIN_ROLE) ? live : null;
}

/**
 * Deletes the session and clears its cookie; the ended row's ID token, opened, if any (RP-initiated logout's
 * hint). A value that does not open (copied from another row, another master key) gives no hint; sign-out
 * still ends the session.
 */
export async function endPortalSession(
  deps: PortalSessionDeps,
  req: Request,
  res: Response,
): Promise<string | null> {
  const name = cookieNameFor(browserTransportOf(deps.baseUrl));
  const value = readCookie(req, name);
  let idToken: string | null = null;
  if (value) {
    const idHash = sha256Base64url(value);
    const [rows] = await deps.db.withPlatform((em) =>
      em.query<[{ id_token: string | null }[], number]>(
        'DELETE FROM portal_sessions WHERE id_hash = $1 RETURNING id_token',
        [idHash],
      ),
    );
    idToken = openIdToken(deps.masterKey, rows[0]?.id_token ?? null, idHash);
  }
  const transport = browserTransportOf(deps.baseUrl);
  res.clearCookie(name, { httpOnly: true, secure: transport !== 'http', sameSite: 'lax', path: '/' });
  return idToken;
}

/** The synchronizer token check: a form's `_csrf` equals the session's secret. */
export function csrfMatches(session: PortalPrincipal, given: unknown): boolean {
  if (typeof given !== 'string' || given.length !== session.csrf.length) return false;
  return timingSafeEqual(Buffer.from(given), Buffer.from(session.csrf));
}

/**
 * What the services record as the actor: the operator as in the admin API;
 * an IT admin as the setup link that let them in (migration 1766200000000);
 * a tenant admin as the person (`user`, as the admin API records them).
 */
export function portalAuditContext(session: PortalPrincipal, req: Request): AuditContext {
  const actor =
    session.kind === 'operator'
      ? { type: 'operator' as const, id: 'operator' }
      : session.kind === 'setup_link'
        ? { type: 'setup_link' as const, id: session.setupLinkId }
        : { type: 'user' as const, id: session.userId };
  return { actor, requestId: req.requestId, sourceIp: req.ip };
}

function principalTarget(session: PortalPrincipal): { type: string; id: string } {
  if (session.kind === 'setup_link' && session.setupLinkId)
    return { type: 'setup_link', id: session.setupLinkId };
  if (session.kind === 'tenant_admin' && session.userId) return { type: 'user', id: session.userId };
  return { type: 'operator', id: 'operator' };
}
