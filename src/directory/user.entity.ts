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
}
