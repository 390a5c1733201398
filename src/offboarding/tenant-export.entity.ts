import { Column, Entity, PrimaryColumn } from 'typeorm';

export type TenantExportStatus = 'pending' | 'ready' | 'downloaded' | 'expired' | 'failed';

/**
 * A requested export of one tenant (migrations/…-tenant-exports.ts): its state
 * and, while ready, the sealed archive. Written by exports.service.ts with raw SQL.
 */
@Entity('tenant_exports')
export class TenantExport {
  @PrimaryColumn('uuid', { name: 'tenant_id' }) tenantId!: string;
  @PrimaryColumn('uuid') id!: string;
  @Column('text') status!: TenantExportStatus;
  @Column('text', { name: 'requested_by' }) requestedBy!: string;
  @Column('timestamptz', { name: 'created_at' }) createdAt!: Date;
  @Column('timestamptz', { name: 'expires_at' }) expiresAt!: Date;
  @Column('timestamptz', { name: 'completed_at', nullable: true }) completedAt!: Date | null;
  @Column('timestamptz', { name: 'downloaded_at', nullable: true }) downloadedAt!: Date | null;
  /** gzip'd JSON, base64, sealed with the master key (config/secret-box.ts); NULL once downloaded or expired. */
  @Column('text', { nullable: true }) archive!: string | null;
  @Column('bigint', { name: 'archive_size', nullable: true }) archiveSize!: string | null;
  @Column('text', { nullable: true }) error!: string | null;
}
