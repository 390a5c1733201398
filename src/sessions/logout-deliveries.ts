import type { OutboxTable } from '../db/outbox-deliveries.js';
import { CHANNELS } from '../db/notification-bus.js';

/** The back-channel logout outbox as the operator's delivery list shows it (src/admin/deliveries.router.ts). */
export const LOGOUT_DELIVERIES: OutboxTable = {
  table: 'logout_outbox',
  columns: { session_id: 'session_id', user_id: 'user_id' },
  channel: CHANNELS.logoutOutbox,
};
