import { Column, Entity, PrimaryColumn } from 'typeorm';

/**
 * A signed head of a tenant's audit chain (migrations/…-audit-checkpoints.ts).
 * Append-only; written by checkpoints.service.ts with raw SQL.
 */
@Entity('audit_checkpoints')
export class AuditCheckpoint {
  @PrimaryColumn('uuid', { name: 'tenant_id' }) tenantId!: string;
  @PrimaryColumn('bigint') seq!: string;
  @Column('text', { name: 'head_hash' }) headHash!: string;
  @Column('timestamptz', { name: 'created_at' }) createdAt!: Date;
  /** Compact JWS (EdDSA) over {tenant_id, seq, hash, time}. */
  @Column('text') signature!: string;
  @Column('text', { name: 'key_id' }) keyId!: string;
}
