import { Queue, UnrecoverableError, Worker, type ConnectionOptions } from 'bullmq';
import { z } from 'zod';
import { errorFields, logger } from '../src/log';
import { WEBHOOK_BACKOFF_TYPE, webhookRetryDelay } from '../src/notify/webhook-backoff';
import { PermanentWebhookError, sendWebhook, WebhookTransports, type WebhookSenderDeps } from '../src/notify/webhook-sender';
import { SubscriberSlots } from '../src/notify/webhook-slots';
import type { Database } from '../src/db/database';
import { markWebhookDeliveriesRequeued, staleWebhookDeliveries } from '../src/notify/webhook-repository';
import { QUEUES } from './names';
import { runWaitingIfPaused } from './paused-endpoint';
import { RESUMABLE_MAX_STALLED } from './resumable';
import { runJob } from './run-job';

/**
 * Queue `send-webhook`: one job per (subscriber, event). Retried with exponential backoff
 * (`WEBHOOK_ATTEMPTS`, `WEBHOOK_BACKOFF_MS`), never sooner than a throttling subscriber's Retry-After
 * (`src/notify/webhook-backoff.ts`); the last failure counts against the subscriber
 * (disabled after `WEBHOOK_DISABLE_AFTER` failed events in a row, and reported). Idempotent: a
 * delivered or failed webhook delivery is not sent again.
 */
export const SendWebhookPayload = z
  .object({
    webhookDeliveryId: z.uuid(),
    /** When the job first waited for its subscriber's in-flight slot (epoch ms; `paused-endpoint.ts`). */
    pausedSince: z.int().min(0).optional(),
  })
  .strict();
/** Payload of a `send-webhook` job. */
export type SendWebhookPayload = z.infer<typeof SendWebhookPayload>;

/** One job per webhook delivery: queuing it twice adds nothing. */
export const webhookJobId = (webhookDeliveryId: string): string => `webhook-${webhookDeliveryId}`;

/** Producer side of `send-webhook`. */
export function createWebhookQueue(connection: ConnectionOptions, prefix: string): Queue<SendWebhookPayload> {
  const queue = new Queue<SendWebhookPayload>(QUEUES.sendWebhook, { connection, prefix });
  queue.on('error', () => undefined);
  return queue;
}

/** Queues webhook deliveries with the retry policy. */
export async function enqueueWebhooks(queue: Queue<SendWebhookPayload>, ids: readonly string[], policy: { attempts: number; backoffMs: number }): Promise<void> {
  if (ids.length === 0) return;
  await queue.addBulk(
    ids.map((webhookDeliveryId) => ({
      name: 'send',
      data: { webhookDeliveryId },
      opts: {
        jobId: webhookJobId(webhookDeliveryId),
        attempts: policy.attempts,
        // Exponential, or the subscriber's Retry-After when it throttles (webhook-backoff.ts).
        backoff: { type: WEBHOOK_BACKOFF_TYPE, delay: policy.backoffMs },
        removeOnComplete: { age: 86_400 },
        removeOnFail: { age: 7 * 86_400 },
      },
    })),
  );
}

/**
 * Queues again webhook deliveries still `queued` in PostgreSQL whose jobs may be lost (the stale
 * sweep). A job of that id that already ended is run once more: one that found its subscriber
 * disabled completed without sending (the row stayed `queued`; enabling the subscriber again marks
 * it `skipped`, and the sender skips one raised before that), and re-adding its id alone did nothing while BullMQ kept the ended job (a day). Its
 * attempt counters start again from zero, so the subscriber gets the full `WEBHOOK_ATTEMPTS`.
 */
export async function requeueWebhooks(queue: Queue<SendWebhookPayload>, ids: readonly string[], policy: { attempts: number; backoffMs: number }): Promise<void> {
  await enqueueWebhooks(queue, ids, policy);
  for (const id of ids) {
    const jobId = webhookJobId(id);
    const state = await queue.getJobState(jobId);
    // Counted afresh: the ended run (often a no-op for a disabled subscriber) must not leave the
    // next run flagged as the last attempt (https://docs.bullmq.io/guide/retrying-failing-jobs).
    if (state === 'completed' || state === 'failed') await (await queue.getJob(jobId))?.retry(state, { resetAttemptsMade: true, resetAttemptsStarted: true });
  }
}

/**
 * The stale sweep of webhook deliveries: queues again the batch of queued deliveries whose job may be
 * lost (`staleWebhookDeliveries`: untouched for `staleAfterMs`, the least recently swept first), then
 * stamps them, so the next sweep moves on to the others (a subscriber's hundreds of deliveries still
 * retrying cannot hold the batch for ever). Returns the ids it queued again.
 */
export async function sweepLostWebhooks(db: Database, queue: Queue<SendWebhookPayload>, staleAfterMs: number, policy: { attempts: number; backoffMs: number }): Promise<string[]> {
  const ids = await staleWebhookDeliveries(db, new Date(Date.now() - staleAfterMs));
  await requeueWebhooks(queue, ids, policy);
  await markWebhookDeliveriesRequeued(db, ids);
  return ids;
}

/**
 * How long, in all, a webhook job may wait for its subscriber's in-flight slot without spending
 * attempts (from its first wait): a day, about its whole retry schedule. Each wait is short (the
 * request in flight ends within `WEBHOOK_TIMEOUT_MS`); past the budget a busy subscriber costs the
 * job an attempt (never counted against the subscriber), so no job waits for ever.
 */
const WEBHOOK_SLOT_WAIT_BUDGET_MS = 86_400_000;

/** The first delay of a job's backoff option (a number is a fixed delay). */
function backoffDelayOf(backoff: number | { delay?: number } | undefined): number {
  return typeof backoff === 'number' ? backoff : (backoff?.delay ?? 0);
}

/** The `send-webhook` worker (its HTTP pools closed by `close`). */
export function startSendWebhookWorker(
  deps: WebhookSenderDeps,
  connection: () => ConnectionOptions,
  prefix: string,
): { worker: Worker<SendWebhookPayload>; close(): Promise<void> } {
  const transports = new WebhookTransports(deps.addressPolicy, deps.proxy);
  const slots = new SubscriberSlots();
  const worker = new Worker<SendWebhookPayload>(
    QUEUES.sendWebhook,
    async (job, token) =>
      runJob(QUEUES.sendWebhook, job, async () => {
        const payload = SendWebhookPayload.parse(job.data);
        try {
          // A subscriber with a request in flight here (webhook-slots.ts): the job waits in the delayed set
          // without spending an attempt, as jobs wait for a paused FHIR endpoint (paused-endpoint.ts).
          const state = await runWaitingIfPaused(job, token, payload, WEBHOOK_SLOT_WAIT_BUDGET_MS, () =>
            sendWebhook(deps, transports, payload.webhookDeliveryId, job.attemptsMade + 1 >= (job.opts.attempts ?? 1), slots),
          );
          return { state };
        } catch (err) {
          if (err instanceof PermanentWebhookError) throw new UnrecoverableError(err.message);
          throw err;
        }
      }),
    // A job whose worker died is sent again (at least once; the delivery id lets subscribers dedupe), not failed unrun.
    {
      connection: connection(),
      prefix,
      concurrency: 4,
      maxStalledCount: RESUMABLE_MAX_STALLED,
      settings: { backoffStrategy: (attemptsMade, _type, err, job) => webhookRetryDelay(attemptsMade, backoffDelayOf(job?.opts.backoff), err) },
    },
  );
  worker.on('failed', (job, err) => logger.warn('webhook job failed', { jobId: job?.id, attempt: job?.attemptsMade, ...errorFields(err) }));
  worker.on('error', () => undefined);
  return { worker, close: () => transports.close() };
}
