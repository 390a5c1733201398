import { Column, Entity, PrimaryColumn } from 'typeorm';

export type ActorType = 'operator' | 'user' | 'scim' | 'system' | 'setup_link';

/**
 * Append-only, hash-chained per tenant. seq, prevHash and hash are set by the
 * database, never by the app: NULL while the event is unsealed, then set once
 * by audit_seal (migrations/1767200000000-audit-sealer.ts, issue 13).
 */
@Entity('audit_events')
export class AuditEvent {
  @PrimaryColumn('uuid', { name: 'tenant_id' }) tenantId!: string;
  @PrimaryColumn('uuid') id!: string;
  @Column('bigint', { nullable: true }) seq!: string | null;
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
  @Column('text', { name: 'prev_hash', nullable: true }) prevHash!: string | null;
  @Column('text', { nullable: true }) hash!: string | null;
  /** Issue 12, chain v2 (migrations/1766000000000-…): set by the trigger. */
  @Column('smallint', { name: 'hash_version' }) hashVersion!: number;
  @Column('bytea', { name: 'pii_salt', nullable: true }) piiSalt!: Buffer | null;
  @Column('text', { name: 'content_digest', nullable: true }) contentDigest!: string | null;
  @Column('timestamptz', { name: 'erased_at', nullable: true }) erasedAt!: Date | null;
  /** Issue 13: a global insertion number, the sealing order (docs/security.md §9). */
  @Column('bigint', { name: 'insert_no', nullable: true }) insertNo!: string | null;
}
