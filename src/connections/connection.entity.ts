import { Column, Entity, PrimaryColumn } from 'typeorm';

export type ConnectionType = 'saml' | 'oidc';
export type ConnectionStatus = 'draft' | 'active' | 'inactive';
/** Which SAML signature a login relies on (migrations/1765100000000). */
export type SamlSignedElement = 'assertion' | 'response' | 'both';
export const SAML_SIGNED_ELEMENTS: readonly SamlSignedElement[] = ['assertion', 'response', 'both'];

/** How Gatehouse authenticates at an OIDC IdP's token endpoint (OIDC Core §9; RFC 7523 §2.2). */
export type OidcClientAuthMethod =
  'client_secret_basic' | 'client_secret_post' | 'client_secret_jwt' | 'private_key_jwt' | 'none';
export const OIDC_CLIENT_AUTH_METHODS: readonly OidcClientAuthMethod[] = [
  'client_secret_basic',
  'client_secret_post',
  'client_secret_jwt',
  'private_key_jwt',
  'none',
];

/** A webhook notice already sent for a certificate (src/connections/certificate-expiry.ts). */
export type ExpiryNotice = '30d' | '7d' | 'expired';

/**
 * An IdP signing certificate (jsonb item of saml_certificates). The optional
 * fields are the metadata refresh's bookkeeping (migrations/1766400000000):
 * absent means seen since the connection was created, still published,
 * nothing announced.
 */
export interface SamlCertificate {
  pem: string;
  fingerprintSha256: string;
  notBefore: string;
  notAfter: string;
  /** When a refresh first found it in the IdP's metadata (ISO). */
  firstSeenAt?: string;
  /** When the IdP's metadata stopped listing it (ISO); it still verifies until the overlap ends. */
  removedAt?: string | null;
  /** Expiry thresholds already announced (once each). */
  expiryNotices?: ExpiryNotice[];
}

@Entity('connections')
export class Connection {
  @PrimaryColumn('uuid', { name: 'tenant_id' }) tenantId!: string;
  @PrimaryColumn('uuid') id!: string;
  @Column('text') type!: ConnectionType;
  @Column('text') name!: string;
  @Column('text') status!: ConnectionStatus;
  @Column('boolean', { name: 'jit_enabled' }) jitEnabled!: boolean;
  @Column('text', { name: 'default_role' }) defaultRole!: string;
  @Column('boolean', { name: 'allow_unverified_email' }) allowUnverifiedEmail!: boolean;
  @Column('jsonb', { name: 'attribute_mapping' }) attributeMapping!: Record<string, string>;
  @Column('text', { name: 'saml_idp_entity_id', nullable: true }) samlIdpEntityId!: string | null;
  @Column('text', { name: 'saml_sso_url', nullable: true }) samlSsoUrl!: string | null;
  @Column('text', { name: 'saml_sso_binding', nullable: true }) samlSsoBinding!: string | null;
  /** SAML: the IdP's SingleLogoutService (issue 16; migrations/1766500000000); null: no single logout. */
  @Column('text', { name: 'saml_idp_slo_url', nullable: true }) samlIdpSloUrl!: string | null;
  /** Its binding (HTTP-Redirect or HTTP-POST); null with a URL given by hand: HTTP-Redirect. */
  @Column('text', { name: 'saml_idp_slo_binding', nullable: true }) samlIdpSloBinding!: string | null;
  @Column('jsonb', { name: 'saml_certificates' }) samlCertificates!: SamlCertificate[];
  @Column('boolean', { name: 'saml_allow_idp_initiated' }) samlAllowIdpInitiated!: boolean;
  @Column('boolean', { name: 'saml_allow_sha1' }) samlAllowSha1!: boolean;
  @Column('boolean', { name: 'saml_sign_authn_requests' }) samlSignAuthnRequests!: boolean;
  @Column('text', { name: 'saml_signed_element' }) samlSignedElement!: SamlSignedElement;
  /** SAML: a plaintext assertion is refused (saml_assertion_not_encrypted; migrations/1766300000000). */
  @Column('boolean', { name: 'saml_require_encrypted_assertions' }) samlRequireEncryptedAssertions!: boolean;
  /** SAML: the app (platform-level, no FK) IdP-initiated logins go to; null: none. */
  @Column('uuid', { name: 'idp_initiated_app_id', nullable: true }) idpInitiatedAppId!: string | null;
  @Column('text', { name: 'oidc_issuer', nullable: true }) oidcIssuer!: string | null;
  @Column('text', { name: 'oidc_client_id', nullable: true }) oidcClientId!: string | null;
  /** AES-256-GCM under the master key; never returned by any API. */
  @Column('text', { name: 'oidc_client_secret_enc', nullable: true }) oidcClientSecretEnc!: string | null;
  @Column('text', { name: 'oidc_scopes', array: true }) oidcScopes!: string[];
  @Column('text', { name: 'oidc_id_token_algs', array: true }) oidcIdTokenAlgs!: string[];
  /** OIDC: use the IdP's email even when its ID token says email_verified is not true. */
  @Column('boolean', { name: 'oidc_trust_email_unverified' }) oidcTrustEmailUnverified!: boolean;
  /** Null: as before (client_secret_basic when the IdP lists it, else client_secret_post). */
  @Column('text', { name: 'oidc_client_auth_method', nullable: true })
  oidcClientAuthMethod!: OidcClientAuthMethod | null;
  /** SAML: where the IdP's metadata is re-fetched from (src/connections/metadata-refresh.ts); null: none. */
  @Column('text', { name: 'metadata_url', nullable: true }) metadataUrl!: string | null;
  @Column('text', { name: 'metadata_etag', nullable: true }) metadataEtag!: string | null;
  @Column('text', { name: 'metadata_last_modified', nullable: true }) metadataLastModified!: string | null;
  /** The last refresh attempt (claimed by a node before it fetches). */
  @Column('timestamptz', { name: 'metadata_refreshed_at', nullable: true }) metadataRefreshedAt!: Date | null;
  /** Why the last refresh failed; null after a success. */
  @Column('text', { name: 'metadata_refresh_error', nullable: true }) metadataRefreshError!: string | null;
  @Column('timestamptz', { name: 'created_at' }) createdAt!: Date;
  @Column('timestamptz', { name: 'updated_at' }) updatedAt!: Date;
}
