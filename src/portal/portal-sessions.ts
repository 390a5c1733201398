import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { Request, Response } from 'express';
import type { AuditContext } from '../audit/audit.service.js';
import type { Database } from '../db/database.js';
import { sha256Base64url } from '../digest.js';
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
 * row, compared in constant time.
 */

/** An operator session lasts 8 hours; a setup-link session 12 hours, never past its link. */
const OPERATOR_SESSION_SECONDS = 8 * 3600;
const SETUP_SESSION_SECONDS = 12 * 3600;

const COOKIE = 'gh_portal';
const VALUE = /^[A-Za-z0-9_-]{43}$/;

export interface PortalPrincipal {
  kind: 'operator' | 'setup_link';
  /** null: the operator, who may reach every tenant. */
  tenantId: string | null;
  setupLinkId: string | null;
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
}

/** Starts a session and sets its cookie. */
export async function startPortalSession(
  deps: PortalSessionDeps,
  res: Response,
  grant:
    | { kind: 'operator' }
    | { kind: 'setup_link'; tenantId: string; setupLinkId: string; intents: Intent[]; linkExpiresAt: Date },
  now: Date,
): Promise<void> {
  const value = randomBytes(32).toString('base64url');
  const lifetime = (grant.kind === 'operator' ? OPERATOR_SESSION_SECONDS : SETUP_SESSION_SECONDS) * 1000;
  let expiresAt = new Date(now.getTime() + lifetime);
  if (grant.kind === 'setup_link' && grant.linkExpiresAt < expiresAt) expiresAt = grant.linkExpiresAt;
  const row: PortalSession = {
    idHash: sha256Base64url(value),
    kind: grant.kind,
    tenantId: grant.kind === 'operator' ? null : grant.tenantId,
    setupLinkId: grant.kind === 'operator' ? null : grant.setupLinkId,
    intents: grant.kind === 'operator' ? [...INTENTS] : grant.intents,
    createdAt: now,
    expiresAt,
    csrfSecret: randomBytes(32).toString('base64url'),
  };
  await deps.db.withPlatform(async (em) => {
    await em.query('DELETE FROM portal_sessions WHERE expires_at < $1', [now]);
    await em.insert(PortalSession, row);
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
  return {
    kind: row.kind,
    tenantId: row.tenantId,
    setupLinkId: row.setupLinkId,
    intents: row.intents as Intent[],
    csrf: row.csrfSecret,
    expiresAt: row.expiresAt,
  };
}

export async function endPortalSession(deps: PortalSessionDeps, req: Request, res: Response): Promise<void> {
  const name = cookieNameFor(browserTransportOf(deps.baseUrl));
  const value = readCookie(req, name);
  if (value) {
    await deps.db.withPlatform((em) =>
      em.query('DELETE FROM portal_sessions WHERE id_hash = $1', [sha256Base64url(value)]),
    );
  }
  const transport = browserTransportOf(deps.baseUrl);
  res.clearCookie(name, { httpOnly: true, secure: transport !== 'http', sameSite: 'lax', path: '/' });
}

/** The synchronizer token check: a form's `_csrf` equals the session's secret. */
export function csrfMatches(session: PortalPrincipal, given: unknown): boolean {
  if (typeof given !== 'string' || given.length !== session.csrf.length) return false;
  return timingSafeEqual(Buffer.from(given), Buffer.from(session.csrf));
}

/**
 * What the services record as the actor: the operator as in the admin API;
 * an IT admin as the setup link that let them in (migration 1766200000000).
 */
export function portalAuditContext(session: PortalPrincipal, req: Request): AuditContext {
  const actor =
    session.kind === 'operator'
      ? { type: 'operator' as const, id: 'operator' }
      : { type: 'setup_link' as const, id: session.setupLinkId };
  return { actor, requestId: req.requestId, sourceIp: req.ip };
}
