import { Column, Entity, PrimaryColumn } from 'typeorm';

/** Links a user to (connection, IdP subject); logins match on it first. */
@Entity('identities')
export class Identity {
  @PrimaryColumn('uuid', { name: 'tenant_id' }) tenantId!: string;
  @PrimaryColumn('uuid') id!: string;
  @Column('uuid', { name: 'user_id' }) userId!: string;
  @Column('uuid', { name: 'connection_id' }) connectionId!: string;
  @Column('text') subject!: string;
  @Column('timestamptz', { name: 'created_at' }) createdAt!: Date;
  @Column('timestamptz', { name: 'last_login_at', nullable: true }) lastLoginAt!: Date | null;
}
