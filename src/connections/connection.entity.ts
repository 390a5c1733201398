import { Column, Entity, PrimaryColumn } from 'typeorm';

export type ConnectionType = 'saml' | 'oidc';
export type ConnectionStatus = 'draft' | 'active' | 'inactive';
/** Which SAML signature a login relies on (migrations/1765100000000). */
export type SamlSignedElement = 'assertion' | 'response' | 'both';
export const SAML_SIGNED_ELEMENTS: readonly SamlSignedElement[] = ['assertion', 'response', 'both'];

export interface SamlCertificate {
  pem: string;
  fingerprintSha256: string;
  notBefore: string;
  notAfter: string;
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
  @Column('jsonb', { name: 'saml_certificates' }) samlCertificates!: SamlCertificate[];
  @Column('boolean', { name: 'saml_allow_idp_initiated' }) samlAllowIdpInitiated!: boolean;
  @Column('boolean', { name: 'saml_allow_sha1' }) samlAllowSha1!: boolean;
  @Column('boolean', { name: 'saml_sign_authn_requests' }) samlSignAuthnRequests!: boolean;
  @Column('text', { name: 'saml_signed_element' }) samlSignedElement!: SamlSignedElement;
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
  @Column('timestamptz', { name: 'created_at' }) createdAt!: Date;
  @Column('timestamptz', { name: 'updated_at' }) updatedAt!: Date;
}
