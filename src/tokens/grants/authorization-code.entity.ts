import { Column, Entity, PrimaryColumn } from 'typeorm';

/** A single-use authorization code (only its SHA-256 is stored), tied to its session. */
@Entity('authorization_codes')
export class AuthorizationCode {
  @PrimaryColumn('uuid', { name: 'tenant_id' }) tenantId!: string;
  @PrimaryColumn('uuid') id!: string;
  @Column('uuid', { name: 'session_id' }) sessionId!: string;
  @Column('uuid', { name: 'app_id' }) appId!: string;
  @Column('text', { name: 'code_hash' }) codeHash!: string;
  @Column('text', { name: 'redirect_uri' }) redirectUri!: string;
  @Column('text') scope!: string;
  @Column('text', { nullable: true }) nonce!: string | null;
  @Column('text', { name: 'code_challenge', nullable: true }) codeChallenge!: string | null;
  @Column('text', { name: 'code_challenge_method', nullable: true }) codeChallengeMethod!: 'S256' | null;
  @Column('timestamptz', { name: 'created_at' }) createdAt!: Date;
  @Column('timestamptz', { name: 'expires_at' }) expiresAt!: Date;
  @Column('timestamptz', { name: 'used_at', nullable: true }) usedAt!: Date | null;
}
