import { Column, Entity, PrimaryColumn } from 'typeorm';

/** Backs every token issued to the main app; revocation sets revokedAt. */
@Entity('sessions')
export class Session {
  @PrimaryColumn('uuid', { name: 'tenant_id' }) tenantId!: string;
  @PrimaryColumn('uuid') id!: string;
  @Column('uuid', { name: 'user_id' }) userId!: string;
  @Column('uuid', { name: 'app_id', nullable: true }) appId!: string | null;
  @Column('uuid', { name: 'connection_id', nullable: true }) connectionId!: string | null;
  @Column('timestamptz', { name: 'auth_time' }) authTime!: Date;
  @Column('timestamptz', { name: 'created_at' }) createdAt!: Date;
  @Column('timestamptz', { name: 'expires_at' }) expiresAt!: Date;
  @Column('timestamptz', { name: 'revoked_at', nullable: true }) revokedAt!: Date | null;
  @Column('text', { name: 'revoked_reason', nullable: true }) revokedReason!: string | null;
}
