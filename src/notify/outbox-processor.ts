/**
 * Drains the outbox: each event becomes a case-manager notification and one webhook delivery per
 * active subscriber of its type that was enabled (subscribed, or enabled again) when the event was
 * raised, in one transaction with marking the event processed (rows locked with SKIP LOCKED, so
 * several workers share the work and none handles an event twice). Webhook jobs are queued after the
 * commit; a sweep re-queues any that were lost.
 *
 * Prunes it too ({@link OutboxPruner}, asked by the notify worker after its scheduled drains, at most
 * once an hour per process): finished rows older than the retention (`NOTIFY_OUTBOX_RETENTION_DAYS`)
 * are deleted in bounded batches, never a pending event or a delivery still queued; case-manager
 * notifications stay.
 * @packageDocumentation
 */
import { randomUUID } from 'node:crypto';
import type { Database, Queryable } from '../db/database';
import { errorFields, logger } from '../log';
import { eventMessage } from './events';
import { insertNotification } from './notification-repository';
import { lockSubscribersShared, subscribersOf } from './webhook-repository';

interface OutboxRow {
  id: number | string;
  type: string;
  case_id: string | null;
  data: Record<string, unknown>;
}

/**
 * Processes up to `batch` pending events; returns the webhook deliveries to queue. It first takes
 * the subscriber-enable lock shared ({@link lockSubscribersShared}), before reading the outbox: drains
 * run beside each other, but not beside the creation or the enable of a subscriber still committing,
 * so a subscriber is never left without an event raised from its `enabled_at`.
 */
export async function drainOutbox(db: Database, batch = 100): Promise<{ events: number; webhookDeliveries: string[] }> {
  return db.transaction(async (tx) => {
    await lockSubscribersShared(tx);
    const { rows } = await tx.query<OutboxRow>(
      'SELECT id, type, case_id, data FROM outbox WHERE processed_at IS NULL ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED',
      [batch],
    );
    const webhookDeliveries: string[] = [];
    for (const event of rows) {
      const outboxId = Number(event.id);
      await insertNotification(tx, { outboxId, type: event.type, caseId: event.case_id, message: eventMessage(event.type, event.data), data: event.data });
      for (const webhookId of await subscribersOf(tx, event.type, outboxId)) {
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

/** How many finished rows a prune deleted. */
export interface PrunedOutbox {
  /** Outbox events processed before the retention, with no webhook delivery left. */
  readonly events: number;
  /** Webhook deliveries delivered, failed or skipped before the retention. */
  readonly webhookDeliveries: number;
}

/** What a prune deletes, and in what steps. */
export interface OutboxPruneOptions {
  /** Finished rows older than this many days are deleted (`NOTIFY_OUTBOX_RETENTION_DAYS`). */
  readonly retentionDays: number;
  /** Rows per DELETE (each its own short statement); default {@link PRUNE_BATCH_SIZE}. */
  readonly batchSize?: number;
  /**
   * Most DELETEs per table in one prune (default {@link PRUNE_MAX_BATCHES}): a large backlog, as at
   * the first prune after an upgrade, is spread over several prunes.
   */
  readonly maxBatches?: number;
}

/** Rows deleted per statement by default. */
export const PRUNE_BATCH_SIZE = 5000;
/** Statements per table per prune by default (500,000 rows). */
export const PRUNE_MAX_BATCHES = 100;
/** How often the notify worker prunes by default: once an hour. */
export const PRUNE_EVERY_MS = 3_600_000;

/** Finished webhook deliveries older than the retention ($1 days), $2 at most. */
const DELETE_FINISHED_DELIVERIES = `DELETE FROM webhook_deliveries WHERE ctid IN (
  SELECT ctid FROM webhook_deliveries
  WHERE state IN ('delivered', 'failed', 'skipped') AND finished_at < now() - make_interval(days => $1::int)
  LIMIT $2)`;

/**
 * Events processed before the retention ($1 days) with no webhook delivery left, $2 at most: a
 * delivery still queued (retrying), or finished within the retention, keeps its event. Notifications
 * of a deleted event stay (their outbox_id becomes null).
 */
const DELETE_PROCESSED_EVENTS = `DELETE FROM outbox WHERE ctid IN (
  SELECT o.ctid FROM outbox o
  WHERE o.processed_at < now() - make_interval(days => $1::int)
    AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.outbox_id = o.id)
  LIMIT $2)`;

/** Runs a batched DELETE until a batch deletes fewer rows than its size, or `maxBatches` ran; returns the rows deleted. */
async function deleteInBatches(db: Queryable, sql: string, options: OutboxPruneOptions): Promise<number> {
  const batchSize = options.batchSize ?? PRUNE_BATCH_SIZE;
  const maxBatches = options.maxBatches ?? PRUNE_MAX_BATCHES;
  let deleted = 0;
  for (let batch = 0; batch < maxBatches; batch++) {
    const { rowCount } = await db.query(sql, [options.retentionDays, batchSize]);
    deleted += rowCount;
    if (rowCount < batchSize) break;
  }
  return deleted;
}

/**
 * Deletes the outbox rows that are done and older than `retentionDays`: webhook deliveries
 * finished (delivered, failed, skipped) before it first, then events processed before it that have
 * no delivery left. Never an event still to be processed, nor a delivery still queued, nor its event.
 * Each batch is one statement (`ctid IN (… LIMIT n)`), so locks are short.
 * @param db - The store (not inside a transaction: each batch commits on its own).
 * @param options - Retention and batching.
 */
export async function pruneFinishedOutbox(db: Queryable, options: OutboxPruneOptions): Promise<PrunedOutbox> {
  const webhookDeliveries = await deleteInBatches(db, DELETE_FINISHED_DELIVERIES, options);
  const events = await deleteInBatches(db, DELETE_PROCESSED_EVENTS, options);
  return { events, webhookDeliveries };
}

/**
 * Prunes the outbox at most once per `everyMs` in this process ({@link pruneFinishedOutbox}); the
 * notify worker asks it after each scheduled drain. Logs how many rows were pruned (counts only).
 */
export class OutboxPruner {
  private lastPrunedAt: number | undefined;
  private readonly everyMs: number;
  private readonly now: () => number;

  /**
   * @param options - Retention and batching; `everyMs` (default {@link PRUNE_EVERY_MS}) between prunes;
   *   `now` the clock (tests).
   */
  constructor(private readonly options: OutboxPruneOptions & { readonly everyMs?: number; readonly now?: () => number }) {
    this.everyMs = options.everyMs ?? PRUNE_EVERY_MS;
    this.now = options.now ?? Date.now;
  }

  /**
   * Prunes when the last prune is `everyMs` old (or there was none). A failed prune is logged and
   * tried again at the next period, without failing the drain. @returns what was pruned, or
   * undefined when it was not due or failed
   */
  async pruneIfDue(db: Queryable): Promise<PrunedOutbox | undefined> {
    const now = this.now();
    if (this.lastPrunedAt !== undefined && now - this.lastPrunedAt < this.everyMs) return undefined;
    this.lastPrunedAt = now;
    try {
      const pruned = await pruneFinishedOutbox(db, this.options);
      logger.info('outbox pruned', { event: 'outbox.pruned', counts: { events: pruned.events, webhookDeliveries: pruned.webhookDeliveries } });
      return pruned;
    } catch (err) {
      logger.warn('outbox prune failed', { event: 'outbox.prune_failed', ...errorFields(err) });
      return undefined;
    }
  }
}
