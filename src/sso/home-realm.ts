import { Connection } from '../connections/connection.entity.js';
import { activeConnections, findConnectionForLogin } from '../connections/connections.service.js';
import type { Database } from '../db/database.js';
import { resolveTenantByConnection, resolveTenantByEmailDomain } from '../db/resolvers.js';
import { emailDomain, splitEmailAddress } from '../tenants/domain-name.js';
import { isLiveTenantStatus } from '../db/tenant-liveness.js';
import { findTenantByIdOrSlug } from '../tenants/tenants.service.js';
import { LoginRefusedError, refuse } from './reasons.js';

/**
 * Home realm discovery (docs/architecture.md): which tenant, then which of its
 * connections. The tenant comes from a verified email domain, the app's
 * `organization`, or the app's `connection` — never from an unverified
 * domain, so an unknown address never ends at someone else's IdP.
 */
export interface DiscoveryInput {
  email: string | null;
  organization: string | null;
  connectionId: string | null;
}

export type DiscoveryOutcome =
  | { kind: 'ask_email' }
  | { kind: 'choose'; tenantId: string; connections: { id: string; name: string }[] }
  | { kind: 'connection'; connection: Connection };

const LOCAL_PART = /^[^\s@<>()[\]\\,;:"]{1,64}$/;

/** A work email as typed: trimmed, lower-cased, its domain in ASCII (IDNA); null when it is not one. */
export function normalizeEmail(input: string): string | null {
  const raw = input.trim().toLowerCase();
  const parts = raw.length > 254 ? null : splitEmailAddress(raw);
  if (!parts) return null;
  const { localPart, domain } = parts;
  if (!LOCAL_PART.test(localPart) || !domain.includes('.') || domain.startsWith('.')) return null;
  return `${localPart}@${domain}`;
}

async function activeConnectionsOf(db: Database, tenantId: string): Promise<Connection[]> {
  return db.withTenant(tenantId, (em) => activeConnections(em));
}

async function tenantOfEmail(db: Database, email: string): Promise<string | null> {
  const domain = emailDomain(email);
  return domain === null ? null : resolveTenantByEmailDomain(db, domain);
}

async function tenantOfOrganization(db: Database, organization: string): Promise<string> {
  const tenant = await findTenantByIdOrSlug(db, organization);
  if (!tenant || !isLiveTenantStatus(tenant.status)) refuse('discovery_organization_unknown', organization);
  return tenant.id;
}

function pick(tenantId: string, connections: Connection[]): DiscoveryOutcome {
  const [only] = connections;
  if (!only) refuse('discovery_no_connection', `tenant ${tenantId} has no active connection`);
  if (connections.length === 1) return { kind: 'connection', connection: only };
  return { kind: 'choose', tenantId, connections: connections.map((c) => ({ id: c.id, name: c.name })) };
}

export async function discover(db: Database, input: DiscoveryInput): Promise<DiscoveryOutcome> {
  let email: string | null = null;
  if (input.email !== null) {
    email = normalizeEmail(input.email);
    if (!email) refuse('discovery_email_invalid');
  }

  if (input.connectionId !== null) {
    const tenantId = await resolveTenantByConnection(db, input.connectionId);
    if (!tenantId) refuse('discovery_connection_unknown', input.connectionId);
    const connection = await db.withTenant(tenantId, (em) =>
      findConnectionForLogin(em, input.connectionId ?? '', { status: 'active' }),
    );
    if (!connection) refuse('discovery_connection_unknown', input.connectionId);
    // idor check: the connection must belong to the tenant the other hints name.
    if (input.organization !== null && (await tenantOfOrganization(db, input.organization)) !== tenantId)
      refuse('discovery_conflict', 'organization and connection name different tenants');
    if (email) {
      const emailTenant = await tenantOfEmail(db, email);
      if (emailTenant !== null && emailTenant !== tenantId)
        refuse('discovery_conflict', 'the email domain is verified by another tenant');
    }
    return { kind: 'connection', connection };
  }

  if (input.organization !== null) {
    const tenantId = await tenantOfOrganization(db, input.organization);
    if (email) {
      const emailTenant = await tenantOfEmail(db, email);
      if (emailTenant !== null && emailTenant !== tenantId)
        refuse('discovery_conflict', 'the email domain is verified by another tenant');
    }
    return pick(tenantId, await activeConnectionsOf(db, tenantId));
  }

  if (email) {
    const tenantId = await tenantOfEmail(db, email);
    if (!tenantId) refuse('discovery_domain_unknown', emailDomain(email) ?? undefined);
    return pick(tenantId, await activeConnectionsOf(db, tenantId));
  }
  return { kind: 'ask_email' };
}

/** A connection chosen on the chooser page: it must be an active one of that tenant. */
export async function chosenConnection(
  db: Database,
  tenantId: string,
  connectionId: string,
): Promise<Connection> {
  // idor check: looked up inside the email's tenant only.
  const connection = await db.withTenant(tenantId, (em) =>
    findConnectionForLogin(em, connectionId, { status: 'active' }),
  );
  if (!connection) throw new LoginRefusedError('discovery_connection_unknown', connectionId);
  return connection;
}
