import { Column, Entity, PrimaryColumn } from 'typeorm';

/**
 * Platform table: an app's validated /oauth/authorize request while the person
 * is at discovery and their IdP (the tenant is not known yet). Bound to one
 * browser by the hash of a cookie value; `sessionId` and `completionHash` are
 * set when the login succeeds, `completedAt` when the code is issued (or the
 * login failed).
 */
@Entity('authorization_requests')
export class AuthorizationRequest {
  @PrimaryColumn('uuid') id!: string;
  @Column('uuid', { name: 'app_id' }) appId!: string;
  @Column('text', { name: 'redirect_uri' }) redirectUri!: string;
  @Column('text') scope!: string;
  @Column('text', { nullable: true }) state!: string | null;
  @Column('text', { nullable: true }) nonce!: string | null;
  @Column('text', { name: 'code_challenge', nullable: true }) codeChallenge!: string | null;
  @Column('text', { name: 'code_challenge_method', nullable: true }) codeChallengeMethod!: 'S256' | null;
  @Column('text', { name: 'login_hint', nullable: true }) loginHint!: string | null;
  @Column('text', { nullable: true }) organization!: string | null;
  @Column('uuid', { name: 'connection_id', nullable: true }) connectionId!: string | null;
  @Column('text', { name: 'browser_hash' }) browserHash!: string;
  @Column('uuid', { name: 'session_id', nullable: true }) sessionId!: string | null;
  @Column('text', { name: 'completion_hash', nullable: true }) completionHash!: string | null;
  @Column('timestamptz', { name: 'created_at' }) createdAt!: Date;
  @Column('timestamptz', { name: 'expires_at' }) expiresAt!: Date;
  @Column('timestamptz', { name: 'authenticated_at', nullable: true }) authenticatedAt!: Date | null;
  @Column('timestamptz', { name: 'completed_at', nullable: true }) completedAt!: Date | null;
}
