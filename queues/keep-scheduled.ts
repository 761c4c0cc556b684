import type { Queue, Worker } from 'bullmq';
import { errorFields, logger } from '../src/log';

/** The job a schedule produces (name, payload, options). */
export interface ScheduledJob {
  readonly name: string;
  readonly data: Record<string, unknown>;
  readonly opts: { readonly removeOnComplete?: boolean | number; readonly removeOnFail?: boolean | number };
}

/**
 * Keeps a repeating BullMQ job scheduler in Redis for as long as `worker` runs.
 *
 * The schedule is written at once (an `every` changed by a deploy takes effect) and, as it lives in
 * Redis only, checked again every `everyMs`: if Redis lost its data (restarted without persistence,
 * a failover to an empty replica), the next check writes it back. Without this the sweeps that
 * recover lost work (the pull reconciler, the outbox drain) would be lost along with that work until
 * a process restarts. A check reads the scheduler and writes only when it is missing, so the
 * schedule's timing is never disturbed.
 *
 * Not awaited: while Redis is down the commands wait in the client's queue, and the process (API
 * included) must start anyway.
 * @see https://docs.bullmq.io/guide/job-schedulers
 */
export function keepJobScheduler(queue: Queue, schedulerId: string, everyMs: number, job: ScheduledJob, worker: Worker): void {
  const write = (): Promise<unknown> => queue.upsertJobScheduler(schedulerId, { every: everyMs }, job);
  // One warning per outage, not one per check: while Redis is down the checks fail (or wait in the
  // client's queue and fail together once it gives up), and the log would repeat the same line.
  let failing = false;
  const warn = (err: unknown): void => {
    // A write cut short by the process stopping (its connection closed) is no fault: the next start writes it.
    if (worker.closing) logger.debug('job schedule not written: the worker is closing', { queue: queue.name, ...errorFields(err) });
    else if (failing) logger.debug('job schedule not written', { queue: queue.name, ...errorFields(err) });
    else logger.warn('job schedule not written', { queue: queue.name, ...errorFields(err) });
    failing = true;
  };
  const succeeded = (): void => {
    if (failing) logger.info('job schedule checked again', { queue: queue.name });
    failing = false;
  };
  write().then(succeeded, warn);
  // One check at a time: a check waiting on Redis is not joined by another every `everyMs`.
  let checking = false;
  const timer = setInterval(() => {
    if (checking) return;
    checking = true;
    queue
      .getJobScheduler(schedulerId)
      .then(async (found) => {
        if (!found) {
          // Said once written: while writes fail (a read-only replica), the failure is warned once per outage instead.
          await write();
          logger.warn('job schedule was missing from Redis; written again', { queue: queue.name });
        }
        succeeded();
      })
      .catch(warn)
      .finally(() => {
        checking = false;
      });
  }, everyMs);
  timer.unref();
  worker.on('closing', () => clearInterval(timer));
}
