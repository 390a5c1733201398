import { Column, Entity, PrimaryColumn } from 'typeorm';

/** active; suspended (SCIM active=false: kept, cannot log in); deleted (SCIM DELETE). */
export type UserStatus = 'active' | 'suspended' | 'deleted';

@Entity('users')
export class User {
  @PrimaryColumn('uuid', { name: 'tenant_id' }) tenantId!: string;
  @PrimaryColumn('uuid') id!: string;
  @Column('text', { name: 'user_name' }) userName!: string;
  @Column('text', { nullable: true }) email!: string | null;
  @Column('boolean', { name: 'email_verified' }) emailVerified!: boolean;
  @Column('text', { name: 'given_name', nullable: true }) givenName!: string | null;
  @Column('text', { name: 'family_name', nullable: true }) familyName!: string | null;
  @Column('text', { name: 'display_name', nullable: true }) displayName!: string | null;
  @Column('text', { name: 'external_id', nullable: true }) externalId!: string | null;
  @Column('text') status!: UserStatus;
  /** Further SCIM attributes (enterprise extension, phone numbers, …). */
  @Column('jsonb') attributes!: Record<string, unknown>;
  @Column('integer') version!: number;
  @Column('timestamptz', { name: 'created_at' }) createdAt!: Date;
  @Column('timestamptz', { name: 'updated_at' }) updatedAt!: Date;
  // Lowered copies PostgreSQL computes (GENERATED … STORED), compared in SQL only: under row-level
  // security an index on lower(…) is never probed, one on a stored key is (docs/architecture.md).
  @Column({ type: 'text', name: 'user_name_key', insert: false, update: false, select: false })
  readonly userNameKey?: string;
  @Column({ type: 'text', name: 'email_key', nullable: true, insert: false, update: false, select: false })
  readonly emailKey?: string | null;
  @Column({
    type: 'text',
    name: 'display_name_key',
    nullable: true,
    insert: false,
    update: false,
    select: false,
  })
  readonly displayNameKey?: string | null;
}
