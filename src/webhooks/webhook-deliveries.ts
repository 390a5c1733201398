import type { OutboxTable } from '../db/outbox-deliveries.js';
import { CHANNELS } from '../db/notification-bus.js';

/**
 * The webhook outbox as the operator's delivery list shows it
 * (src/admin/deliveries.router.ts): the event's id and type, never its
 * payload (it carries people's names and emails).
 */
export const WEBHOOK_DELIVERIES: OutboxTable = {
  table: 'webhook_outbox',
  columns: { event_id: 'event_id', event_type: 'event_type' },
  channel: CHANNELS.webhookOutbox,
};
