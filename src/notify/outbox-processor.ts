/**
 * Drains the outbox: each event becomes a case-manager notification and one webhook delivery per
 * active subscriber of its type that had subscribed when the event was raised, in one transaction
 * with marking the event processed (rows locked with SKIP LOCKED, so several workers share the work
 * and none handles an event twice). Webhook jobs are queued after the commit; a sweep re-queues any
 * that were lost.
 * @packageDocumentation
 */
import { randomUUID } from 'node:crypto';
import type { Database } from '../db/database';
import { eventMessage } from './events';
import { insertNotification } from './notification-repository';
import { staleWebhookDeliveries, subscribersOf } from './webhook-repository';

interface OutboxRow {
  id: number | string;
  type: string;
  case_id: string | null;
  data: Record<string, unknown>;
  created_at: Date;
}

/** Processes up to `batch` pending events; returns the webhook deliveries to queue. */
export async function drainOutbox(db: Database, batch = 100): Promise<{ events: number; webhookDeliveries: string[] }> {
  return db.transaction(async (tx) => {
    const { rows } = await tx.query<OutboxRow>(
      'SELECT id, type, case_id, data, created_at FROM outbox WHERE processed_at IS NULL ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED',
      [batch],
    );
    const webhookDeliveries: string[] = [];
    for (const event of rows) {
      const outboxId = Number(event.id);
      await insertNotification(tx, { outboxId, type: event.type, caseId: event.case_id, message: eventMessage(event.type, event.data), data: event.data });
      for (const webhookId of await subscribersOf(tx, event.type, event.created_at)) {
        const { rows: created } = await tx.query<{ id: string }>(
          `INSERT INTO webhook_deliveries (id, webhook_id, outbox_id, state) VALUES ($1, $2, $3, 'queued')
           ON CONFLICT (webhook_id, outbox_id) DO NOTHING RETURNING id`,
          [randomUUID(), webhookId, outboxId],
        );
        if (created[0]) webhookDeliveries.push(created[0].id);
      }
      await tx.query('UPDATE outbox SET processed_at = now() WHERE id = $1', [outboxId]);
    }
    return { events: rows.length, webhookDeliveries };
  });
}

/** Webhook deliveries still queued after `olderThanMs` (their job was lost): to be queued again. */
export function lostWebhookDeliveries(db: Database, olderThanMs: number): Promise<string[]> {
  return staleWebhookDeliveries(db, new Date(Date.now() - olderThanMs));
}
