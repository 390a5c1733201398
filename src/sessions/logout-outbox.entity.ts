import { Column, Entity, PrimaryColumn } from 'typeorm';

export type LogoutOutboxStatus = 'pending' | 'delivered' | 'failed';

/**
 * One OIDC Back-Channel Logout to deliver: written in the transaction that
 * revoked the session, kept until delivered or given up (transactional outbox).
 */
@Entity('logout_outbox')
export class LogoutOutboxEntry {
  @PrimaryColumn('uuid', { name: 'tenant_id' }) tenantId!: string;
  @PrimaryColumn('uuid') id!: string;
  @Column('uuid', { name: 'session_id' }) sessionId!: string;
  @Column('uuid', { name: 'user_id' }) userId!: string;
  @Column('uuid', { name: 'app_id' }) appId!: string;
  @Column('text') status!: LogoutOutboxStatus;
  @Column('integer') attempts!: number;
  @Column('timestamptz', { name: 'next_attempt_at' }) nextAttemptAt!: Date;
  @Column('text', { name: 'last_error', nullable: true }) lastError!: string | null;
  @Column('timestamptz', { name: 'created_at' }) createdAt!: Date;
  @Column('timestamptz', { name: 'delivered_at', nullable: true }) deliveredAt!: Date | null;
}
