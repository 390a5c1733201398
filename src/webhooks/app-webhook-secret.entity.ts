import { Column, Entity, PrimaryColumn } from 'typeorm';

/**
 * Platform table: an app's webhook signing secret, sealed with the master key
 * (src/config/secret-box.ts) — Gatehouse signs with it, so it cannot be hashed.
 */
@Entity('app_webhook_secrets')
export class AppWebhookSecret {
  @PrimaryColumn('uuid') id!: string;
  @Column('uuid', { name: 'app_id' }) appId!: string;
  @Column('text', { name: 'secret_sealed' }) secretSealed!: string;
  @Column('timestamptz', { name: 'created_at' }) createdAt!: Date;
  /** null: valid until rotated. */
  @Column('timestamptz', { name: 'expires_at', nullable: true }) expiresAt!: Date | null;
}
