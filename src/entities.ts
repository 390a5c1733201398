import { AuditEvent } from './audit/audit-event.entity.js';
import { AuditCheckpoint } from './audit/audit-checkpoint.entity.js';
import { Connection } from './connections/connection.entity.js';
import { Group } from './directory/group.entity.js';
import { GroupMember } from './directory/group-member.entity.js';
import { Identity } from './directory/identity.entity.js';
import { RoleMapping } from './directory/role-mapping.entity.js';
import { User } from './directory/user.entity.js';
import { ScimToken } from './scim/scim-token.entity.js';
import { Session } from './sessions/session.entity.js';
import { Domain } from './tenants/domain.entity.js';
import { Tenant } from './tenants/tenant.entity.js';
import { App } from './apps/app.entity.js';
import { AppSecret } from './apps/app-secret.entity.js';
import { SigningKey } from './tokens/keys/signing-key.entity.js';
import { AuthorizationCode } from './tokens/grants/authorization-code.entity.js';
import { AuthorizationRequest } from './tokens/authorize/authorization-request.entity.js';
import { RefreshToken } from './tokens/grants/refresh-token.entity.js';
import { SamlRequest } from './sso/saml/saml-request.entity.js';
import { SamlAssertionId } from './sso/saml/saml-assertion-id.entity.js';
import { OidcLoginState } from './sso/oidc/oidc-login-state.entity.js';
import { LogoutOutboxEntry } from './sessions/logout-outbox.entity.js';
import { WebhookOutboxEntry } from './webhooks/webhook-outbox.entity.js';
import { AppWebhookSecret } from './webhooks/app-webhook-secret.entity.js';
import { RateLimitCounter } from './http/rate-limit-counter.entity.js';
import { ScimRequest } from './scim/scim-request.entity.js';
import { PortalLink } from './portal/portal-link.entity.js';
import { SetupLink } from './portal/setup-link.entity.js';
import { PortalSession } from './portal/portal-session.entity.js';
import { TenantExport } from './offboarding/tenant-export.entity.js';
import { ConnectionClientKey } from './connections/client-keys.entity.js';
import { ConnectionSpKey } from './connections/sp-keys.entity.js';
import { SamlLogoutRequest, SamlSession } from './sso/saml/single-logout.entity.js';
import { LoginTrace } from './sso/login-trace.entity.js';

/** Every entity, handed to the data source (db does not import feature folders). */
export const ENTITIES = [
  Tenant,
  Domain,
  Connection,
  User,
  Identity,
  Group,
  GroupMember,
  RoleMapping,
  Session,
  App,
  AppSecret,
  SigningKey,
  ScimToken,
  AuditEvent,
  AuditCheckpoint,
  AuthorizationRequest,
  AuthorizationCode,
  RefreshToken,
  SamlRequest,
  SamlAssertionId,
  OidcLoginState,
  LogoutOutboxEntry,
  WebhookOutboxEntry,
  AppWebhookSecret,
  RateLimitCounter,
  ScimRequest,
  TenantExport,
  ConnectionClientKey,
  ConnectionSpKey,
  SamlSession,
  SamlLogoutRequest,
  LoginTrace,
  PortalLink,
  SetupLink,
  PortalSession,
];
