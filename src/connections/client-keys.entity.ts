import { Column, Entity, PrimaryColumn } from 'typeorm';
import type { JWK } from 'jose';

/** Which key of a connection signs client assertions (current), is published ahead (next), or was replaced. */
export type ClientKeyStatus = 'current' | 'next' | 'previous';
export type ClientKeyAlg = 'RS256' | 'ES256';

/**
 * A key pair Gatehouse authenticates with at one connection's token endpoint
 * (private_key_jwt, RFC 7523 §2.2; migrations/1766400000000). The private
 * key is PKCS#8 sealed under the master key (config/secret-box.ts) with the
 * tenant, connection and kid as associated data. The certificate
 * (migrations/1766700000000) is a self-signed X.509 wrapper of the public key
 * for IdPs that take keys only as certificates (Entra ID); null for a key made
 * before it, until one is made on first need.
 */
@Entity('connection_client_keys')
export class ConnectionClientKey {
  @PrimaryColumn('uuid', { name: 'tenant_id' }) tenantId!: string;
  @PrimaryColumn('uuid') id!: string;
  @Column('uuid', { name: 'connection_id' }) connectionId!: string;
  @Column('text') kid!: string;
  @Column('text') alg!: ClientKeyAlg;
  @Column('jsonb', { name: 'public_jwk' }) publicJwk!: JWK;
  @Column('text', { name: 'private_key_enc' }) privateKeyEnc!: string;
  @Column('text', { name: 'certificate_pem', nullable: true }) certificatePem!: string | null;
  @Column('text') status!: ClientKeyStatus;
  @Column('timestamptz', { name: 'created_at' }) createdAt!: Date;
  @Column('timestamptz', { name: 'activated_at', nullable: true }) activatedAt!: Date | null;
}
