import { Queue, Worker, type ConnectionOptions } from 'bullmq';
import type { Database } from '../src/db/database';
import { staleDeliverySweep } from '../src/delivery/delivery-repository';
import { errorFields, logger } from '../src/log';
import type { WorkDispatch } from '../src/notify/events';
import { drainOutbox, OutboxPruner } from '../src/notify/outbox-processor';
import { keepJobScheduler } from './keep-scheduled';
import { QUEUES } from './names';
import { createWebhookQueue, enqueueWebhooks, sweepLostWebhooks } from './send-webhook';
import { runJob } from './run-job';

/**
 * Queue `notify`: drains the Postgres outbox into case-manager notifications and webhook jobs.
 * Runs on a schedule (`NOTIFY_POLL_MS`) and whenever a producer kicks it after a commit. Each run
 * also re-queues deliveries and webhook deliveries whose job was lost (job ids are derived, so a
 * job that still exists is not added twice), and at most once an hour deletes finished outbox rows
 * older than `NOTIFY_OUTBOX_RETENTION_DAYS` (`OutboxPruner`). Idempotent: events are processed once (SKIP LOCKED,
 * processed_at), notifications are unique per event.
 */
export interface NotifyDeps {
  readonly db: Database;
  readonly dispatch: WorkDispatch;
  readonly webhooks: { attempts: number; backoffMs: number };
  /** A queued delivery untouched for this long is re-added (its job may be lost). */
  readonly staleAfterMs: number;
  /** Finished outbox rows older than this many days are deleted (`NOTIFY_OUTBOX_RETENTION_DAYS`). */
  readonly outboxRetentionDays: number;
}

/** The `notify` worker and its schedule. */
export function startNotifyWorker(deps: NotifyDeps, connection: () => ConnectionOptions, prefix: string, everyMs: number) {
  const queue = new Queue(QUEUES.notify, { connection: connection(), prefix });
  queue.on('error', () => undefined);
  const webhookQueue = createWebhookQueue(connection(), prefix);
  const pruner = new OutboxPruner({ retentionDays: deps.outboxRetentionDays });
  const sweepStaleDeliveries = staleDeliverySweep();
  const worker = new Worker(
    QUEUES.notify,
    async (job) =>
      runJob(QUEUES.notify, job, async () => {
        let events = 0;
        for (;;) {
          const drained = await drainOutbox(deps.db);
          events += drained.events;
          await enqueueWebhooks(webhookQueue, drained.webhookDeliveries, deps.webhooks);
          if (drained.events === 0) break;
        }
        if (job.name === 'drain' && job.repeatJobKey) {
          await sweepLostWebhooks(deps.db, webhookQueue, deps.staleAfterMs, deps.webhooks);
          for (const d of await sweepStaleDeliveries(deps.db, new Date(Date.now() - deps.staleAfterMs))) await deps.dispatch.deliver(d.id, d.requeues);
          await pruner.pruneIfDue(deps.db);
        }
        return { events };
      }),
    { connection: connection(), prefix, concurrency: 1 },
  );
  worker.on('failed', (_job, err) => logger.warn('notify job failed', errorFields(err)));
  worker.on('error', () => undefined);
  keepJobScheduler(queue, 'notify-schedule', everyMs, { name: 'drain', data: {}, opts: { removeOnComplete: true, removeOnFail: 100 } }, worker);
  return { worker, close: async () => Promise.all([queue.close(), webhookQueue.close()]).then(() => undefined) };
}
