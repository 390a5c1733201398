import { Column, Entity, PrimaryColumn } from 'typeorm';

/**
 * Platform table: one rate limiter's hit count for one key (a SHA-256 digest
 * of an address, client id or tenant id) in its current fixed window. Written
 * only by src/http/rate-limit-store.ts, in SQL; the entity exists so that
 * entities and migrations stay comparable.
 */
@Entity('rate_limit_counters')
export class RateLimitCounter {
  @PrimaryColumn('text') limiter!: string;
  @PrimaryColumn('text') key!: string;
  @Column('integer') hits!: number;
  @Column('timestamptz', { name: 'reset_at' }) resetAt!: Date;
}
