import { Column, Entity, PrimaryColumn } from 'typeorm';

export type ScimLoggedResourceType = 'User' | 'Group';

/**
 * One authenticated SCIM request of a tenant, for support ("what did our IdP
 * send, and what did Gatehouse answer?"). Never a body, a query string or a
 * path as sent: `path` is a template (`/Users/{id}`), the id is `resourceId`.
 */
@Entity('scim_requests')
export class ScimRequest {
  @PrimaryColumn('uuid', { name: 'tenant_id' }) tenantId!: string;
  @PrimaryColumn('uuid') id!: string;
  @Column('timestamptz', { name: 'created_at' }) createdAt!: Date;
  /** Fixed when written: created_at plus GATEHOUSE_SCIM_REQUEST_LOG_DAYS. */
  @Column('timestamptz', { name: 'expires_at' }) expiresAt!: Date;
  @Column('text') method!: string;
  @Column('text') path!: string;
  @Column('integer') status!: number;
  @Column('text', { name: 'scim_type', nullable: true }) scimType!: string | null;
  @Column('integer', { name: 'duration_ms' }) durationMs!: number;
  @Column('text', { name: 'resource_type', nullable: true }) resourceType!: ScimLoggedResourceType | null;
  @Column('uuid', { name: 'resource_id', nullable: true }) resourceId!: string | null;
  @Column('uuid', { name: 'scim_token_id' }) scimTokenId!: string;
  @Column('text', { name: 'request_id' }) requestId!: string;
}
