import { randomBytes, randomUUID } from 'node:crypto';
import { IsNull, type EntityManager } from 'typeorm';
import { recordAudit, type AuditContext } from '../audit/audit.service.js';
import type { Database } from '../db/database.js';
import { isDomainVerifiedByOtherTenant } from '../db/resolvers.js';
import { ConflictError, NotFoundError } from '../errors.js';
import { checkChallengeRecord, type TxtResolver } from './dns-verifier.js';
import { Domain } from './domain.entity.js';
import { challengeRecordName, normalizeDomain } from './domain-name.js';
import { isUniqueViolation } from '../db/pg-errors.js';
import { requireLiveTenant } from './tenant-guard.js';

export interface DomainView {
  id: string;
  domain: string;
  status: 'pending' | 'verified';
  verified_at: string | null;
  verification_method: 'dns' | 'manual' | null;
  created_at: string;
  /** The record to publish: TXT `_gatehouse-challenge.<domain>` = value. */
  verification: { type: 'TXT'; name: string; value: string };
}

export function domainView(d: Domain): DomainView {
  return {
    id: d.id,
    domain: d.domain,
    status: d.verifiedAt ? 'verified' : 'pending',
    verified_at: d.verifiedAt?.toISOString() ?? null,
    verification_method: d.verificationMethod,
    created_at: d.createdAt.toISOString(),
    verification: { type: 'TXT', name: challengeRecordName(d.domain), value: d.verificationToken },
  };
}

/** How a domain is verified: its DNS TXT record, or the operator's word (with a reason). */
export type VerifyInput = { method: 'dns' } | { method: 'manual'; reason: string };

const DOMAIN_KEY = 'domains_tenant_domain_key';
const VERIFIED_KEY = 'domains_verified_domain_key';

/** Not secret (it is published in DNS), but unguessable so the record proves control. */
const challengeValue = () => `gatehouse-verification=${randomBytes(24).toString('base64url')}`;

async function load(em: EntityManager, domainId: string): Promise<Domain> {
  const domain = await em.findOneBy(Domain, { id: domainId });
  if (!domain) throw new NotFoundError('Domain');
  return domain;
}

const takenByOther = (domain: string) => new ConflictError(`${domain} is already verified by another tenant`);

export async function addDomain(
  db: Database,
  tenantId: string,
  input: { domain: string },
  ctx: AuditContext,
): Promise<DomainView> {
  const name = normalizeDomain(input.domain);
  try {
    return await db.withTenant(tenantId, async (em) => {
      await requireLiveTenant(em, tenantId);
      const domain = em.create(Domain, {
        tenantId,
        id: randomUUID(),
        domain: name,
        verificationToken: challengeValue(),
        verifiedAt: null,
        verificationMethod: null,
        createdAt: new Date(),
      });
      await em.insert(Domain, domain);
      await recordAudit(em, tenantId, {
        ...ctx,
        action: 'domain.added',
        target: { type: 'domain', id: domain.id },
        after: { domain: name },
      });
      return domainView(domain);
    });
  } catch (error) {
    if (isUniqueViolation(error, DOMAIN_KEY))
      throw new ConflictError(`${name} has already been added to this tenant`);
    throw error;
  }
}

export async function listDomains(
  db: Database,
  tenantId: string,
  query: { limit: number; offset: number; domain?: string },
): Promise<{ data: DomainView[]; total: number }> {
  const domain = query.domain === undefined ? undefined : normalizeDomain(query.domain);
  return db.withTenant(tenantId, async (em) => {
    await requireLiveTenant(em, tenantId);
    const [rows, total] = await em.findAndCount(Domain, {
      where: domain === undefined ? {} : { domain },
      order: { createdAt: 'ASC', id: 'ASC' },
      take: query.limit,
      skip: query.offset,
    });
    return { data: rows.map(domainView), total };
  });
}

export async function getDomain(db: Database, tenantId: string, domainId: string): Promise<DomainView> {
  return db.withTenant(tenantId, async (em) => {
    await requireLiveTenant(em, tenantId);
    return domainView(await load(em, domainId));
  });
}

export async function deleteDomain(
  db: Database,
  tenantId: string,
  domainId: string,
  ctx: AuditContext,
): Promise<void> {
  await db.withTenant(tenantId, async (em) => {
    await requireLiveTenant(em, tenantId);
    const domain = await load(em, domainId);
    await em.delete(Domain, { tenantId, id: domainId });
    await recordAudit(em, tenantId, {
      ...ctx,
      action: 'domain.deleted',
      target: { type: 'domain', id: domainId },
      before: {
        domain: domain.domain,
        verified_at: domain.verifiedAt,
        verification_method: domain.verificationMethod,
      },
    });
  });
}

/**
 * Marks a domain verified: by its TXT record (looked up outside any
 * transaction), or manually by the operator. A domain is verified by one
 * tenant at most: checked first through the resolver, and enforced by the
 * claim a trigger writes into domain_claims (primary key domains_verified_domain_key) when two tenants race.
 */
export async function verifyDomain(
  db: Database,
  resolver: TxtResolver,
  tenantId: string,
  domainId: string,
  input: VerifyInput,
  ctx: AuditContext,
): Promise<DomainView> {
  const current = await db.withTenant(tenantId, async (em) => {
    await requireLiveTenant(em, tenantId);
    return load(em, domainId);
  });
  if (current.verifiedAt) return domainView(current);
  if (await isDomainVerifiedByOtherTenant(db, current.domain, tenantId)) throw takenByOther(current.domain);
  if (input.method === 'dns')
    await checkChallengeRecord(resolver, challengeRecordName(current.domain), current.verificationToken);

  try {
    return await db.withTenant(tenantId, async (em) => {
      const now = new Date();
      // The challenge checked above must still be the row's (deleted and re-added meanwhile → 404/stale).
      const result = await em.update(
        Domain,
        { tenantId, id: domainId, verifiedAt: IsNull(), verificationToken: current.verificationToken },
        { verifiedAt: now, verificationMethod: input.method },
      );
      const domain = await load(em, domainId);
      if (!result.affected) return domainView(domain);
      await recordAudit(em, tenantId, {
        ...ctx,
        action: 'domain.verified',
        target: { type: 'domain', id: domainId },
        before: { domain: domain.domain, verified_at: null },
        after: {
          domain: domain.domain,
          verified_at: now,
          verification_method: input.method,
          ...(input.method === 'manual' ? { reason: input.reason } : {}),
        },
      });
      return domainView(domain);
    });
  } catch (error) {
    if (isUniqueViolation(error, VERIFIED_KEY)) throw takenByOther(current.domain);
    throw error;
  }
}

/** isVerifiedDomain as a boolean SQL expression over a bound domain, for a caller's single statement (issue 13). */
export const verifiedDomainSql = (domainSql: string) =>
  `EXISTS (SELECT 1 FROM domains WHERE domain = ${domainSql} AND verified_at IS NOT NULL)`;

/**
 * Is `domain` (normalised, as tenants/domain-name.ts returns it) a verified
 * domain of the caller's tenant? RLS scopes the read to the tenant of the
 * caller's withTenant transaction; the directory asks it for email_verified.
 */
export async function isVerifiedDomain(em: EntityManager, domain: string): Promise<boolean> {
  const rows = await em.query<unknown[]>(
    'SELECT 1 FROM domains WHERE domain = $1 AND verified_at IS NOT NULL LIMIT 1',
    [domain],
  );
  return rows.length > 0;
}
