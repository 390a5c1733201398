import { Column, Entity, PrimaryColumn } from 'typeorm';

export type ActorType = 'operator' | 'user' | 'scim' | 'system';

/**
 * Append-only, hash-chained per tenant. seq, prevHash and hash are set by the
 * database trigger (migrations/…-initial-schema.ts); the app never computes them.
 */
@Entity('audit_events')
export class AuditEvent {
  @PrimaryColumn('uuid', { name: 'tenant_id' }) tenantId!: string;
  @PrimaryColumn('bigint') seq!: string;
  @Column('uuid') id!: string;
  @Column('timestamptz', { name: 'occurred_at' }) occurredAt!: Date;
  @Column('text', { name: 'actor_type' }) actorType!: ActorType;
  @Column('text', { name: 'actor_id', nullable: true }) actorId!: string | null;
  @Column('text') action!: string;
  @Column('text', { name: 'target_type', nullable: true }) targetType!: string | null;
  @Column('text', { name: 'target_id', nullable: true }) targetId!: string | null;
  @Column('text', { name: 'request_id', nullable: true }) requestId!: string | null;
  @Column('text', { name: 'source_ip', nullable: true }) sourceIp!: string | null;
  @Column('jsonb', { nullable: true }) before!: Record<string, unknown> | null;
  @Column('jsonb', { nullable: true }) after!: Record<string, unknown> | null;
  @Column('text', { name: 'prev_hash' }) prevHash!: string;
  @Column('text') hash!: string;
}
