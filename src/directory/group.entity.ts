import { Column, Entity, PrimaryColumn } from 'typeorm';

@Entity('groups')
export class Group {
  @PrimaryColumn('uuid', { name: 'tenant_id' }) tenantId!: string;
  @PrimaryColumn('uuid') id!: string;
  @Column('text', { name: 'display_name' }) displayName!: string;
  @Column('text', { name: 'external_id', nullable: true }) externalId!: string | null;
  @Column('text') source!: 'scim' | 'idp';
  @Column('integer') version!: number;
  @Column('timestamptz', { name: 'created_at' }) createdAt!: Date;
  @Column('timestamptz', { name: 'updated_at' }) updatedAt!: Date;
  /** lower(display_name), computed by PostgreSQL: the RLS-safe lookup key (see user.entity.ts). */
  @Column({ type: 'text', name: 'display_name_key', insert: false, update: false, select: false })
  readonly displayNameKey?: string;
}
