import { Column, Entity, PrimaryColumn } from 'typeorm';

/** An assertion ID already accepted (replay cache), kept until the assertion expires. */
@Entity('saml_assertion_ids')
export class SamlAssertionId {
  @PrimaryColumn('uuid', { name: 'tenant_id' }) tenantId!: string;
  @PrimaryColumn('uuid', { name: 'connection_id' }) connectionId!: string;
  @PrimaryColumn('text', { name: 'assertion_id' }) assertionId!: string;
  @Column('timestamptz', { name: 'created_at' }) createdAt!: Date;
  @Column('timestamptz', { name: 'expires_at' }) expiresAt!: Date;
}
