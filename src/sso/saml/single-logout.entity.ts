import { Column, Entity, PrimaryColumn } from 'typeorm';

/**
 * What SAML Single Logout needs of a session a SAML login created
 * (migrations/1766500000000): the NameID and SessionIndex to send back in our
 * LogoutRequest, and the key an IdP's LogoutRequest finds the session by.
 */
@Entity('saml_sessions')
export class SamlSession {
  @PrimaryColumn('uuid', { name: 'tenant_id' }) tenantId!: string;
  @PrimaryColumn('uuid', { name: 'session_id' }) sessionId!: string;
  @Column('uuid', { name: 'user_id' }) userId!: string;
  @Column('uuid', { name: 'connection_id' }) connectionId!: string;
  /** SHA-256 (base64url) of the connection id and the NameID value: the IdP's lookup key. */
  @Column('text', { name: 'name_id_key' }) nameIdKey!: string;
  @Column('text', { name: 'name_id' }) nameId!: string;
  @Column('text', { name: 'name_id_format', nullable: true }) nameIdFormat!: string | null;
  @Column('text', { name: 'name_qualifier', nullable: true }) nameQualifier!: string | null;
  @Column('text', { name: 'sp_name_qualifier', nullable: true }) spNameQualifier!: string | null;
  @Column('text', { name: 'session_index', nullable: true }) sessionIndex!: string | null;
  @Column('timestamptz', { name: 'created_at' }) createdAt!: Date;
  /** The session's own expiry: the cleanup sweep removes the row after it. */
  @Column('timestamptz', { name: 'expires_at' }) expiresAt!: Date;
}

/** A LogoutRequest we sent, waiting for the IdP's LogoutResponse (InResponseTo); consumed once. */
@Entity('saml_logout_requests')
export class SamlLogoutRequest {
  @PrimaryColumn('uuid', { name: 'tenant_id' }) tenantId!: string;
  /** The LogoutRequest's ID attribute. */
  @PrimaryColumn('text') id!: string;
  @Column('uuid', { name: 'connection_id' }) connectionId!: string;
  /** Where the browser goes after the IdP answered: a validated post_logout_redirect_uri, or null. */
  @Column('text', { name: 'return_url', nullable: true }) returnUrl!: string | null;
  @Column('timestamptz', { name: 'created_at' }) createdAt!: Date;
  @Column('timestamptz', { name: 'expires_at' }) expiresAt!: Date;
}
