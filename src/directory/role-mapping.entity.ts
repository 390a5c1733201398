import { Column, Entity, PrimaryColumn } from 'typeorm';

/** IdP/SCIM group (matched by display name or external id) -> role name. */
@Entity('role_mappings')
export class RoleMapping {
  @PrimaryColumn('uuid', { name: 'tenant_id' }) tenantId!: string;
  @PrimaryColumn('uuid') id!: string;
  @Column('text', { name: 'group_attribute' }) groupAttribute!: 'display_name' | 'external_id';
  @Column('text', { name: 'group_value' }) groupValue!: string;
  @Column('text') role!: string;
  @Column('timestamptz', { name: 'created_at' }) createdAt!: Date;
}
