import { Queue, UnrecoverableError, Worker, type ConnectionOptions } from 'bullmq';
import { z } from 'zod';
import { failedWaitingForOlderVersion, PermanentDeliveryError, runDelivery, type DeliveryDeps } from '../src/delivery/delivery-runner';
import { errorFields, logger } from '../src/log';
import type { WorkDispatch } from '../src/notify/events';
import { QUEUES } from './names';
import { runWaitingIfPaused } from './paused-endpoint';
import { resumableJobLock } from './resumable';
import { runJob } from './run-job';

/**
 * Queue `deliver-report`: one job per delivery (a signed opinion version to one recipient EHR).
 * Retried with exponential backoff (`DELIVERY_ATTEMPTS`, `DELIVERY_BACKOFF_MS`); the last failure
 * marks the delivery failed and alerts the case manager. A recipient paused by its circuit breaker
 * (repeated failures, or a `Retry-After` longer than a request may wait) is waited for without
 * spending attempts, as pulls do (paused-endpoint.ts, within `DELIVERY_MAX_PAUSE_WAIT_MS`): the backoff's
 * retries would all end inside the pause and fail a delivery whose recipient merely asked to wait.
 * Idempotent and crash-safe: see src/delivery/delivery-runner.ts (attempt recorded first, search by
 * identifier, conditional creates).
 */
export const DeliverReportPayload = z
  .object({ deliveryId: z.uuid(), /** When the job first waited for its paused recipient (epoch ms). */ pausedSince: z.int().min(0).optional() })
  .strict();
/** Payload of a `deliver-report` job. */
export type DeliverReportPayload = z.infer<typeof DeliverReportPayload>;

/** Job ids derive from the delivery and how often a case manager re-queued it: adding twice adds nothing. */
export const deliveryJobId = (deliveryId: string, requeues: number): string => `deliver-${deliveryId}-${requeues}`;

/** Retry policy of delivery jobs (`DELIVERY_ATTEMPTS`, `DELIVERY_BACKOFF_MS`). */
export interface DeliveryPolicy {
  readonly attempts: number;
  readonly backoffMs: number;
}

/** Producer side (API and workers): the {@link WorkDispatch} of deliveries and outbox kicks. */
export class WorkDispatcher implements WorkDispatch {
  private readonly deliveries: Queue<DeliverReportPayload>;
  private readonly kicks: Queue;

  constructor(
    connection: ConnectionOptions,
    prefix: string,
    private readonly policy: DeliveryPolicy,
  ) {
    this.deliveries = new Queue<DeliverReportPayload>(QUEUES.deliverReport, { connection, prefix });
    this.kicks = new Queue(QUEUES.notify, { connection, prefix });
    this.deliveries.on('error', () => undefined);
    this.kicks.on('error', () => undefined);
  }

  /**
   * Queues the delivery's job. A job of that id that already failed for good is run once more: the
   * delivery is still open (the stale sweep calls this only for `queued`/`sending` ones), so its
   * last attempt never got to record the failure (the database was down then, say), and re-adding
   * the id alone does nothing while BullMQ keeps the failed job. The rerun is its last attempt: a
   * failure now marks the delivery failed and alerts; a delivery already settled is left as it is.
   * Except a job that failed waiting for an older version's write (its attempts spent waiting, not
   * failing: `failedWaitingForOlderVersion`): woken when that one ends, it runs again with its
   * attempts reset and without `pausedSince` (its pause budget whole).
   */
  async deliver(deliveryId: string, requeues: number): Promise<void> {
    const jobId = deliveryJobId(deliveryId, requeues);
    await this.deliveries.add(
      'deliver',
      { deliveryId },
      {
        jobId,
        attempts: this.policy.attempts,
        backoff: { type: 'exponential', delay: this.policy.backoffMs },
        removeOnComplete: { age: 86_400 },
        removeOnFail: { age: 7 * 86_400 },
      },
    );
    if ((await this.deliveries.getJobState(jobId)) !== 'failed') return;
    const job = await this.deliveries.getJob(jobId);
    if (!job) return;
    if (failedWaitingForOlderVersion(job.failedReason)) {
      // It spent its attempts (and its pause budget) waiting for an older version's write, not
      // failing: woken now that the older one ended, it runs with its attempts and budget whole, as a
      // job that never waited would (one transient error must not fail it for good).
      await job.updateData({ deliveryId: DeliverReportPayload.parse(job.data).deliveryId });
      await job.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true });
      return;
    }
    await job.retry('failed');
  }

  async notify(): Promise<void> {
    await this.kicks.add('drain', {}, { removeOnComplete: true, removeOnFail: 100 });
  }

  async close(): Promise<void> {
    await Promise.all([this.deliveries.close(), this.kicks.close()]);
  }
}

/**
 * The `deliver-report` worker; a permanent failure (4xx, endpoint gone) stops the retries, a paused
 * recipient is waited for (at most `maxPauseWaitMs` in all, see paused-endpoint.ts).
 */
export function startDeliverReportWorker(
  deps: DeliveryDeps,
  connection: () => ConnectionOptions,
  prefix: string,
  options: { concurrency: number; lockDurationMs: number; maxPauseWaitMs: number },
): Worker<DeliverReportPayload> {
  const worker = new Worker<DeliverReportPayload>(
    QUEUES.deliverReport,
    async (job, token) =>
      runJob(QUEUES.deliverReport, job, async () => {
        const payload = DeliverReportPayload.parse(job.data);
        const isLastAttempt = job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
        try {
          const state = await runWaitingIfPaused(job, token, payload, options.maxPauseWaitMs, (waitsIfPaused) =>
            runDelivery(deps, payload.deliveryId, { isLastAttempt, waitsIfPaused }),
          );
          return { state };
        } catch (err) {
          if (err instanceof PermanentDeliveryError) throw new UnrecoverableError(err.message);
          throw err;
        }
      }),
    { connection: connection(), prefix, concurrency: options.concurrency, ...resumableJobLock(options.lockDurationMs) },
  );
  worker.on('failed', (job, err) => logger.warn('delivery job failed', { jobId: job?.id, attempt: job?.attemptsMade, ...errorFields(err) }));
  worker.on('error', () => undefined);
  return worker;
}
