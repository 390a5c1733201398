import { randomUUID } from 'node:crypto';
import type { EntityManager } from 'typeorm';
import { appTakesIdpInitiatedLogin } from '../apps/apps.service.js';
import { recordAudit, type AuditContext } from '../audit/audit.service.js';
import { open, seal } from '../config/secret-box.js';
import type { Database } from '../db/database.js';
import { BadRequestError, DomainError, NotFoundError } from '../errors.js';
import { revokeSessions } from '../sessions/revoke-sessions.js';
import { requireLiveTenant } from '../tenants/tenant-guard.js';
import {
  Connection,
  type ConnectionStatus,
  type OidcClientAuthMethod,
  type SamlCertificate,
  type SamlSignedElement,
} from './connection.entity.js';
import { auditSnapshot, connectionView, type ConnectionView } from './connection-view.js';
import { fetchDocument } from '../outbound/fetch-document.js';
import type { OutboundPolicy } from '../outbound/pinned-request.js';
import type { XmlLimits } from './xml-limits.js';
import { discoverOidcProvider } from './oidc-issuer-metadata.js';
import { ensureClientKeys } from './client-keys.js';
import { cacheValidators } from './metadata-refresh.js';
import {
  BINDING_REDIRECT,
  certificateWarnings,
  checkServiceUrl,
  parseCertificate,
  parseIdpMetadata,
  SAML_METADATA_MAX_BYTES,
} from './saml-metadata.js';

export interface ConnectionDeps {
  db: Database;
  baseUrl: string;
  masterKey: Buffer;
  fetch: OutboundPolicy;
  /** Pre-scan bounds for metadata XML (config.sso.xmlLimits); the defaults when not given. */
  xmlLimits?: XmlLimits;
}

interface CommonFields {
  name?: string;
  status?: ConnectionStatus;
  jit_enabled?: boolean;
  default_role?: string;
  allow_unverified_email?: boolean;
  attribute_mapping?: Record<string, string>;
}
interface SamlFields {
  metadata_xml?: string;
  metadata_url?: string;
  allow_idp_initiated?: boolean;
  allow_sha1?: boolean;
  sign_authn_requests?: boolean;
  /** Which signature a login relies on: the Assertion's (default), the Response's, or both. */
  signed_element?: SamlSignedElement;
  /** A plaintext assertion is refused: only EncryptedAssertion (issue 16). */
  require_encrypted_assertions?: boolean;
  /** The app (OIDC Core §4 initiate_login_uri) IdP-initiated logins land in; null clears it. */
  idp_initiated_app_id?: string | null;
  /** The IdP's Single Logout URL (HTTP-Redirect), over what its metadata says; null clears it (issue 16). */
  idp_slo_url?: string | null;
}
interface OidcFields {
  issuer?: string;
  client_id?: string;
  client_secret?: string;
  scopes?: string[];
  id_token_algs?: string[];
  /** Use the IdP's email even when the ID token does not say email_verified: true. */
  trust_email_unverified?: boolean;
  /** Token endpoint authentication (OIDC Core §9); private_key_jwt and none need no client secret. */
  client_auth_method?: OidcClientAuthMethod;
}
/** Create-only: `force` accepts an IdP entity id an active connection of the tenant already uses. */
export type CreateConnectionInput = { force?: boolean } &
  // without_metadata (the portal, issue 15): a draft whose SP values are shown before the IdP's metadata exists.
  (
    | (CommonFields & SamlFields & { type: 'saml'; name: string; without_metadata?: boolean })
    | (CommonFields & OidcFields & { type: 'oidc'; name: string; issuer: string; client_id: string })
  );
export type UpdateConnectionInput = CommonFields & SamlFields & OidcFields & { certificates?: string[] };

/**
 * A connection answer after a change: the view, with `warnings` naming what the
 * change noticed (strings, as before issue 16) instead of the standing ones.
 */
export type ConnectionResult = Omit<ConnectionView, 'warnings'> & { warnings: string[] };

/** Methods that authenticate with the client secret (null: basic or post, as discovered). */
function needsClientSecret(method: OidcClientAuthMethod | null): boolean {
  return method !== 'private_key_jwt' && method !== 'none';
}

const SAML_ONLY = [
  'metadata_xml',
  'metadata_url',
  'certificates',
  'allow_idp_initiated',
  'allow_sha1',
  'sign_authn_requests',
  'signed_element',
  'require_encrypted_assertions',
  'idp_initiated_app_id',
  'idp_slo_url',
];
const OIDC_ONLY = [
  'issuer',
  'client_id',
  'client_secret',
  'scopes',
  'id_token_algs',
  'trust_email_unverified',
  'client_auth_method',
];

/** AAD of the sealed client secret: a ciphertext copied to another row does not open. */
export function oidcClientSecretContext(tenantId: string, connectionId: string): string {
  return `connection:${tenantId}:${connectionId}:oidc_client_secret`;
}

/** The IdP client secret in clear, for the token request at login (src/sso/oidc). */
export function openOidcClientSecret(masterKey: Buffer, c: Connection): string {
  if (!c.oidcClientSecretEnc) throw new Error(`connection ${c.id} has no client secret`);
  return open(masterKey, c.oidcClientSecretEnc, oidcClientSecretContext(c.tenantId, c.id));
}

export async function loadConnection(em: EntityManager, connectionId: string): Promise<Connection> {
  // idor check: RLS scopes this read to the tenant of the transaction
  const c = await em.findOneBy(Connection, { id: connectionId });
  if (!c) throw new NotFoundError('Connection');
  return c;
}

/**
 * A connection a login may start or finish through, or null: active when
 * `status` says so, of one protocol when `type` does. In the caller's tenant
 * transaction (RLS scopes the read to it).
 */
export async function findConnectionForLogin(
  em: EntityManager,
  connectionId: string,
  only: { status?: 'active'; type?: Connection['type'] } = {},
): Promise<Connection | null> {
  // idor check: RLS scopes this read to the tenant of the transaction
  return em.findOneBy(Connection, { id: connectionId, ...only });
}

/** The tenant's active connections, by name (home realm discovery's chooser). */
export async function activeConnections(em: EntityManager): Promise<Connection[]> {
  return em.find(Connection, { where: { status: 'active' }, order: { name: 'ASC', id: 'ASC' } });
}

/**
 * The role a person signed in through this connection gets when no group maps
 * to one (directory/roles.service.ts decides when); null when the connection
 * is gone. In the caller's tenant transaction (RLS scopes the read).
 */
export async function connectionDefaultRole(em: EntityManager, connectionId: string): Promise<string | null> {
  const rows = await em.query<{ default_role: string }[]>(
    'SELECT default_role FROM connections WHERE id = $1',
    [connectionId],
  );
  return rows[0]?.default_role ?? null;
}

/** connectionDefaultRole as a scalar subquery over `connectionIdExpr`, for a composed statement (issue 13). */
export function connectionDefaultRoleSql(connectionIdExpr: string): string {
  return `(SELECT default_role FROM connections WHERE id = ${connectionIdExpr})`;
}

/**
 * Apps are platform rows, so the connection holds a plain uuid: it must name a
 * live app with an initiate_login_uri (read in the connection's transaction;
 * the login checks again, as the app may change later). One message for every
 * miss, so a tenant admin learns nothing about other apps.
 */
async function checkIdpInitiatedApp(em: EntityManager, appId: string | null | undefined): Promise<void> {
  if (appId === undefined || appId === null) return;
  if (!(await appTakesIdpInitiatedLogin(em, appId))) {
    throw new BadRequestError('idp_initiated_app_id: must name a registered app with an initiate_login_uri');
  }
}

/**
 * A second connection to the same IdP entity is almost always a mistake (the
 * metadata imported twice): both would answer the IdP, and which one a login
 * lands in depends on the ACS URL the IdP admin typed. Refused with a code
 * clients recognise unless the caller says `force` (a planned migration from one
 * connection to another). In the tenant's transaction (RLS scopes the read).
 */
async function checkEntityIdFree(em: EntityManager, entityId: string | null | undefined): Promise<void> {
  if (!entityId) return;
  const taken = await em.find(Connection, {
    where: { type: 'saml', status: 'active', samlIdpEntityId: entityId },
    order: { createdAt: 'ASC', id: 'ASC' },
    take: 1,
  });
  const existing = taken[0];
  if (existing) {
    throw new DomainError(
      'idp_entity_id_in_use',
      `The active connection ${existing.id} ("${existing.name}") already uses the IdP entity id ${entityId}; ` +
        'give force: true (CLI: --force) to create another one anyway',
    );
  }
}

/** IdP metadata from exactly one of metadata_xml / metadata_url, parsed and checked; the URL is kept for refreshes. */
async function importMetadata(deps: ConnectionDeps, input: SamlFields, now: Date) {
  const { validators, ...metadata } = await importMetadataDocument(deps, input, now);
  const fromUrl: Partial<Connection> = {
    metadataUrl: input.metadata_url ?? null,
    // The first fetch's validators: the first scheduled refresh is conditional (HTTP 304 when unchanged).
    metadataEtag: validators.etag,
    metadataLastModified: validators.lastModified,
    metadataRefreshedAt: input.metadata_url === undefined ? null : now,
    metadataRefreshError: null,
  };
  return { ...metadata, fromUrl };
}

async function importMetadataDocument(deps: ConnectionDeps, input: SamlFields, now: Date) {
  if ((input.metadata_xml === undefined) === (input.metadata_url === undefined)) {
    throw new BadRequestError('give exactly one of metadata_xml or metadata_url');
  }
  let xml = input.metadata_xml;
  let validators: ReturnType<typeof cacheValidators> = { etag: null, lastModified: null };
  if (xml === undefined && input.metadata_url !== undefined) {
    const fetched = await fetchDocument(
      input.metadata_url,
      {
        what: 'metadata_url',
        accept: 'application/samlmetadata+xml, application/xml, text/xml',
        maxBytes: SAML_METADATA_MAX_BYTES,
      },
      deps.fetch,
    );
    xml = fetched.body;
    validators = cacheValidators(fetched.headers);
  }
  const parsed = parseIdpMetadata(xml ?? '', {
    now,
    allowHttp: deps.fetch.allowPrivate,
    xmlLimits: deps.xmlLimits,
  });
  return { ...parsed, validators };
}

function commonColumns(input: CommonFields): Partial<Connection> {
  const out: Partial<Connection> = {};
  if (input.name !== undefined) out.name = input.name;
  if (input.status !== undefined) out.status = input.status;
  if (input.jit_enabled !== undefined) out.jitEnabled = input.jit_enabled;
  if (input.default_role !== undefined) out.defaultRole = input.default_role;
  if (input.allow_unverified_email !== undefined) out.allowUnverifiedEmail = input.allow_unverified_email;
  if (input.attribute_mapping !== undefined) out.attributeMapping = input.attribute_mapping;
  return out;
}

function samlFlagColumns(input: SamlFields): Partial<Connection> {
  const out: Partial<Connection> = {};
  if (input.allow_idp_initiated !== undefined) out.samlAllowIdpInitiated = input.allow_idp_initiated;
  if (input.allow_sha1 !== undefined) out.samlAllowSha1 = input.allow_sha1;
  if (input.sign_authn_requests !== undefined) out.samlSignAuthnRequests = input.sign_authn_requests;
  if (input.signed_element !== undefined) out.samlSignedElement = input.signed_element;
  if (input.require_encrypted_assertions !== undefined)
    out.samlRequireEncryptedAssertions = input.require_encrypted_assertions;
  if (input.idp_initiated_app_id !== undefined) out.idpInitiatedAppId = input.idp_initiated_app_id;
  return out;
}

/** An explicit idp_slo_url (validated as the SSO URL is) wins over the metadata's SingleLogoutService. */
function sloColumns(input: SamlFields, allowHttp: boolean): Partial<Connection> {
  if (input.idp_slo_url === undefined) return {};
  if (input.idp_slo_url === null) return { samlIdpSloUrl: null, samlIdpSloBinding: null };
  return {
    samlIdpSloUrl: checkServiceUrl(input.idp_slo_url, 'idp_slo_url', allowHttp),
    samlIdpSloBinding: BINDING_REDIRECT,
  };
}

const DEFAULTS: Omit<Connection, 'tenantId' | 'id' | 'type' | 'name' | 'createdAt' | 'updatedAt'> = {
  status: 'draft',
  jitEnabled: true,
  defaultRole: 'member',
  allowUnverifiedEmail: false,
  attributeMapping: {},
  samlIdpEntityId: null,
  samlSsoUrl: null,
  samlSsoBinding: null,
  samlIdpSloUrl: null,
  samlIdpSloBinding: null,
  samlCertificates: [],
  samlAllowIdpInitiated: false,
  samlAllowSha1: false,
  samlSignAuthnRequests: false,
  samlSignedElement: 'assertion',
  samlRequireEncryptedAssertions: false,
  idpInitiatedAppId: null,
  oidcIssuer: null,
  oidcClientId: null,
  oidcClientSecretEnc: null,
  oidcScopes: ['openid', 'email', 'profile'],
  oidcIdTokenAlgs: ['RS256'],
  oidcTrustEmailUnverified: false,
  oidcClientAuthMethod: null,
  metadataUrl: null,
  metadataEtag: null,
  metadataLastModified: null,
  metadataRefreshedAt: null,
  metadataRefreshError: null,
};

/** A SAML draft created before its IdP metadata (issue 15); activation waits for the metadata. */
const BARE_SAML_DRAFT = {
  entityId: null,
  ssoUrl: null,
  ssoBinding: null,
  sloUrl: null,
  sloBinding: null,
  certificates: [],
  warnings: [],
};

/**
 * Everything that talks to the outside (metadata URL, discovery) happens before
 * the transaction; the row and its audit event are then written together.
 */
export async function createConnection(
  deps: ConnectionDeps,
  tenantId: string,
  input: CreateConnectionInput,
  ctx: AuditContext,
): Promise<ConnectionResult> {
  const id = randomUUID();
  const now = new Date();
  let columns: Partial<Connection>;
  let warnings: string[] = [];
  if (input.type === 'saml') {
    // Issue 15: a draft may start without metadata, so the portal can show its SP values first.
    const bare = input.without_metadata === true && (input.status ?? 'draft') === 'draft';
    const metadata = bare ? { ...BARE_SAML_DRAFT, fromUrl: {} } : await importMetadata(deps, input, now);
    warnings = metadata.warnings;
    columns = {
      samlIdpEntityId: metadata.entityId,
      samlSsoUrl: metadata.ssoUrl,
      samlSsoBinding: metadata.ssoBinding,
      samlIdpSloUrl: metadata.sloUrl,
      samlIdpSloBinding: metadata.sloBinding,
      samlCertificates: metadata.certificates,
      ...metadata.fromUrl,
      ...samlFlagColumns(input),
      ...sloColumns(input, deps.fetch.allowPrivate),
    };
  } else {
    const algs = input.id_token_algs ?? DEFAULTS.oidcIdTokenAlgs;
    const method = input.client_auth_method ?? null;
    if (needsClientSecret(method) && input.client_secret === undefined) {
      throw new BadRequestError(`client_secret: required with client_auth_method ${method ?? 'default'}`);
    }
    await discoverOidcProvider(input.issuer, algs, deps.fetch);
    columns = {
      oidcIssuer: input.issuer,
      oidcClientId: input.client_id,
      oidcClientAuthMethod: method,
      oidcClientSecretEnc:
        input.client_secret === undefined
          ? null
          : seal(deps.masterKey, input.client_secret, oidcClientSecretContext(tenantId, id)),
      oidcScopes: input.scopes ?? DEFAULTS.oidcScopes,
      oidcIdTokenAlgs: algs,
      oidcTrustEmailUnverified: input.trust_email_unverified ?? false,
    };
  }
  return deps.db.withTenant(tenantId, async (em) => {
    await requireLiveTenant(em, tenantId);
    if (input.type === 'saml') await checkIdpInitiatedApp(em, input.idp_initiated_app_id);
    if (!input.force) await checkEntityIdFree(em, columns.samlIdpEntityId);
    const connection = em.create(Connection, {
      ...DEFAULTS,
      ...commonColumns(input),
      ...columns,
      tenantId,
      id,
      type: input.type,
      name: input.name,
      createdAt: now,
      updatedAt: now,
    });
    await em.insert(Connection, connection);
    if (connection.oidcClientAuthMethod === 'private_key_jwt')
      await ensureClientKeys(em, deps.masterKey, connection, now);
    const view = connectionView(connection, deps.baseUrl, now);
    await recordAudit(em, tenantId, {
      ...ctx,
      action: 'connection.created',
      target: { type: 'connection', id },
      after: auditSnapshot(view),
    });
    return { ...view, warnings };
  });
}

export async function listConnections(
  deps: ConnectionDeps,
  tenantId: string,
  page: { limit: number; offset: number },
): Promise<{ data: ConnectionView[]; total: number }> {
  const now = new Date();
  return deps.db.withTenant(tenantId, async (em) => {
    await requireLiveTenant(em, tenantId);
    const [rows, total] = await em.findAndCount(Connection, {
      order: { createdAt: 'ASC', id: 'ASC' },
      take: page.limit,
      skip: page.offset,
    });
    return { data: rows.map((c) => connectionView(c, deps.baseUrl, now)), total };
  });
}

export async function getConnection(
  deps: ConnectionDeps,
  tenantId: string,
  connectionId: string,
): Promise<ConnectionView> {
  return deps.db.withTenant(tenantId, async (em) =>
    connectionView(await loadConnection(em, connectionId), deps.baseUrl, new Date()),
  );
}

/** Checks the fields fit the connection's type, then does the outside work (re-import, discovery). */
async function prepareUpdate(
  deps: ConnectionDeps,
  existing: Connection,
  input: UpdateConnectionInput,
  now: Date,
): Promise<{ columns: Partial<Connection>; warnings: string[] }> {
  const given = Object.keys(input).filter((k) => input[k as keyof UpdateConnectionInput] !== undefined);
  const misplaced = given.filter((k) => (existing.type === 'saml' ? OIDC_ONLY : SAML_ONLY).includes(k));
  if (misplaced.length > 0) {
    throw new BadRequestError(`${misplaced.join(', ')}: not a field of ${existing.type} connections`);
  }
  const columns: Partial<Connection> = { ...commonColumns(input) };
  const warnings: string[] = [];
  if (existing.type === 'saml') {
    Object.assign(columns, samlFlagColumns(input));
    const reimport = input.metadata_xml !== undefined || input.metadata_url !== undefined;
    if (reimport && input.certificates) {
      throw new BadRequestError('give either new metadata or certificates, not both');
    }
    if (reimport) {
      const metadata = await importMetadata(deps, input, now);
      warnings.push(...metadata.warnings);
      Object.assign(columns, {
        samlIdpEntityId: metadata.entityId,
        samlSsoUrl: metadata.ssoUrl,
        samlSsoBinding: metadata.ssoBinding,
        samlIdpSloUrl: metadata.sloUrl,
        samlIdpSloBinding: metadata.sloBinding,
        samlCertificates: metadata.certificates,
        ...metadata.fromUrl,
      });
    }
    Object.assign(columns, sloColumns(input, deps.fetch.allowPrivate));
    if (input.certificates) {
      const certs = new Map<string, SamlCertificate>();
      input.certificates.forEach((pem, i) => {
        const cert = parseCertificate(pem, `certificates[${i}]`);
        certs.set(cert.fingerprintSha256, cert);
      });
      columns.samlCertificates = [...certs.values()];
      // Certificates given by hand are managed by hand: the metadata URL is no longer refreshed.
      columns.metadataUrl = null;
      for (const cert of certs.values()) warnings.push(...certificateWarnings(cert, now));
    }
    return { columns, warnings };
  }
  if (input.issuer !== undefined || input.id_token_algs !== undefined) {
    const issuer = input.issuer ?? existing.oidcIssuer ?? '';
    await discoverOidcProvider(issuer, input.id_token_algs ?? existing.oidcIdTokenAlgs, deps.fetch);
  }
  if (input.issuer !== undefined) columns.oidcIssuer = input.issuer;
  if (input.client_id !== undefined) columns.oidcClientId = input.client_id;
  if (input.scopes !== undefined) columns.oidcScopes = input.scopes;
  if (input.id_token_algs !== undefined) columns.oidcIdTokenAlgs = input.id_token_algs;
  if (input.trust_email_unverified !== undefined)
    columns.oidcTrustEmailUnverified = input.trust_email_unverified;
  if (input.client_auth_method !== undefined) {
    columns.oidcClientAuthMethod = input.client_auth_method;
    if (
      needsClientSecret(input.client_auth_method) &&
      input.client_secret === undefined &&
      !existing.oidcClientSecretEnc
    ) {
      throw new BadRequestError(
        `client_secret: required with client_auth_method ${input.client_auth_method}`,
      );
    }
  }
  if (input.client_secret !== undefined) {
    columns.oidcClientSecretEnc = seal(
      deps.masterKey,
      input.client_secret,
      oidcClientSecretContext(existing.tenantId, existing.id),
    );
  }
  return { columns, warnings };
}

export async function updateConnection(
  deps: ConnectionDeps,
  tenantId: string,
  connectionId: string,
  input: UpdateConnectionInput,
  ctx: AuditContext,
): Promise<ConnectionResult> {
  const now = new Date();
  const existing = await deps.db.withTenant(tenantId, (em) => loadConnection(em, connectionId));
  const { columns, warnings } = await prepareUpdate(deps, existing, input, now);
  return deps.db.withTenant(tenantId, async (em) => {
    const connection = await loadConnection(em, connectionId);
    await checkIdpInitiatedApp(em, input.idp_initiated_app_id);
    const before = connectionView(connection, deps.baseUrl, now);
    Object.assign(connection, columns, { updatedAt: now });
    if (connection.type === 'saml' && connection.status === 'active' && !connection.samlSsoUrl)
      throw new BadRequestError('status: a SAML connection needs its IdP metadata before it is active');
    await em.save(Connection, connection);
    if (connection.oidcClientAuthMethod === 'private_key_jwt')
      await ensureClientKeys(em, deps.masterKey, connection, now);
    const after = connectionView(connection, deps.baseUrl, now);
    await recordAudit(em, tenantId, {
      ...ctx,
      action: 'connection.updated',
      target: { type: 'connection', id: connectionId },
      before: auditSnapshot(before),
      // Names only: a changed client secret shows up here, its value never does.
      after: { ...auditSnapshot(after), changed_fields: Object.keys(input).sort() },
    });
    return { ...after, warnings };
  });
}

export async function deleteConnection(
  deps: ConnectionDeps,
  tenantId: string,
  connectionId: string,
  ctx: AuditContext,
): Promise<void> {
  await deps.db.withTenant(tenantId, async (em) => {
    const connection = await loadConnection(em, connectionId);
    const before = connectionView(connection, deps.baseUrl, new Date());
    // Whoever signed in through it is signed out; identities go with it (FK cascade).
    await revokeSessions(em, { connection: connectionId }, 'connection_deleted');
    await em.delete(Connection, { tenantId, id: connectionId });
    await recordAudit(em, tenantId, {
      ...ctx,
      action: 'connection.deleted',
      target: { type: 'connection', id: connectionId },
      before: auditSnapshot(before),
    });
  });
}
