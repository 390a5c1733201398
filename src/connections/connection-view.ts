import { certificateExpiryWarnings, type CertificateWarning } from './certificate-expiry.js';
import type { Connection, OidcClientAuthMethod, SamlSignedElement } from './connection.entity.js';
import { isExpired } from './saml-metadata.js';
import { serviceProviderDetails } from './sp.js';

export interface CertificateView {
  fingerprint_sha256: string;
  not_before: string;
  not_after: string;
  expired: boolean;
  pem: string;
  /** When a metadata refresh first found it; null: since the connection was created or edited. */
  first_seen_at: string | null;
  /** When the IdP's metadata stopped listing it; it verifies until the overlap ends. */
  removed_at: string | null;
}

/** A connection on the wire (snake_case). The OIDC client secret is never part of it. */
export interface ConnectionView {
  id: string;
  tenant_id: string;
  type: 'saml' | 'oidc';
  name: string;
  status: string;
  jit_enabled: boolean;
  default_role: string;
  allow_unverified_email: boolean;
  /** Overrides of DEFAULT_ATTRIBUTE_MAPPING, per profile field. */
  attribute_mapping: Record<string, string>;
  /** Standing problems the admin should act on (an IdP certificate expiring within 30 days or expired). */
  warnings: CertificateWarning[];
  saml?: {
    idp_entity_id: string | null;
    sso_url: string | null;
    sso_binding: string | null;
    /** The IdP's Single Logout URL and binding (issue 16); null: no LogoutRequest is sent to it. */
    idp_slo_url: string | null;
    idp_slo_binding: string | null;
    certificates: CertificateView[];
    allow_idp_initiated: boolean;
    allow_sha1: boolean;
    sign_authn_requests: boolean;
    signed_element: SamlSignedElement;
    /** Plaintext assertions refused: the IdP must encrypt to the SP metadata's encryption key. */
    require_encrypted_assertions: boolean;
    /** The app IdP-initiated logins land in (its initiate_login_uri); null: a page asks to start from the app. */
    idp_initiated_app_id: string | null;
    /** Re-fetched on a schedule when the connection was imported from a URL (docs/sso.md). */
    metadata: {
      url: string | null;
      refreshed_at: string | null;
      refresh_error: string | null;
    };
  };
  /** What the IdP admin enters on their side. */
  sp?: { entity_id: string; acs_url: string; metadata_url: string; slo_url: string };
  oidc?: {
    issuer: string | null;
    client_id: string | null;
    scopes: string[];
    id_token_algs: string[];
    trust_email_unverified: boolean;
    /** Token endpoint authentication; null: client_secret_basic, or _post when the IdP lists only that. */
    client_auth_method: OidcClientAuthMethod | null;
    /** Where the IdP fetches our public keys (private_key_jwt). */
    jwks_uri: string;
    /** The callback to register at the IdP. */
    redirect_uri: string;
  };
  created_at: string;
  updated_at: string;
}

export function connectionView(c: Connection, baseUrl: string, now: Date): ConnectionView {
  const common = {
    id: c.id,
    tenant_id: c.tenantId,
    type: c.type,
    name: c.name,
    status: c.status,
    jit_enabled: c.jitEnabled,
    default_role: c.defaultRole,
    allow_unverified_email: c.allowUnverifiedEmail,
    attribute_mapping: c.attributeMapping,
    warnings: c.type === 'saml' ? certificateExpiryWarnings(c.samlCertificates, now) : [],
  };
  const times = { created_at: c.createdAt.toISOString(), updated_at: c.updatedAt.toISOString() };
  if (c.type === 'oidc') {
    return {
      ...common,
      oidc: {
        issuer: c.oidcIssuer,
        client_id: c.oidcClientId,
        scopes: c.oidcScopes,
        id_token_algs: c.oidcIdTokenAlgs,
        trust_email_unverified: c.oidcTrustEmailUnverified,
        client_auth_method: c.oidcClientAuthMethod,
        jwks_uri: `${baseUrl}/oidc/${c.id}/jwks`,
        redirect_uri: `${baseUrl}/oidc/${c.id}/callback`,
      },
      ...times,
    };
  }
  const sp = serviceProviderDetails(baseUrl, c.id);
  return {
    ...common,
    saml: {
      idp_entity_id: c.samlIdpEntityId,
      sso_url: c.samlSsoUrl,
      sso_binding: c.samlSsoBinding,
      idp_slo_url: c.samlIdpSloUrl,
      idp_slo_binding: c.samlIdpSloBinding,
      certificates: c.samlCertificates.map((cert) => ({
        fingerprint_sha256: cert.fingerprintSha256,
        not_before: cert.notBefore,
        not_after: cert.notAfter,
        expired: isExpired(cert, now),
        pem: cert.pem,
        first_seen_at: cert.firstSeenAt ?? null,
        removed_at: cert.removedAt ?? null,
      })),
      allow_idp_initiated: c.samlAllowIdpInitiated,
      allow_sha1: c.samlAllowSha1,
      sign_authn_requests: c.samlSignAuthnRequests,
      signed_element: c.samlSignedElement,
      require_encrypted_assertions: c.samlRequireEncryptedAssertions,
      idp_initiated_app_id: c.idpInitiatedAppId,
      metadata: {
        url: c.metadataUrl,
        refreshed_at: c.metadataRefreshedAt?.toISOString() ?? null,
        refresh_error: c.metadataRefreshError,
      },
    },
    sp: { entity_id: sp.entityId, acs_url: sp.acsUrl, metadata_url: sp.metadataUrl, slo_url: sp.sloUrl },
    ...times,
  };
}

/** The view as the audit trail keeps it: certificates by fingerprint, no PEM bodies. */
export function auditSnapshot(view: ConnectionView): Record<string, unknown> {
  const { sp: _sp, saml, warnings: _warnings, ...rest } = view;
  if (!saml) return { ...rest };
  return {
    ...rest,
    saml: {
      ...saml,
      certificates: saml.certificates.map((c) => ({
        fingerprint_sha256: c.fingerprint_sha256,
        not_after: c.not_after,
        ...(c.removed_at ? { removed_at: c.removed_at } : {}),
      })),
      // The refresh bookkeeping changes on its own; only the URL is part of the configuration.
      metadata: { url: saml.metadata.url },
    },
  };
}
