import { randomBytes, randomUUID } from 'node:crypto';
import { recordAudit, type AuditContext } from '../audit/audit.service.js';
import { PLATFORM_TENANT_ID, type Database } from '../db/database.js';
import { sha256Base64url } from '../digest.js';
import { NotFoundError } from '../errors.js';
import { requireLiveTenant } from '../tenants/tenant-guard.js';
import { tenantStatusOf } from '../tenants/tenants.service.js';
import type { Intent } from './intents.js';
import { PortalLink } from './portal-link.entity.js';
import { SetupLink } from './setup-link.entity.js';

/**
 * Which links open the portal, and what does each allow? The operator's
 * one-time login links and the setup links an operator sends a customer's IT
 * admin: created, listed, revoked, and redeemed for a session
 * (portal-sessions.ts). Tokens carry 256 random bits, so their SHA-256 is
 * stored (digest.ts: a fast hash suffices for such values, and the row is
 * found by it); the clear token is answered once, at creation.
 */

/** An operator login link lives 15 minutes and opens one session. */
export const PORTAL_LINK_TTL_SECONDS = 15 * 60;

const random = () => randomBytes(32).toString('base64url');
const compactUuid = (id: string) => id.replace(/-/g, '');
const expandUuid = (hex: string) =>
  `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;

/**
 * `gh_setup_<tenant id, 32 hex>_<random>`: the tenant travels in the token so
 * the link is found inside that tenant's RLS scope, with no pre-tenant resolver;
 * a token edited to name another tenant finds no row there.
 */
const SETUP_TOKEN = /^gh_setup_([0-9a-f]{32})_([A-Za-z0-9_-]{43})$/;
const PORTAL_TOKEN = /^gh_portal_[A-Za-z0-9_-]{43}$/;

export interface SetupLinkView {
  id: string;
  tenant_id: string;
  intents: Intent[];
  created_at: string;
  expires_at: string;
  revoked_at: string | null;
  created_by: string;
  status: 'active' | 'expired' | 'revoked';
}

export function setupLinkView(link: SetupLink, now: Date): SetupLinkView {
  return {
    id: link.id,
    tenant_id: link.tenantId,
    intents: link.intents as Intent[],
    created_at: link.createdAt.toISOString(),
    expires_at: link.expiresAt.toISOString(),
    revoked_at: link.revokedAt?.toISOString() ?? null,
    created_by: link.createdBy,
    status: link.revokedAt ? 'revoked' : link.expiresAt <= now ? 'expired' : 'active',
  };
}

export const portalStartUrl = (baseUrl: string, token: string) =>
  `${baseUrl}/portal/start?token=${encodeURIComponent(token)}`;

/** An operator's one-time login link. Expired links are swept here (a handful of rows at most). */
export async function createPortalLink(
  db: Database,
  baseUrl: string,
  ctx: AuditContext,
): Promise<{ url: string; expires_at: string }> {
  const token = `gh_portal_${random()}`;
  const now = new Date();
  const link: PortalLink = {
    id: randomUUID(),
    tokenHash: sha256Base64url(token),
    createdAt: now,
    expiresAt: new Date(now.getTime() + PORTAL_LINK_TTL_SECONDS * 1000),
    usedAt: null,
  };
  await db.withTenant(PLATFORM_TENANT_ID, async (em) => {
    await em.query('DELETE FROM portal_links WHERE expires_at < $1', [now]);
    await em.insert(PortalLink, link);
    // The platform trail: the operator opened a way into every tenant.
    await recordAudit(em, PLATFORM_TENANT_ID, {
      ...ctx,
      action: 'portal_link.created',
      target: { type: 'portal_link', id: link.id },
      after: { expires_at: link.expiresAt },
    });
  });
  return { url: portalStartUrl(baseUrl, token), expires_at: link.expiresAt.toISOString() };
}

/** Marks the operator link used, atomically: a second redemption (or a race) finds nothing. */
export async function redeemPortalLink(db: Database, token: string, now: Date): Promise<boolean> {
  if (!PORTAL_TOKEN.test(token)) return false;
  const rows = await db.withPlatform((em) =>
    em.query<[unknown[], number]>(
      `UPDATE portal_links SET used_at = $2
        WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2 RETURNING id`,
      [sha256Base64url(token), now],
    ),
  );
  return rows[0].length > 0;
}

export async function createSetupLink(
  db: Database,
  baseUrl: string,
  tenantId: string,
  input: { intents: Intent[]; ttlSeconds: number },
  ctx: AuditContext,
): Promise<SetupLinkView & { url: string }> {
  const token = `gh_setup_${compactUuid(tenantId)}_${random()}`;
  const now = new Date();
  return db.withTenant(tenantId, async (em) => {
    await requireLiveTenant(em, tenantId);
    const link: SetupLink = {
      tenantId,
      id: randomUUID(),
      tokenHash: sha256Base64url(token),
      intents: [...new Set(input.intents)],
      createdAt: now,
      expiresAt: new Date(now.getTime() + input.ttlSeconds * 1000),
      revokedAt: null,
      createdBy: ctx.actor.id ?? ctx.actor.type,
    };
    await em.insert(SetupLink, link);
    const view = setupLinkView(link, now);
    await recordAudit(em, tenantId, {
      ...ctx,
      action: 'setup_link.created',
      target: { type: 'setup_link', id: link.id },
      after: { intents: view.intents, expires_at: view.expires_at },
    });
    return { ...view, url: portalStartUrl(baseUrl, token) };
  });
}

export async function listSetupLinks(
  db: Database,
  tenantId: string,
  page: { limit: number; offset: number },
): Promise<{ data: SetupLinkView[]; total: number }> {
  const now = new Date();
  return db.withTenant(tenantId, async (em) => {
    await requireLiveTenant(em, tenantId);
    const [rows, total] = await em.findAndCount(SetupLink, {
      order: { createdAt: 'DESC', id: 'ASC' },
      take: page.limit,
      skip: page.offset,
    });
    return { data: rows.map((l) => setupLinkView(l, now)), total };
  });
}

/** Sets revoked_at and ends every portal session the link opened, in one transaction. */
export async function revokeSetupLink(
  db: Database,
  tenantId: string,
  linkId: string,
  ctx: AuditContext,
): Promise<SetupLinkView> {
  const now = new Date();
  return db.withTenant(tenantId, async (em) => {
    await requireLiveTenant(em, tenantId);
    const link = await em.findOneBy(SetupLink, { id: linkId });
    if (!link) throw new NotFoundError('Setup link');
    if (link.revokedAt) return setupLinkView(link, now);
    link.revokedAt = now;
    await em.update(SetupLink, { tenantId, id: linkId }, { revokedAt: now });
    // idor check: the session rows are a platform table, so the tenant is named with the link.
    await em.query('DELETE FROM portal_sessions WHERE tenant_scope = $1 AND setup_link_id = $2', [
      tenantId,
      linkId,
    ]);
    await recordAudit(em, tenantId, {
      ...ctx,
      action: 'setup_link.revoked',
      target: { type: 'setup_link', id: linkId },
      before: { revoked_at: null },
      after: { revoked_at: now },
    });
    return setupLinkView(link, now);
  });
}

/** The live setup link a token names: its tenant, id, intents and end; null for anything else. */
export async function findUsableSetupLink(
  db: Database,
  token: string,
  now: Date,
): Promise<{ tenantId: string; id: string; intents: Intent[]; expiresAt: Date } | null> {
  const m = SETUP_TOKEN.exec(token);
  if (!m?.[1]) return null;
  const tenantId = expandUuid(m[1]);
  return db.withTenant(tenantId, async (em) => {
    const tenant = await tenantStatusOf(em, tenantId);
    // A deleted (or purged) tenant's links open nothing; a suspended one can still be configured (tenant-guard.ts).
    if (!tenant || !['active', 'suspended'].includes(tenant.status)) return null;
    const link = await em.findOneBy(SetupLink, { tokenHash: sha256Base64url(token) });
    if (!link || link.revokedAt || link.expiresAt <= now) return null;
    return { tenantId, id: link.id, intents: link.intents as Intent[], expiresAt: link.expiresAt };
  });
}

/** Is the link behind a session still usable (not revoked, not expired, its tenant not deleted)? */
export async function setupLinkStillValid(
  db: Database,
  tenantId: string,
  linkId: string,
  now: Date,
): Promise<boolean> {
  return db.withTenant(tenantId, async (em) => {
    const tenant = await tenantStatusOf(em, tenantId);
    if (!tenant || !['active', 'suspended'].includes(tenant.status)) return false;
    const link = await em.findOneBy(SetupLink, { id: linkId });
    return !!link && !link.revokedAt && link.expiresAt > now;
  });
}
