import { Column, Entity, PrimaryColumn } from 'typeorm';
import type { CheckpointView } from '../audit/checkpoint-verify.js';

/** 'purged': a deleted tenant whose rows are gone; the row stays as a tombstone (issue 12). */
export type TenantStatus = 'active' | 'suspended' | 'deleted' | 'purged';

/** Platform table: the registry of tenants (no tenant_id, no RLS). */
@Entity('tenants')
export class Tenant {
  @PrimaryColumn('uuid') id!: string;
  @Column('text') slug!: string;
  @Column('text') name!: string;
  @Column('text') status!: TenantStatus;
  @Column('timestamptz', { name: 'created_at' }) createdAt!: Date;
  @Column('timestamptz', { name: 'updated_at' }) updatedAt!: Date;
  @Column('timestamptz', { name: 'deleted_at', nullable: true }) deletedAt!: Date | null;
  @Column('timestamptz', { name: 'purge_after', nullable: true }) purgeAfter!: Date | null;
  @Column('timestamptz', { name: 'purge_forced_at', nullable: true }) purgeForcedAt!: Date | null;
  @Column('timestamptz', { name: 'purged_at', nullable: true }) purgedAt!: Date | null;
  @Column('jsonb', { name: 'final_checkpoint', nullable: true }) finalCheckpoint!: CheckpointView | null;
  /** Issue 15: keep a failed SAML login's raw response, sealed, for at most 24 h (src/sso/login-trace-store.ts). */
  @Column('boolean', { name: 'keep_failed_login_responses', default: false })
  keepFailedLoginResponses!: boolean;
}
