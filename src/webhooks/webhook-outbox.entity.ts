import { Column, Entity, PrimaryColumn } from 'typeorm';

export type WebhookOutboxStatus = 'pending' | 'delivered' | 'failed';

/**
 * One webhook event to deliver to one app: written in the transaction of the
 * directory change, kept until delivered or given up (transactional outbox).
 */
@Entity('webhook_outbox')
export class WebhookOutboxEntry {
  @PrimaryColumn('uuid', { name: 'tenant_id' }) tenantId!: string;
  @PrimaryColumn('uuid') id!: string;
  @Column('uuid', { name: 'event_id' }) eventId!: string;
  @Column('text', { name: 'event_type' }) eventType!: string;
  @Column('uuid', { name: 'app_id' }) appId!: string;
  /** The event exactly as POSTed: `{ id, type, created_at, tenant_id, data }`. */
  @Column('jsonb') payload!: Record<string, unknown>;
  @Column('text') status!: WebhookOutboxStatus;
  @Column('integer') attempts!: number;
  @Column('timestamptz', { name: 'next_attempt_at' }) nextAttemptAt!: Date;
  @Column('text', { name: 'last_error', nullable: true }) lastError!: string | null;
  @Column('timestamptz', { name: 'created_at' }) createdAt!: Date;
  @Column('timestamptz', { name: 'delivered_at', nullable: true }) deliveredAt!: Date | null;
}
