import { Column, Entity, PrimaryColumn } from 'typeorm';

@Entity('domains')
export class Domain {
  @PrimaryColumn('uuid', { name: 'tenant_id' }) tenantId!: string;
  @PrimaryColumn('uuid') id!: string;
  @Column('text') domain!: string;
  @Column('text', { name: 'verification_token' }) verificationToken!: string;
  @Column('timestamptz', { name: 'verified_at', nullable: true }) verifiedAt!: Date | null;
  @Column('text', { name: 'verification_method', nullable: true }) verificationMethod!:
    'dns' | 'manual' | null;
  @Column('timestamptz', { name: 'created_at' }) createdAt!: Date;
}
