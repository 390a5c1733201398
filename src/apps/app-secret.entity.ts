import { Column, Entity, PrimaryColumn } from 'typeorm';

/** An app's client secret, argon2id-hashed; several overlap during rotation. */
@Entity('app_secrets')
export class AppSecret {
  @PrimaryColumn('uuid') id!: string;
  @Column('uuid', { name: 'app_id' }) appId!: string;
  @Column('text', { name: 'secret_hash' }) secretHash!: string;
  @Column('timestamptz', { name: 'created_at' }) createdAt!: Date;
  @Column('timestamptz', { name: 'expires_at', nullable: true }) expiresAt!: Date | null;
}
