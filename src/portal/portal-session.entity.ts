import { Column, Entity, PrimaryColumn } from 'typeorm';

/** A portal browser session (platform table): the cookie holds a random value, the row its SHA-256. */
@Entity('portal_sessions')
export class PortalSession {
  @PrimaryColumn('text', { name: 'id_hash' }) idHash!: string;
  @Column('text') kind!: 'operator' | 'setup_link';
  /** null for the operator (every tenant). */
  @Column('uuid', { name: 'tenant_scope', nullable: true }) tenantId!: string | null;
  @Column('uuid', { name: 'setup_link_id', nullable: true }) setupLinkId!: string | null;
  @Column('text', { array: true }) intents!: string[];
  @Column('timestamptz', { name: 'created_at' }) createdAt!: Date;
  @Column('timestamptz', { name: 'expires_at' }) expiresAt!: Date;
  /** The synchronizer CSRF token every form of this session carries. */
  @Column('text', { name: 'csrf_secret' }) csrfSecret!: string;
}
