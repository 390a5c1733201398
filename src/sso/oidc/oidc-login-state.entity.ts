import { Column, Entity, PrimaryColumn } from 'typeorm';

/** An OIDC authorization request sent to a tenant's IdP; consumed once by its callback. */
@Entity('oidc_login_states')
export class OidcLoginState {
  @PrimaryColumn('uuid', { name: 'tenant_id' }) tenantId!: string;
  @PrimaryColumn('text') state!: string;
  @Column('uuid', { name: 'connection_id' }) connectionId!: string;
  @Column('text', { name: 'login_id' }) loginId!: string;
  /** SHA-256 of the browser-binding cookie value. */
  @Column('text', { name: 'browser_hash' }) browserHash!: string;
  @Column('text') nonce!: string;
  /** The PKCE code_verifier, sealed under the master key. */
  @Column('text', { name: 'code_verifier_enc' }) codeVerifierEnc!: string;
  @Column('timestamptz', { name: 'created_at' }) createdAt!: Date;
  @Column('timestamptz', { name: 'expires_at' }) expiresAt!: Date;
}
