import { Column, Entity, PrimaryColumn } from 'typeorm';
import type { TraceKind, TraceProfile, TraceStep } from './login-trace-steps.js';

/**
 * One sign-in through a connection, as support reads it (issue 15;
 * src/sso/login-trace-store.ts writes and reads it). Never a token or secret;
 * a failed SAML login's raw response only sealed, and only when the tenant
 * opted in.
 */
@Entity('login_traces')
export class LoginTrace {
  @PrimaryColumn('uuid', { name: 'tenant_id' }) tenantId!: string;
  @PrimaryColumn('uuid') id!: string;
  @Column('uuid', { name: 'connection_id' }) connectionId!: string;
  /** The request id the error page shows as support reference. */
  @Column('text', { name: 'support_ref' }) supportRef!: string;
  @Column('text') protocol!: 'saml' | 'oidc';
  @Column('text') kind!: TraceKind;
  /** `success`, or the reason code (src/sso/reasons.ts). */
  @Column('text') outcome!: string;
  @Column('jsonb') steps!: TraceStep[];
  @Column('jsonb', { nullable: true }) profile!: TraceProfile | null;
  @Column('text', { array: true }) roles!: string[];
  @Column('uuid', { name: 'user_id', nullable: true }) userId!: string | null;
  @Column('timestamptz', { name: 'created_at' }) createdAt!: Date;
  /** Fixed when written: created_at plus GATEHOUSE_LOGIN_TRACE_RETENTION. */
  @Column('timestamptz', { name: 'expires_at' }) expiresAt!: Date;
  @Column('text', { name: 'raw_response_enc', nullable: true }) rawResponseEnc!: string | null;
  @Column('timestamptz', { name: 'raw_response_expires_at', nullable: true })
  rawResponseExpiresAt!: Date | null;
}
