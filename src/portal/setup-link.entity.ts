import { Column, Entity, PrimaryColumn } from 'typeorm';

/** A customer IT admin's link into the portal: one tenant, some intents; the token's SHA-256 only. */
@Entity('setup_links')
export class SetupLink {
  @PrimaryColumn('uuid', { name: 'tenant_id' }) tenantId!: string;
  @PrimaryColumn('uuid') id!: string;
  @Column('text', { name: 'token_hash' }) tokenHash!: string;
  @Column('text', { array: true }) intents!: string[];
  @Column('timestamptz', { name: 'created_at' }) createdAt!: Date;
  @Column('timestamptz', { name: 'expires_at' }) expiresAt!: Date;
  @Column('timestamptz', { name: 'revoked_at', nullable: true }) revokedAt!: Date | null;
  /** The audit actor id of whoever created it (`operator`, a user id). */
  @Column('text', { name: 'created_by' }) createdBy!: string;
}
