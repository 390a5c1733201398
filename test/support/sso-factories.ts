import { randomBytes, randomUUID } from 'node:crypto';
import { seal } from '../../src/config/secret-box.js';
import { Connection } from '../../src/connections/connection.entity.js';
import type { Database } from '../../src/db/database.js';
import { serviceProviderDetails } from '../../src/connections/sp.js';
import { createTenant } from './factories.js';
import type { SamlTestIdp, ServiceProviderTarget } from './saml-idp.js';

/**
 * Tenants, verified domains and connections for sign-in tests, written
 * straight to the tables (the connections admin API is tested on its own).
 */

/** A tenant owning `domains`, each verified (manually). */
export async function createTenantWithDomains(
  db: Database,
  slug: string,
  domains: string[],
): Promise<string> {
  const tenantId = await createTenant(db, slug);
  for (const domain of domains) await addDomain(db, tenantId, domain, true);
  return tenantId;
}

export async function addDomain(
  db: Database,
  tenantId: string,
  domain: string,
  verified: boolean,
): Promise<void> {
  await db.withTenant(tenantId, (em) =>
    em.query(
      `INSERT INTO domains (tenant_id, domain, verification_token, verified_at, verification_method)
       VALUES ($1, $2, $3, $4, $5)`,
      [
        tenantId,
        domain,
        randomBytes(16).toString('hex'),
        verified ? new Date() : null,
        verified ? 'manual' : null,
      ],
    ),
  );
}

type ConnectionOverrides = Partial<
  Pick<
    Connection,
    | 'id'
    | 'name'
    | 'status'
    | 'jitEnabled'
    | 'defaultRole'
    | 'allowUnverifiedEmail'
    | 'attributeMapping'
    | 'samlAllowIdpInitiated'
    | 'samlAllowSha1'
    | 'samlSignedElement'
    | 'oidcTrustEmailUnverified'
    | 'oidcIdTokenAlgs'
    | 'oidcScopes'
  >
>;

async function insertConnection(db: Database, row: Record<string, unknown>): Promise<Connection> {
  const columns = Object.keys(row);
  const values = Object.values(row).map((v) =>
    v !== null && typeof v === 'object' && !Array.isArray(v) ? JSON.stringify(v) : v,
  );
  const tenantId = row.tenant_id as string;
  return db.withTenant(tenantId, async (em) => {
    await em.query(
      `INSERT INTO connections (${columns.join(', ')}) VALUES (${columns.map((_, i) => `$${i + 1}`).join(', ')})`,
      values,
    );
    return em.findOneByOrFail(Connection, { id: row.id as string });
  });
}

function common(tenantId: string, o: ConnectionOverrides): Record<string, unknown> {
  return {
    tenant_id: tenantId,
    id: o.id ?? randomUUID(),
    name: o.name ?? 'Company IdP',
    status: o.status ?? 'active',
    jit_enabled: o.jitEnabled ?? true,
    default_role: o.defaultRole ?? 'member',
    allow_unverified_email: o.allowUnverifiedEmail ?? false,
    attribute_mapping: o.attributeMapping ?? {},
  };
}

/** An active SAML connection trusting `idps`' certificates (the first one's entity id and SSO URL). */
export async function createSamlConnection(
  db: Database,
  tenantId: string,
  idps: SamlTestIdp | SamlTestIdp[],
  o: ConnectionOverrides = {},
): Promise<Connection> {
  const list = Array.isArray(idps) ? idps : [idps];
  const [first] = list;
  if (!first) throw new Error('at least one IdP');
  const certificates = list.map((idp) => idp.certificate());
  return insertConnection(db, {
    ...common(tenantId, o),
    type: 'saml',
    saml_idp_entity_id: first.entityId,
    saml_sso_url: first.ssoUrl,
    saml_sso_binding: 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect',
    saml_certificates: JSON.stringify(certificates),
    saml_allow_idp_initiated: o.samlAllowIdpInitiated ?? false,
    saml_allow_sha1: o.samlAllowSha1 ?? false,
    saml_signed_element: o.samlSignedElement ?? 'assertion',
  });
}

/** An active OIDC connection with the client secret sealed as the admin API seals it. */
export async function createOidcConnection(
  db: Database,
  masterKey: Buffer,
  tenantId: string,
  client: { issuer: string; clientId: string; clientSecret: string },
  o: ConnectionOverrides = {},
): Promise<Connection> {
  const row = common(tenantId, o);
  const id = row.id as string;
  return insertConnection(db, {
    ...row,
    type: 'oidc',
    oidc_issuer: client.issuer,
    oidc_client_id: client.clientId,
    oidc_client_secret_enc: seal(
      masterKey,
      client.clientSecret,
      `connection:${tenantId}:${id}:oidc_client_secret`,
    ),
    oidc_scopes: o.oidcScopes ?? ['openid', 'email', 'profile'],
    oidc_id_token_algs: o.oidcIdTokenAlgs ?? ['RS256'],
    oidc_trust_email_unverified: o.oidcTrustEmailUnverified ?? false,
  });
}

/** Our SP for a connection, as the IdP admin configures it. */
export function spOf(baseUrl: string, connection: Pick<Connection, 'id'>): ServiceProviderTarget {
  const sp = serviceProviderDetails(baseUrl, connection.id);
  return { entityId: sp.entityId, acsUrl: sp.acsUrl };
}

/** Row counts of what a login creates, read as the tenant. */
export async function loginFootprint(
  db: Database,
  tenantId: string,
): Promise<{ users: number; identities: number; sessions: number; groups: number }> {
  return db.withTenant(tenantId, async (em) => {
    const [row] = await em.query<{ users: string; identities: string; sessions: string; groups: string }[]>(
      `SELECT (SELECT count(*) FROM users) AS users, (SELECT count(*) FROM identities) AS identities,
              (SELECT count(*) FROM sessions) AS sessions, (SELECT count(*) FROM groups) AS groups`,
    );
    return {
      users: Number(row?.users),
      identities: Number(row?.identities),
      sessions: Number(row?.sessions),
      groups: Number(row?.groups),
    };
  });
}

/** Audit events of the tenant with this action, newest last. */
export async function auditEvents(
  db: Database,
  tenantId: string,
  action: string,
): Promise<{ actor_type: string; target_id: string | null; after: Record<string, unknown> | null }[]> {
  return db.withTenant(tenantId, (em) =>
    em.query(`SELECT actor_type, target_id, after FROM audit_events WHERE action = $1 ORDER BY seq`, [
      action,
    ]),
  );
}
