import { InitialSchema1764100000000 } from './1764100000000-initial-schema.js';
import { ScimDeprovisioning1764400000000 } from './1764400000000-scim-deprovisioning.js';
import { OAuthProvider1764500000000 } from './1764500000000-oauth-provider.js';
import { SsoLoginState1764600000000 } from './1764600000000-sso-login-state.js';
import { CleanupAndAppSessions1764700000000 } from './1764700000000-cleanup-and-app-sessions.js';
import { Webhooks1764800000000 } from './1764800000000-webhooks.js';
import { OutboxRetention1764900000000 } from './1764900000000-outbox-retention.js';
import { IdpInitiatedLogin1765000000000 } from './1765000000000-idp-initiated-login.js';
import { ConnectionTrustSettings1765100000000 } from './1765100000000-connection-trust-settings.js';
import { Installation1765200000000 } from './1765200000000-installation.js';
import { ScimRequestLog1765300000000 } from './1765300000000-scim-request-log.js';
import { SharedRateLimits1765400000000 } from './1765400000000-shared-rate-limits.js';
import { MetricsFunctions1765500000000 } from './1765500000000-metrics-functions.js';
import { DistributableKeys1765600000000 } from './1765600000000-distributable-keys.js';
import { AuditCheckpoints1765800000000 } from './1765800000000-audit-checkpoints.js';
import { TenantExports1765900000000 } from './1765900000000-tenant-exports.js';
import { TenantDeletionAndErasure1766000000000 } from './1766000000000-tenant-deletion-and-erasure.js';
import { RlsSafeLookupKeys1766100000000 } from './1766100000000-rls-safe-lookup-keys.js';
import { ConnectionSpKeys1766300000000 } from './1766300000000-connection-sp-keys.js';
import { MetadataRefresh1766400000000 } from './1766400000000-metadata-refresh.js';
import { SamlSingleLogout1766500000000 } from './1766500000000-saml-single-logout.js';
import { LoginTraces1766600000000 } from './1766600000000-login-traces.js';
import { AdminPortal1766200000000 } from './1766200000000-admin-portal.js';
import { ClientKeyCertificates1766700000000 } from './1766700000000-client-key-certificates.js';
import { PortalTenantAdmins1766800000000 } from './1766800000000-portal-tenant-admins.js';
import { AuditSealer1767200000000 } from './1767200000000-audit-sealer.js';
import { AuditFilterIndexes1767300000000 } from './1767300000000-audit-filter-indexes.js';
import { PortalIdTokenSealed1767400000000 } from './1767400000000-portal-id-token-sealed.js';

/** Every migration, in order. A new migration file is added here. */
export const MIGRATIONS = [
  InitialSchema1764100000000,
  ScimDeprovisioning1764400000000,
  OAuthProvider1764500000000,
  SsoLoginState1764600000000,
  CleanupAndAppSessions1764700000000,
  Webhooks1764800000000,
  OutboxRetention1764900000000,
  IdpInitiatedLogin1765000000000,
  ConnectionTrustSettings1765100000000,
  Installation1765200000000,
  ScimRequestLog1765300000000,
  SharedRateLimits1765400000000,
  MetricsFunctions1765500000000,
  DistributableKeys1765600000000,
  AuditCheckpoints1765800000000,
  TenantExports1765900000000,
  TenantDeletionAndErasure1766000000000,
  RlsSafeLookupKeys1766100000000,
  AdminPortal1766200000000,
  ConnectionSpKeys1766300000000,
  MetadataRefresh1766400000000,
  SamlSingleLogout1766500000000,
  LoginTraces1766600000000,
  ClientKeyCertificates1766700000000,
  PortalTenantAdmins1766800000000,
  AuditSealer1767200000000,
  AuditFilterIndexes1767300000000,
  PortalIdTokenSealed1767400000000,
];
