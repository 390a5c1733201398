import { recordAudit, type AuditContext } from '../audit/audit.service.js';
import type { Database } from '../db/database.js';
import { NotFoundError } from '../errors.js';
import { requireLiveTenant } from '../tenants/tenant-guard.js';
import { issueScimToken } from './scim-token.js';
import { notifyScimTokenRevoked } from './scim-token-events.js';
import { ScimToken } from './scim-token.entity.js';

/** A token's metadata: never its hash, never the secret (shown once, at creation). */
export interface ScimTokenView {
  id: string;
  description: string;
  created_at: string;
  last_used_at: string | null;
  revoked_at: string | null;
}

export interface CreatedScimToken extends ScimTokenView {
  /** `gh_scim_…`: shown in this answer only. */
  token: string;
  /** Where the IdP sends SCIM requests: `${baseUrl}/scim/v2/${tenantId}`. */
  scim_base_url: string;
}

export function scimTokenView(t: ScimToken): ScimTokenView {
  return {
    id: t.id,
    description: t.description,
    created_at: t.createdAt.toISOString(),
    last_used_at: t.lastUsedAt?.toISOString() ?? null,
    revoked_at: t.revokedAt?.toISOString() ?? null,
  };
}

export function scimBaseUrl(baseUrl: string, tenantId: string): string {
  return `${baseUrl}/scim/v2/${tenantId}`;
}

export async function createScimToken(
  db: Database,
  baseUrl: string,
  tenantId: string,
  input: { description: string },
  ctx: AuditContext,
): Promise<CreatedScimToken> {
  // argon2 runs before the transaction opens: no connection held while hashing.
  const issued = await issueScimToken();
  return db.withTenant(tenantId, async (em) => {
    await requireLiveTenant(em, tenantId);
    const row = em.create(ScimToken, {
      tenantId,
      id: issued.id,
      description: input.description,
      tokenHash: issued.hash,
      createdAt: new Date(),
      lastUsedAt: null,
      revokedAt: null,
    });
    await em.insert(ScimToken, row);
    await recordAudit(em, tenantId, {
      ...ctx,
      action: 'scim_token.created',
      target: { type: 'scim_token', id: row.id },
      after: { description: row.description },
    });
    return { ...scimTokenView(row), token: issued.token, scim_base_url: scimBaseUrl(baseUrl, tenantId) };
  });
}

export async function listScimTokens(
  db: Database,
  tenantId: string,
  page: { limit: number; offset: number },
): Promise<{ data: ScimTokenView[]; total: number }> {
  return db.withTenant(tenantId, async (em) => {
    await requireLiveTenant(em, tenantId);
    const [rows, total] = await em.findAndCount(ScimToken, {
      order: { createdAt: 'ASC', id: 'ASC' },
      take: page.limit,
      skip: page.offset,
    });
    return { data: rows.map(scimTokenView), total };
  });
}

/** Sets revoked_at (the row stays, for the audit trail). Revoking a revoked token changes nothing. */
export async function revokeScimToken(
  db: Database,
  tenantId: string,
  tokenId: string,
  ctx: AuditContext,
): Promise<ScimTokenView> {
  return db.withTenant(tenantId, async (em) => {
    await requireLiveTenant(em, tenantId);
    const token = await em.findOneBy(ScimToken, { id: tokenId });
    if (!token) throw new NotFoundError('SCIM token');
    if (token.revokedAt) return scimTokenView(token);
    token.revokedAt = new Date();
    await em.update(ScimToken, { tenantId, id: tokenId }, { revokedAt: token.revokedAt });
    // Delivered to every node at commit (and only then): each drops the token from its verified cache.
    await notifyScimTokenRevoked(em, tokenId);
    await recordAudit(em, tenantId, {
      ...ctx,
      action: 'scim_token.revoked',
      target: { type: 'scim_token', id: tokenId },
      before: { description: token.description, revoked_at: null },
      after: { description: token.description, revoked_at: token.revokedAt },
    });
    return scimTokenView(token);
  });
}
