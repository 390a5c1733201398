import { Column, Entity, PrimaryColumn } from 'typeorm';

/** What an SP key is for: signing AuthnRequests, or decrypting EncryptedAssertions. */
export type SpKeyUse = 'signing' | 'encryption';
export const SP_KEY_USES: readonly SpKeyUse[] = ['signing', 'encryption'];
/** next: published, not yet used; current: in use; previous: still accepted and published; retired: neither. */
export type SpKeyStatus = 'next' | 'current' | 'previous' | 'retired';

/**
 * One SP key pair of one SAML connection (migrations/1766300000000). The
 * private key is PKCS#8 sealed under the master key (config/secret-box.ts)
 * with the tenant, connection and key id as associated data; a retired key
 * keeps only its certificate.
 */
@Entity('connection_sp_keys')
export class ConnectionSpKey {
  @PrimaryColumn('uuid', { name: 'tenant_id' }) tenantId!: string;
  @PrimaryColumn('uuid') id!: string;
  @Column('uuid', { name: 'connection_id' }) connectionId!: string;
  @Column('text') use!: SpKeyUse;
  @Column('text') status!: SpKeyStatus;
  @Column('text', { name: 'certificate_pem' }) certificatePem!: string;
  @Column('text', { name: 'private_key_enc', nullable: true }) privateKeyEnc!: string | null;
  @Column('timestamptz', { name: 'not_after' }) notAfter!: Date;
  @Column('timestamptz', { name: 'created_at' }) createdAt!: Date;
  @Column('timestamptz', { name: 'activated_at', nullable: true }) activatedAt!: Date | null;
  @Column('timestamptz', { name: 'retired_at', nullable: true }) retiredAt!: Date | null;
}
