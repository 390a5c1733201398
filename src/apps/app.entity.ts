import { Column, Entity, PrimaryColumn } from 'typeorm';

import type { SigningAlg } from '../sessions/token-signer.js';

export type { SigningAlg };

/** Platform table: a main app registered as an OAuth client (client_id = id). */
@Entity('apps')
export class App {
  @PrimaryColumn('uuid') id!: string;
  @Column('text') name!: string;
  @Column('text', { name: 'client_type' }) clientType!: 'confidential' | 'public';
  @Column('text', { name: 'redirect_uris', array: true }) redirectUris!: string[];
  @Column('text', { name: 'post_logout_redirect_uris', array: true }) postLogoutRedirectUris!: string[];
  @Column('text', { name: 'backchannel_logout_uri', nullable: true }) backchannelLogoutUri!: string | null;
  @Column('text', { name: 'token_signing_alg' }) tokenSigningAlg!: SigningAlg;
  /** Where the app receives signed directory events (src/webhooks); null: none. */
  @Column('text', { name: 'webhook_url', nullable: true }) webhookUrl!: string | null;
  /** OIDC Core §4: where an IdP-initiated login is sent to start the app's own login; null: none. */
  @Column('text', { name: 'initiate_login_uri', nullable: true }) initiateLoginUri!: string | null;
  @Column('timestamptz', { name: 'created_at' }) createdAt!: Date;
  @Column('timestamptz', { name: 'updated_at' }) updatedAt!: Date;
  @Column('timestamptz', { name: 'deleted_at', nullable: true }) deletedAt!: Date | null;
}
