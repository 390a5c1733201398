import { Column, Entity, PrimaryColumn } from 'typeorm';

/** The operator's one-time portal login link (platform table); only the token's SHA-256 is kept. */
@Entity('portal_links')
export class PortalLink {
  @PrimaryColumn('uuid') id!: string;
  @Column('text', { name: 'token_hash' }) tokenHash!: string;
  @Column('timestamptz', { name: 'created_at' }) createdAt!: Date;
  @Column('timestamptz', { name: 'expires_at' }) expiresAt!: Date;
  @Column('timestamptz', { name: 'used_at', nullable: true }) usedAt!: Date | null;
}
