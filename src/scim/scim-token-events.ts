import type { EntityManager } from 'typeorm';
import { CHANNELS, notifyInTransaction } from '../db/notification-bus.js';

/**
 * Call in the transaction that revokes a SCIM token (its `ScimTokenRevokedHook`):
 * at commit every node drops the token from its verification cache
 * (scim-auth.ts), so the next request with it is refused everywhere.
 */
export async function notifyScimTokenRevoked(em: EntityManager, tokenId: string): Promise<void> {
  await notifyInTransaction(em, CHANNELS.scimTokenRevoked, tokenId);
}
