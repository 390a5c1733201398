import { Column, Entity, PrimaryColumn } from 'typeorm';

/** A portal browser session (platform table): the cookie holds a random value, the row its SHA-256. */
@Entity('portal_sessions')
export class PortalSession {
  @PrimaryColumn('text', { name: 'id_hash' }) idHash!: string;
  @Column('text') kind!: 'operator' | 'setup_link' | 'tenant_admin';
  /** null for the operator (every tenant). */
  @Column('uuid', { name: 'tenant_scope', nullable: true }) tenantId!: string | null;
  @Column('uuid', { name: 'setup_link_id', nullable: true }) setupLinkId!: string | null;
  /** tenant_admin: the Gatehouse session the sign-in created; every request asks liveSession about it. */
  @Column('uuid', { name: 'gatehouse_session_id', nullable: true }) gatehouseSessionId!: string | null;
  /** tenant_admin: the person signed in (the ID token's `sub`). */
  @Column('uuid', { name: 'user_id', nullable: true }) userId!: string | null;
  /** tenant_admin: the ID token, sealed (portal-sessions.ts), kept only as RP-Initiated Logout's `id_token_hint`. */
  @Column('text', { name: 'id_token', nullable: true }) idToken!: string | null;
  @Column('text', { array: true }) intents!: string[];
  @Column('timestamptz', { name: 'created_at' }) createdAt!: Date;
  @Column('timestamptz', { name: 'expires_at' }) expiresAt!: Date;
  /** The synchronizer CSRF token every form of this session carries. */
  @Column('text', { name: 'csrf_secret' }) csrfSecret!: string;
}
