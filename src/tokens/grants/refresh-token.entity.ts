import { Column, Entity, PrimaryColumn } from 'typeorm';

/** An opaque, rotating refresh token (only its SHA-256 is stored), tied to its session. */
@Entity('refresh_tokens')
export class RefreshToken {
  @PrimaryColumn('uuid', { name: 'tenant_id' }) tenantId!: string;
  @PrimaryColumn('uuid') id!: string;
  @Column('uuid', { name: 'session_id' }) sessionId!: string;
  @Column('uuid', { name: 'app_id' }) appId!: string;
  @Column('text', { name: 'token_hash' }) tokenHash!: string;
  @Column('text') scope!: string;
  @Column('timestamptz', { name: 'created_at' }) createdAt!: Date;
  @Column('timestamptz', { name: 'expires_at' }) expiresAt!: Date;
  @Column('timestamptz', { name: 'used_at', nullable: true }) usedAt!: Date | null;
}
