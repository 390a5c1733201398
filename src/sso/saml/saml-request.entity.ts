import { Column, Entity, PrimaryColumn } from 'typeorm';

/** An AuthnRequest sent to the IdP, waiting for its answer (InResponseTo); consumed once. */
@Entity('saml_requests')
export class SamlRequest {
  @PrimaryColumn('uuid', { name: 'tenant_id' }) tenantId!: string;
  /** The AuthnRequest's ID attribute. */
  @PrimaryColumn('text') id!: string;
  @Column('uuid', { name: 'connection_id' }) connectionId!: string;
  /** The main app's pending authorization (src/tokens) this login answers. */
  @Column('text', { name: 'login_id' }) loginId!: string;
  /** SHA-256 of the browser-binding cookie value. */
  @Column('text', { name: 'browser_hash' }) browserHash!: string;
  @Column('timestamptz', { name: 'created_at' }) createdAt!: Date;
  @Column('timestamptz', { name: 'expires_at' }) expiresAt!: Date;
}
