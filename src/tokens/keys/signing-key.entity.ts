import { Column, Entity, PrimaryColumn } from 'typeorm';
import type { SigningAlg } from '../../apps/app.entity.js';

/** Platform table: token signing keys; the private key is encrypted at rest. */
@Entity('signing_keys')
export class SigningKey {
  @PrimaryColumn('text') kid!: string;
  @Column('text') alg!: SigningAlg;
  @Column('jsonb', { name: 'public_jwk' }) publicJwk!: Record<string, unknown>;
  @Column('text', { name: 'private_key_enc' }) privateKeyEnc!: string;
  @Column('text') status!: 'next' | 'active' | 'retired';
  @Column('timestamptz', { name: 'created_at' }) createdAt!: Date;
  @Column('timestamptz', { name: 'activated_at', nullable: true }) activatedAt!: Date | null;
  @Column('timestamptz', { name: 'retired_at', nullable: true }) retiredAt!: Date | null;
  @Column('timestamptz', { name: 'expires_at', nullable: true }) expiresAt!: Date | null;
}
